"""params.yaml: the one place where parameters are read and validated.

Every stage calls :func:`load` before doing any work. The whole file is checked, not just
the section a stage reads, so a typo anywhere fails fast with one line naming the key:
an unknown key, a missing key, a wrong type or an out-of-range value. Rules that span
several fields live in :func:`_cross_checks`. Defaults live in ``params.yaml`` itself
(there is no second copy here): this module only says what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import PipelineError

DEVICES = ("auto", "cpu", "cuda", "mps")


class ParamsError(PipelineError):
    pass


# ----------------------------------------------------------------------------- field types
@dataclass(frozen=True)
class Int:
    lo: int | None = None
    hi: int | None = None

    def check(self, key: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParamsError(f"{key} must be an integer (got {v!r})")
        _range(key, v, self.lo, self.hi)
        return v


@dataclass(frozen=True)
class Float:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: value must be > lo (not >=)

    def check(self, key: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ParamsError(f"{key} must be a number (got {v!r})")
        v = float(v)
        if not math.isfinite(v):
            raise ParamsError(f"{key} must be finite (got {v!r})")
        if self.lo_open and self.lo is not None and v <= self.lo:
            raise ParamsError(f"{key} must be > {self.lo} (got {v!r})")
        _range(key, v, None if self.lo_open else self.lo, self.hi)
        return v


@dataclass(frozen=True)
class Bool:
    def check(self, key: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise ParamsError(f"{key} must be true or false (got {v!r})")
        return v


@dataclass(frozen=True)
class Name:
    """A short label: letters, digits, '-', '_' and '.' only."""

    def check(self, key: str, v: Any) -> str:
        if not isinstance(v, str) or not v or not all(c.isalnum() or c in "-_." for c in v):
            raise ParamsError(f"{key} must be a short name of letters, digits, '-', '_', '.' (got {v!r})")
        return v


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def check(self, key: str, v: Any) -> str:
        if v not in self.options:
            raise ParamsError(f"{key} must be one of {', '.join(self.options)} (got {v!r})")
        return v


@dataclass(frozen=True)
class ListOf:
    item: Any
    min_len: int = 1
    max_len: int | None = None

    def check(self, key: str, v: Any) -> list:
        if not isinstance(v, list):
            raise ParamsError(f"{key} must be a list (got {v!r})")
        if len(v) < self.min_len:
            raise ParamsError(f"{key} must have at least {self.min_len} item(s) (got {v!r})")
        if self.max_len is not None and len(v) > self.max_len:
            raise ParamsError(f"{key} must have at most {self.max_len} item(s) (got {v!r})")
        return [self.item.check(f"{key}[{i}]", x) for i, x in enumerate(v)]


def _range(key: str, v, lo, hi) -> None:
    if lo is not None and v < lo:
        raise ParamsError(f"{key} must be >= {lo} (got {v!r})")
    if hi is not None and v > hi:
        raise ParamsError(f"{key} must be <= {hi} (got {v!r})")


# ----------------------------------------------------------------------------- the schema
PROB = Float(0.0, 1.0)
POS_LR = Float(0.0, 1.0, lo_open=True)
BETA = Float(0.0, 1.0)
SEED = Int(0, 2**31 - 1)

SCHEMA: dict[str, Any] = {
    "profile": Name(),  # a label carried into metrics and REPORT.md (quick, paper, ...)
    "seed": SEED,
    "device": Choice(DEVICES),
    "data": {
        # 0 keeps all images; N > 0 keeps a stratified N-image subset (smoke runs, tests).
        "train_limit": Int(0, 60000),
        "test_limit": Int(0, 10000),
        "tsne_samples": Int(20, 20000),
        "tsne_perplexity": Float(1.0, 100.0),
    },
    "lenet": {
        "epochs": Int(1, 1000),
        "batch_size": Int(1, 60000),
        "lr": POS_LR,
        "lr_decay": Float(0.0, 1.0, lo_open=True),
        "channels": ListOf(Int(1, 1024), 2, 2),
        "hidden": ListOf(Int(1, 4096), 2, 2),
    },
    "scoring": {
        "batch_size": Int(1, 100000),
    },
}


# ----------------------------------------------------------------------------- loading
def load(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read and validate the whole params file; raise ParamsError with one line on failure."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}") from None
    try:
        return validate(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def validate(raw: Any) -> dict[str, Any]:
    params = _check_section("", SCHEMA, raw)
    _cross_checks(params)
    return params


def _check_section(prefix: str, schema: dict, raw: Any) -> dict[str, Any]:
    where = prefix.rstrip(".") or "params"
    if not isinstance(raw, dict):
        raise ParamsError(f"{where} must be a mapping (got {raw!r})")
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ParamsError(f"unknown key {prefix}{unknown[0]} (allowed here: {', '.join(schema)})")
    out = {}
    for name, rule in schema.items():
        key = f"{prefix}{name}"
        if name not in raw:
            raise ParamsError(f"missing key {key}")
        if isinstance(rule, dict):
            out[name] = _check_section(f"{key}.", rule, raw[name])
        elif callable(rule) and not hasattr(rule, "check"):
            out[name] = rule(key, raw[name])
        else:
            out[name] = rule.check(key, raw[name])
    return out


CrossCheck = Callable[[dict[str, Any]], None]
_CROSS_CHECKS: list[CrossCheck] = []


def cross_check(fn: CrossCheck) -> CrossCheck:
    """Register a rule that spans several fields (runs after every field is valid)."""
    _CROSS_CHECKS.append(fn)
    return fn


def _cross_checks(params: dict[str, Any]) -> None:
    for fn in _CROSS_CHECKS:
        fn(params)


@cross_check
def _tsne_fits(p: dict[str, Any]) -> None:
    limit = p["data"]["train_limit"] or 60000
    if p["data"]["tsne_samples"] > limit:
        raise ParamsError(
            f"data.tsne_samples ({p['data']['tsne_samples']}) exceeds the training images "
            f"kept by data.train_limit ({limit})"
        )
    if p["data"]["tsne_perplexity"] >= p["data"]["tsne_samples"]:
        raise ParamsError("data.tsne_perplexity must be smaller than data.tsne_samples")
