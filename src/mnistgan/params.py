"""params.yaml: the one place where parameters are read and validated.

Every stage calls :func:`load` before doing any work. The whole file is checked, not just
the section a stage reads, so a typo anywhere fails fast with one line naming the key:
an unknown key, a missing key, a wrong type or an out-of-range value. Rules that span
several fields live in :func:`_cross_checks`. Defaults live in ``params.yaml`` itself
(there is no second copy here): this module only says what is allowed.
"""

from __future__ import annotations

import copy

import math
import re
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


# ----------------------------------------------------------------------------- field types: GAN runs
RUN_ID_FORM = "F<n>-D<n>-B<n>[-vbn][-ls]"
_RUN_ID = re.compile(r"F(0|[1-9]\d*)-D(0|[1-9]\d*)-B(0|[1-9]\d*)(-vbn)?(-ls)?")
COGAN_DOMAINS = ("rotate", "negative", "edge")  # = mnistgan.domains.TRANSFORMS (tests keep them equal)


@dataclass(frozen=True)
class RunSpec:
    """One DCGAN/CCGAN run of report 000, parsed from its id in the report's notation.

    ``F1-D1-B64`` is width F=1, depth D=1, batch B=64; ``-vbn`` switches on virtual batch
    normalisation and ``-ls`` one-sided label smoothing (real target ``<family>.label_smoothing``).
    The id names the DVC stage (``train_ccgan@F1-D1-B64-ls``) and every file of the run.
    """

    width: int
    depth: int
    batch_size: int
    vbn: bool
    smoothing: bool


def parse_run_id(run_id: Any) -> RunSpec:
    m = _RUN_ID.fullmatch(run_id) if isinstance(run_id, str) else None
    if not m:
        raise ParamsError(f"{run_id!r} is not a run id {RUN_ID_FORM} (e.g. F1-D1-B64)")
    spec = RunSpec(int(m[1]), int(m[2]), int(m[3]), bool(m[4]), bool(m[5]))
    for letter, value, hi in (("F", spec.width, 8), ("D", spec.depth, 8), ("B", spec.batch_size, 4096)):
        if not 1 <= value <= hi:
            raise ParamsError(f"{letter} must be in 1..{hi} (got {letter}{value} in {run_id!r})")
    if spec.vbn and spec.batch_size < 2:
        raise ParamsError(f"virtual batch normalisation needs B >= 2 (its reference batch) in {run_id!r}")
    return spec


@dataclass(frozen=True)
class RunId:
    def check(self, key: str, v: Any) -> str:
        try:
            parse_run_id(v)
        except ParamsError as exc:
            raise ParamsError(f"{key}: {exc}") from None
        return v


@dataclass(frozen=True)
class Distinct:
    """A list rule whose items must not repeat (they name stages and files)."""

    inner: ListOf

    def check(self, key: str, v: Any) -> list:
        items = self.inner.check(key, v)
        repeated = next((x for i, x in enumerate(items) if x in items[:i]), None)
        if repeated is not None:
            raise ParamsError(f"{key} repeats {repeated!r}")
        return items


# ----------------------------------------------------------------------------- field types: hybrid mixes
@dataclass(frozen=True)
class RealMix:
    """A real fraction per class: ``{default: r, per_class: {class: r_c}}``; ``per_class`` optional.

    The report's per-class strategy (Fig 12) is ``{default: 0.1, per_class: {0: 0.4}}``.
    Classes are 0..9 (YAML integers, or digit strings as ``dvc exp run -S`` may write them).
    """

    def check(self, key: str, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise ParamsError(f"{key} must be a mapping with default (and optionally per_class) (got {v!r})")
        unknown = sorted(set(v) - {"default", "per_class"}, key=str)
        if unknown:
            raise ParamsError(f"unknown key {key}.{unknown[0]} (allowed here: default, per_class)")
        if "default" not in v:
            raise ParamsError(f"missing key {key}.default")
        per_class = v.get("per_class") or {}
        if not isinstance(per_class, dict):
            raise ParamsError(f"{key}.per_class must be a mapping {{class: real fraction}} (got {per_class!r})")
        out = {}
        for c, r in per_class.items():
            cls = int(c) if isinstance(c, str) and c.isdigit() else c
            if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls <= 9:
                raise ParamsError(f"{key}.per_class: class {c!r} is not a digit 0..9")
            out[cls] = PROB.check(f"{key}.per_class.{cls}", r)
        return {"default": PROB.check(f"{key}.default", v["default"]), "per_class": out}


@dataclass(frozen=True)
class NamedMap:
    """A mapping ``{name: item}`` whose names are :class:`Name` labels (used in file names)."""

    item: Any
    min_len: int = 1
    key: Any = Name()  # what a name may be

    def check(self, key: str, v: Any) -> dict[str, Any]:
        if v is None and self.min_len == 0:
            return {}
        if not isinstance(v, dict):
            raise ParamsError(f"{key} must be a mapping of names to values (got {v!r})")
        if len(v) < self.min_len:
            raise ParamsError(f"{key} must have at least {self.min_len} item(s) (got {v!r})")
        return {self.key.check(f"{key} name", k): self.item.check(f"{key}.{k}", x) for k, x in v.items()}


# ----------------------------------------------------------------------------- the schema
PROB = Float(0.0, 1.0)
POS_LR = Float(0.0, 1.0, lo_open=True)
BETA = Float(0.0, 1.0)
SEED = Int(0, 2**31 - 1)
ADAM_BETAS = ListOf(Float(0.0, 0.9999), 2, 2)  # Adam needs each beta < 1
IMAGE_GAN = {  # one DCGAN or CCGAN family of report 000
    "runs": Distinct(ListOf(RunId())),  # the grid: one DVC stage per run id
    "lr": POS_LR,
    "epochs": Int(1, 10000),
    "train_limit": Int(0, 60000),  # images per epoch, a fresh random subset each epoch; 0 = all
    "eval_every": Int(1, 10000),  # LeNet scores every k epochs (k must divide epochs)
    "label_smoothing": Float(0.0, 1.0, lo_open=True),  # real target of the -ls runs; 1.0 = none
    "lr_decay": Float(0.0, 1.0, lo_open=True),  # both learning rates x this after every epoch; 1.0 = constant
    "ema": Float(0.0, 0.9999),  # per-step decay of the average of G's weights that is scored and saved; 0 = off
}

SCHEMA: dict[str, Any] = {
    "profile": Name(),  # a label carried into metrics and REPORT.md (quick, paper, ...)
    "seed": SEED,
    "device": Choice(DEVICES),
    # torch.set_num_threads in every stage that uses torch (0: torch's own default, all cores).
    # CPU float sums split by thread, so the numbers depend on it; as a param DVC sees it.
    "cpu_threads": Int(0, 1024),
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
        # digits behind every final score (GANs, synthetic set, PCA, PPCA): one N for every FID
        "samples": Int(2, 100000),
    },
    # --- the GANs: DCGAN and CCGAN (report 000, sections 2-3), CoGAN (report 004)
    "gan": {  # shared by the DCGAN and CCGAN runs
        "latent": Int(1, 4096),
        "betas": ADAM_BETAS,
        "bf16": Bool(),  # bfloat16 autocast for the forward passes; weights and Adam stay float32
        "compile": Bool(),  # torch.compile the generator and discriminator
        "eval_samples": Int(2, 100000),  # generated digits per LeNet scoring
    },
    "dcgan": IMAGE_GAN,
    "ccgan": IMAGE_GAN,
    "cogan": {
        "pairs": Distinct(ListOf(Choice(COGAN_DOMAINS))),  # domain 2 of each pair; domain 1 = original
        "shared_layers": Int(0, 4),  # generator layers shared, from the first (paper: 4)
        "width": Float(0.0, 4.0, lo_open=True),  # generator widths x this (paper: 1.0 = 1024..128)
        "latent": Int(1, 4096),
        "batch_size": Int(1, 4096),
        "lr": POS_LR,
        "betas": ADAM_BETAS,
        "bf16": Bool(),
        "compile": Bool(),
        "epochs": Int(1, 10000),
        "train_limit": Int(0, 30000),  # pairs of images per epoch; 0 = all of the smaller half
        "eval_every": Int(1, 10000),
        "eval_samples": Int(2, 100000),  # generated pairs per agreement score (paper: 10,000)
        "domain_lenet_epochs": Int(1, 1000),  # the edge-digit LeNet of the label agreement
        "lr_decay": Float(0.0, 1.0, lo_open=True),
        "ema": Float(0.0, 0.9999),
        # epochs of the named pairs instead of cogan.epochs (a pair that couples early needs fewer)
        "epochs_by_pair": NamedMap(Int(1, 10000), min_len=0, key=Choice(COGAN_DOMAINS)),
        # pairs per epoch of the named pairs instead of cogan.train_limit (0 = all of the smaller half)
        "train_limit_by_pair": NamedMap(Int(0, 30000), min_len=0, key=Choice(COGAN_DOMAINS)),
    },
    # --- downstream of the GANs: synthetic training set, hybrid classifiers, PCA (report 000, 4-5)
    "synthetic": {
        # the key of metrics/ccgan/<run>/metrics.json that picks the best CCGAN ('.' for nesting)
        "select_by": Name(),
        "mode": Choice(("max", "min")),
        "batch_size": Int(1, 100000),  # images per generator forward pass (speed only)
    },
    "hybrid": {
        "total": Int(0, 60000),  # images per set of the headline r = 0 and r = 1; 0 = the prepared train size
        "test_images": Int(0, 10000),  # stratified subset of the real test set; 0 = all of it
        "epochs": Int(1, 1000),
        "curve_total": Int(0, 60000),  # images per set of Fig 9's curve, the sweep and the mixes; 0 = total
        "curve_epochs": Int(0, 1000),  # their epochs; 0 = epochs
        "batch_size": Int(1, 60000),
        "lr": POS_LR,
        "lr_decay": Float(0.0, 1.0, lo_open=True),
        "real_fractions": ListOf(PROB),
        "sweep": {
            "real_fraction": PROB,
            "lrs": ListOf(POS_LR),
            "batch_sizes": ListOf(Int(1, 60000)),
        },
        "mixes": NamedMap(RealMix()),
    },
    "pca": {
        # n components; at most 783 = 28*28 - 1 (probabilistic PCA keeps >= 1 noise direction)
        "components": ListOf(Int(1, 783)),
        "fit_images": Int(0, 60000),  # stratified training subset for the fits; 0 = all
        "saturation_tolerance": Float(0.0, 1.0),  # LeNet accuracy within this of the best
        "fid_saturation_tolerance": Float(0.0, 1000.0),  # LeNet-FID within this of the best
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


def apply_overrides(params: dict, overrides: dict[str, object]) -> dict:
    """Return a copy of ``params`` with dotted keys replaced; an unknown key is an error."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node = out
        *path, last = dotted.split(".")
        for k in path:
            if not isinstance(node.get(k), dict):
                raise ParamsError(f"override of unknown param {dotted}")
            node = node[k]
        if last not in node:
            raise ParamsError(f"override of unknown param {dotted}")
        node[last] = value
    return out


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


@cross_check
def _downstream_sizes_fit(p: dict[str, Any]) -> None:
    """Subset sizes of the synthetic/hybrid/PCA stages fit the prepared data; lists do not repeat."""
    n_train = p["data"]["train_limit"] or 60000
    n_test = p["data"]["test_limit"] or 10000
    for key, n, limit, kept_by in (
        ("hybrid.total", p["hybrid"]["total"], n_train, "data.train_limit"),
        ("hybrid.curve_total", p["hybrid"]["curve_total"], n_train, "data.train_limit"),
        ("pca.fit_images", p["pca"]["fit_images"], n_train, "data.train_limit"),
        ("hybrid.test_images", p["hybrid"]["test_images"], n_test, "data.test_limit"),
        # PCA rebuilds scoring.samples real test digits
        ("scoring.samples", p["scoring"]["samples"], n_test, "data.test_limit"),
    ):
        if n > limit:
            raise ParamsError(f"{key} ({n}) exceeds the {limit} images kept by {kept_by}")
    for key, values in (
        ("hybrid.real_fractions", p["hybrid"]["real_fractions"]),
        ("hybrid.sweep.lrs", p["hybrid"]["sweep"]["lrs"]),
        ("hybrid.sweep.batch_sizes", p["hybrid"]["sweep"]["batch_sizes"]),
        ("pca.components", p["pca"]["components"]),
    ):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ParamsError(f"{key} repeats {repeated[0]!r}")
    if 1.0 not in p["hybrid"]["real_fractions"]:
        raise ParamsError("hybrid.real_fractions must contain 1.0: Fig 9's claim (hybrid.fig9_smallest_r) "
                          "compares every fraction with it")


@cross_check
def _gan_schedules_fit(p: dict[str, Any]) -> None:
    """Scores land on the last epoch; every batch fits the images an epoch uses; FID is estimable."""
    n_train = p["data"]["train_limit"] or 60000
    n_half = (n_train - 10) // 2  # the smaller CoGAN half: at least this many (floor per class)
    for family in ("dcgan", "ccgan", "cogan"):
        s = p[family]
        if s["epochs"] % s["eval_every"]:
            raise ParamsError(f"{family}.eval_every ({s['eval_every']}) must divide {family}.epochs ({s['epochs']}), "
                              f"so the final epoch is scored")
    for pair, epochs in p["cogan"]["epochs_by_pair"].items():
        if epochs % p["cogan"]["eval_every"]:
            raise ParamsError(f"cogan.eval_every ({p['cogan']['eval_every']}) must divide cogan.epochs_by_pair.{pair} "
                              f"({epochs}), so the final epoch is scored")
    for family in ("dcgan", "ccgan"):
        images = min(p[family]["train_limit"] or n_train, n_train)
        for i, run in enumerate(p[family]["runs"]):
            if parse_run_id(run).batch_size > images:
                raise ParamsError(f"{family}.runs[{i}]: the batch of {run} exceeds the {images} images per epoch "
                                  f"({family}.train_limit, data.train_limit)")
    for key, limit in [("cogan.train_limit", p["cogan"]["train_limit"])] + [
            (f"cogan.train_limit_by_pair.{pair}", n) for pair, n in p["cogan"]["train_limit_by_pair"].items()]:
        pairs = min(limit or n_half, n_half)
        if p["cogan"]["batch_size"] > pairs:
            raise ParamsError(f"cogan.batch_size ({p['cogan']['batch_size']}) exceeds the {pairs} image pairs per epoch "
                              f"({key}, data.train_limit)")
    features = p["lenet"]["hidden"][-1]
    for key, n in (("gan.eval_samples", p["gan"]["eval_samples"]), ("scoring.samples", p["scoring"]["samples"])):
        if n <= features:
            raise ParamsError(f"{key} ({n}) must exceed lenet.hidden[1] ({features}), "
                              f"the LeNet-FID feature size, for a usable covariance")


def cogan_budget(cogan: dict[str, Any], pair: str) -> tuple[int, int]:
    """(epochs, pairs per epoch) of one CoGAN pair: ``cogan.epochs_by_pair[pair]`` and
    ``cogan.train_limit_by_pair[pair]`` where named, else ``cogan.epochs`` and ``cogan.train_limit``."""
    epochs, limits = cogan["epochs_by_pair"], cogan["train_limit_by_pair"]
    return (epochs[pair] if pair in epochs else cogan["epochs"],
            limits[pair] if pair in limits else cogan["train_limit"])


# ----------------------------------------------------------------------------- which params a stage reads
class Tracked(dict):
    """Validated params that note which keys the code reads (``read``, dotted paths).

    A leaf read notes its full key (``ccgan.lr``); anything that takes a mapping whole
    (iterating it, ``items()``, ``len``) notes the mapping's own key (``hybrid.mixes``), so
    the set covers everything the result can depend on. ``run_stage`` hands stages a Tracked
    when ``$MNISTGAN_PARAMS_LOG`` is set, and the tests compare what was read with the
    ``params:`` DVC declares for the stage: a read that no declaration covers is a stage that
    could go stale. Pure bookkeeping: values and behaviour are those of the plain dict.
    """

    def __init__(self, data: dict, prefix: str = "", read: set[str] | None = None):
        super().__init__(data)
        self._prefix, self.read = prefix, read if read is not None else set()

    def _note(self, key=None) -> None:
        self.read.add(f"{self._prefix}{key}" if key is not None else self._prefix.rstrip(".") or "*")

    def _wrap(self, key, value):
        return Tracked(value, f"{self._prefix}{key}.", self.read) if isinstance(value, dict) else value

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if not isinstance(value, dict):
            self._note(key)
        return self._wrap(key, value)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)

    def __iter__(self):
        self._note()
        return super().__iter__()

    def __len__(self):
        self._note()
        return super().__len__()

    def keys(self):
        self._note()
        return super().keys()

    def items(self):
        self._note()
        return [(k, self._wrap(k, v)) for k, v in super().items()]

    def values(self):
        return [v for _, v in self.items()]


def covers(declared: list[str], key: str) -> bool:
    """Whether a DVC ``params:`` list (``seed``, ``gan``, ``dcgan.lr``) covers the dotted ``key``."""
    return key != "*" and any(key == d or key.startswith(d + ".") for d in declared)
