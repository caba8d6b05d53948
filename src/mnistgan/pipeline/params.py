"""params.yaml: the one place where parameters are read and validated.

Every stage calls :func:`load` before doing any work. The whole file is checked, not just
the section a stage reads, so a typo anywhere fails fast with one line naming the key:
an unknown key, a missing key, a wrong type or an out-of-range value. The rules are pydantic
models, one per section (:class:`Params` is the whole file); rules that span several fields
are the ``model_validator`` methods of :class:`Params`. Pydantic's errors are turned into one
line each by :func:`_one_line`. Defaults live in ``params.yaml`` itself (every key is
required; there is no second copy here): this module only says what is allowed.
:func:`json_schema` is the same rules as JSON Schema (``python -m mnistgan.pipeline.params --schema``).
"""

import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mnistgan.errors import PipelineError
from mnistgan.gan import registry

DEVICES = ("auto", "cpu", "cuda", "mps")


class ParamsError(PipelineError):
    pass


# ----------------------------------------------------------------------------- GAN run ids
RUN_ID_FORM = "F<n>-D<n>-B<n>[-vbn][-ls]"
_RUN_ID = re.compile(r"F(0|[1-9]\d*)-D(0|[1-9]\d*)-B(0|[1-9]\d*)(-vbn)?(-ls)?")


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


# ----------------------------------------------------------------------------- field types
# Every model is strict: a bool is not an int, a string is not a number, a tuple is not a
# list. The one conversion is int -> float for float fields (YAML writes 30 for 30.0).
def _int(lo: int, hi: int) -> Any:
    return Annotated[int, Field(ge=lo, le=hi)]


def _float(lo: float, hi: float, *, lo_open: bool = False) -> Any:
    """A finite float in [lo, hi], or (lo, hi] with ``lo_open``. Bounds are floats, so that
    messages read ``must be > 0.0`` whatever the input's type."""
    low = {"gt": lo} if lo_open else {"ge": lo}
    return Annotated[float, Field(**low, le=hi, allow_inf_nan=False)]


def _error(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A failed rule of ours; :func:`_one_line` turns ``kind`` and ``message`` into the line."""
    return PydanticCustomError(kind, "{message}", {"message": message, **ctx})


def _distinct(items: list) -> list:
    """Items that name stages and files must not repeat: the first repeat is the error."""
    repeated = next((x for i, x in enumerate(items) if x in items[:i]), None)
    if repeated is not None:
        raise _error("repeats", f"repeats {repeated!r}")
    return items


def _run_id(v: Any) -> Any:
    try:
        parse_run_id(v)
    except ParamsError as exc:
        raise _error("run_id", str(exc)) from None
    return v


def _none_is_empty(v: Any) -> Any:
    return {} if v is None else v  # ``epochs_by_pair:`` with nothing after it in YAML


def _mix_class(c: Any) -> Any:
    """Classes are 0..9: YAML integers, or digit strings as ``dvc exp run -S`` may write them."""
    cls = int(c) if isinstance(c, str) and c.isdecimal() else c
    if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls <= 9:
        raise _error("mix_class", f"class {c!r} is not a digit 0..9")
    return cls


# A short label used in file names and metric keys: letters, digits, '-', '_' and '.' only.
Name = Annotated[str, Field(pattern=r"^[\w.-]+$")]
Domain = Literal[registry.PAIRS]
RunId = Annotated[str, BeforeValidator(_run_id), Field(json_schema_extra={"pattern": f"^{_RUN_ID.pattern}$"})]
Prob = _float(0.0, 1.0)
PosLr = _float(0.0, 1.0, lo_open=True)
Decay = _float(0.0, 1.0, lo_open=True)  # a multiplier per epoch; 1.0 = constant
Ema = _float(0.0, 0.9999)
Seed = _int(0, 2**31 - 1)
AdamBetas = Annotated[list[_float(0.0, 0.9999)], Field(min_length=2, max_length=2)]  # Adam needs each beta < 1
MixClass = Annotated[int, BeforeValidator(_mix_class)]


def _list(item: Any, min_len: int = 1, max_len: int | None = None) -> Any:
    return Annotated[list[item], Field(min_length=min_len, max_length=max_len)]


def _by_pair(value: Any) -> Any:
    """``{pair: value}`` for some CoGAN pairs (none is fine; YAML null is none)."""
    return Annotated[dict[Domain, value], BeforeValidator(_none_is_empty)]


# ----------------------------------------------------------------------------- the sections
class Section(BaseModel):
    """A mapping with exactly these keys; a key without a default here is required (params.yaml
    holds every default)."""

    # extra="forbid" puts additionalProperties: false in the JSON schema; the unknown key
    # itself is reported by _no_unknown_keys first, with the keys allowed here, as before any
    # other error of the section.
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(data.keys() - cls.model_fields.keys(), key=str)
            if unknown:
                raise _error("unknown_key", "unknown key", key=unknown[0], allowed=", ".join(cls.model_fields))
        return data


class Data(Section):
    # 0 keeps all images; N > 0 keeps a stratified N-image subset (smoke runs, tests).
    train_limit: _int(0, 60000)
    test_limit: _int(0, 10000)
    tsne_samples: _int(20, 20000)
    tsne_perplexity: _float(1.0, 100.0)


class Lenet(Section):
    epochs: _int(1, 1000)
    batch_size: _int(1, 60000)
    lr: PosLr
    lr_decay: Decay
    channels: _list(_int(1, 1024), 2, 2)
    hidden: _list(_int(1, 4096), 2, 2)


class Scoring(Section):
    batch_size: _int(1, 100000)
    # digits behind every final score (GANs, synthetic set, PCA, PPCA): one N for every FID
    samples: _int(2, 100000)


class Gan(Section):
    """Shared by the DCGAN and CCGAN runs."""

    latent: _int(1, 4096)
    betas: AdamBetas
    bf16: bool  # bfloat16 autocast for the forward passes; weights and Adam stay float32
    compile: bool  # torch.compile the generator and discriminator
    eval_samples: _int(2, 100000)  # generated digits per LeNet scoring


class ImageGan(Section):
    """One image family of report 000's grid (DCGAN, CCGAN): its runs and training settings."""

    runs: Annotated[_list(RunId), AfterValidator(_distinct)]  # the grid: one DVC stage per run id
    lr: PosLr
    epochs: _int(1, 10000)
    train_limit: _int(0, 60000)  # images per epoch, a fresh random subset each epoch; 0 = all
    eval_every: _int(1, 10000)  # LeNet scores every k epochs (k must divide epochs)
    label_smoothing: _float(0.0, 1.0, lo_open=True)  # real target of the -ls runs; 1.0 = none
    lr_decay: Decay  # both learning rates x this after every epoch
    ema: Ema  # per-step decay of the average of G's weights that is scored and saved; 0 = off


class CoupledGan(Section):
    """A coupled family (CoGAN, report 004): its domain pairs and training settings."""

    pairs: Annotated[_list(Domain), AfterValidator(_distinct)]  # domain 2 of each pair; domain 1 = original
    shared_layers: _int(0, 4)  # generator layers shared, from the first (paper: 4)
    # each domain's own output layer: conv (the paper's 6x6 transposed convolution) or linear (a
    # fully connected layer that can move strokes across the image; mnistgan.models.cogan)
    output_layer: Literal["conv", "linear"]
    width: _float(0.0, 4.0, lo_open=True)  # generator widths x this (paper: 1.0 = 1024..128)
    latent: _int(1, 4096)
    batch_size: _int(1, 4096)
    lr: PosLr
    betas: AdamBetas
    bf16: bool
    compile: bool
    epochs: _int(1, 10000)
    train_limit: _int(0, 30000)  # pairs of images per epoch; 0 = all of the smaller half
    eval_every: _int(1, 10000)
    eval_samples: _int(2, 100000)  # generated pairs per agreement score (paper: 10,000)
    domain_lenet_epochs: _int(1, 1000)  # the edge-digit LeNet of the label agreement
    lr_decay: Decay
    ema: Ema
    # epochs of the named pairs instead of <family>.epochs (a pair that couples early needs fewer)
    epochs_by_pair: _by_pair(_int(1, 10000))
    # pairs per epoch of the named pairs instead of <family>.train_limit (0 = all of the smaller half)
    train_limit_by_pair: _by_pair(_int(0, 30000))


class Synthetic(Section):
    # the key of metrics/ccgan/<run>/metrics.json that picks the best CCGAN ('.' for nesting)
    select_by: Name
    mode: Literal["max", "min"]
    batch_size: _int(1, 100000)  # images per generator forward pass (speed only)


class RealMix(Section):
    """A real fraction per class: ``{default: r, per_class: {class: r_c}}``; ``per_class`` optional.

    The report's per-class strategy (Fig 12) is ``{default: 0.1, per_class: {0: 0.4}}``.
    """

    default: Prob
    per_class: Annotated[dict[MixClass, Prob], BeforeValidator(_none_is_empty)] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": "^[0-9]$"}})


class Sweep(Section):
    real_fraction: Prob
    lrs: _list(PosLr)
    batch_sizes: _list(_int(1, 60000))


class Hybrid(Section):
    total: _int(0, 60000)  # images per set of the headline r = 0 and r = 1; 0 = the prepared train size
    test_images: _int(0, 10000)  # stratified subset of the real test set; 0 = all of it
    epochs: _int(1, 1000)
    curve_total: _int(0, 60000)  # images per set of Fig 9's curve, the sweep and the mixes; 0 = total
    curve_epochs: _int(0, 1000)  # their epochs; 0 = epochs
    batch_size: _int(1, 60000)
    lr: PosLr
    lr_decay: Decay
    real_fractions: _list(Prob)
    sweep: Sweep
    # additionalProperties: the JSON schema rejects a key that is not a Name, as the validation does
    mixes: Annotated[dict[Name, RealMix], Field(min_length=1, json_schema_extra={"additionalProperties": False})]


class Pca(Section):
    # n components; at most 783 = 28*28 - 1 (probabilistic PCA keeps >= 1 noise direction)
    components: _list(_int(1, 783))
    fit_images: _int(0, 60000)  # stratified training subset for the fits; 0 = all
    saturation_tolerance: _float(0.0, 1.0)  # LeNet accuracy within this of the best
    fid_saturation_tolerance: _float(0.0, 1000.0)  # LeNet-FID within this of the best


class Rules(Section):
    """The rules across sections of a whole params file (the fields: :data:`Params`)."""

    # Rules across fields: they run in this order once every field is valid.
    @model_validator(mode="after")
    def _tsne_fits(self) -> Self:
        d = self.data
        limit = d.train_limit or 60000
        if d.tsne_samples > limit:
            raise _error("cross", f"data.tsne_samples ({d.tsne_samples}) exceeds the training images "
                                  f"kept by data.train_limit ({limit})")
        if d.tsne_perplexity >= d.tsne_samples:
            raise _error("cross", "data.tsne_perplexity must be smaller than data.tsne_samples")
        return self

    @model_validator(mode="after")
    def _downstream_sizes_fit(self) -> Self:
        """Subset sizes of the synthetic/hybrid/PCA stages fit the prepared data; lists do not repeat."""
        n_train = self.data.train_limit or 60000
        n_test = self.data.test_limit or 10000
        h = self.hybrid
        for key, n, limit, kept_by in (
            ("hybrid.total", h.total, n_train, "data.train_limit"),
            ("hybrid.curve_total", h.curve_total, n_train, "data.train_limit"),
            ("pca.fit_images", self.pca.fit_images, n_train, "data.train_limit"),
            ("hybrid.test_images", h.test_images, n_test, "data.test_limit"),
            # PCA rebuilds scoring.samples real test digits
            ("scoring.samples", self.scoring.samples, n_test, "data.test_limit"),
        ):
            if n > limit:
                raise _error("cross", f"{key} ({n}) exceeds the {limit} images kept by {kept_by}")
        for key, values in (
            ("hybrid.real_fractions", h.real_fractions),
            ("hybrid.sweep.lrs", h.sweep.lrs),
            ("hybrid.sweep.batch_sizes", h.sweep.batch_sizes),
            ("pca.components", self.pca.components),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise _error("cross", f"{key} repeats {repeated[0]!r}")
        if 1.0 not in h.real_fractions:
            raise _error("cross", "hybrid.real_fractions must contain 1.0: Fig 9's claim (hybrid.fig9_smallest_r) "
                                  "compares every fraction with it")
        return self

    @model_validator(mode="after")
    def _gan_schedules_fit(self) -> Self:
        """Scores land on the last epoch; every batch fits the images an epoch uses; FID is estimable."""
        n_train = self.data.train_limit or 60000
        n_half = (n_train - 10) // 2  # the smaller CoGAN half: at least this many (floor per class)
        for family in registry.FAMILIES:
            s = getattr(self, family)
            if s.epochs % s.eval_every:
                raise _error("cross", f"{family}.eval_every ({s.eval_every}) must divide {family}.epochs "
                                      f"({s.epochs}), so the final epoch is scored")
        for spec in registry.coupled_families():
            c, f = getattr(self, spec.name), spec.name
            for pair, epochs in c.epochs_by_pair.items():
                if epochs % c.eval_every:
                    raise _error("cross", f"{f}.eval_every ({c.eval_every}) must divide "
                                          f"{f}.epochs_by_pair.{pair} ({epochs}), so the final epoch is scored")
        for family in (spec.name for spec in registry.image_families()):
            s = getattr(self, family)
            images = min(s.train_limit or n_train, n_train)
            for i, run in enumerate(s.runs):
                if parse_run_id(run).batch_size > images:
                    raise _error("cross", f"{family}.runs[{i}]: the batch of {run} exceeds the {images} images "
                                          f"per epoch ({family}.train_limit, data.train_limit)")
        for spec in registry.coupled_families():
            c, f = getattr(self, spec.name), spec.name
            for key, limit in [(f"{f}.train_limit", c.train_limit)] + [
                    (f"{f}.train_limit_by_pair.{pair}", n) for pair, n in c.train_limit_by_pair.items()]:
                pairs = min(limit or n_half, n_half)
                if c.batch_size > pairs:
                    raise _error("cross", f"{f}.batch_size ({c.batch_size}) exceeds the {pairs} image pairs "
                                          f"per epoch ({key}, data.train_limit)")
        features = self.lenet.hidden[-1]
        for key, n in (("gan.eval_samples", self.gan.eval_samples), ("scoring.samples", self.scoring.samples)):
            if n <= features:
                raise _error("cross", f"{key} ({n}) must exceed lenet.hidden[1] ({features}), "
                                      f"the LeNet-FID feature size, for a usable covariance")
        return self


def _root_fields() -> dict[str, Any]:
    """The sections of a params file in the order of the checks (the error reported is the first
    bad key in it): the GAN families' sections come from the registry, after ``gan``."""
    fixed = [("profile", Name), ("seed", Seed), ("device", Literal[DEVICES]),
             # torch.set_num_threads in every stage that uses torch (0: torch's own default, all
             # cores). CPU float sums split by thread, so the numbers depend on it; as a param DVC sees it.
             ("cpu_threads", _int(0, 1024)), ("data", Data), ("lenet", Lenet), ("scoring", Scoring), ("gan", Gan)]
    families = [(spec.name, globals()[spec.params_model]) for spec in registry.FAMILIES.values()]
    downstream = [("synthetic", Synthetic), ("hybrid", Hybrid), ("pca", Pca)]
    return {name: (kind, ...) for name, kind in fixed + families + downstream}


# A whole params file (params.yaml, profiles/*.yaml): every section and key is required.
Params = create_model("Params", __base__=Rules, __doc__=Rules.__doc__, **_root_fields())


# ----------------------------------------------------------------------------- one line per error
_NAME_RULE = "must be a short name of letters, digits, '-', '_', '.'"
_RULES = {  # pydantic's error type -> what the key must be
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be finite",
    "bool_type": "must be true or false",
    "string_type": _NAME_RULE,  # every plain string field is a Name
    "string_pattern_mismatch": _NAME_RULE,
    "list_type": "must be a list",
    "dict_type": "must be a mapping of names to values",
}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than_equal": ("le", "<=")}
_MAPPING_HINTS = {"RealMix": " with default (and optionally per_class)"}  # model_type errors, by model


def _dotted(loc: tuple) -> str:
    """``('hybrid', 'real_fractions', 1)`` -> ``hybrid.real_fractions[1]``. ``per_class`` is the
    one mapping with integer keys; every other integer in a location is a list index."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int) and not (i and loc[i - 1] == "per_class"):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _one_line(exc: ValidationError) -> str:
    """The first error pydantic found, as one line naming the key (first bad key in file order)."""
    err = exc.errors()[0]
    kind, loc, got, ctx = err["type"], err["loc"], err["input"], err.get("ctx") or {}
    if kind == "cross":
        return ctx["message"]
    if loc and loc[-1] == "[key]":  # a bad name in a mapping of names
        if kind == "mix_class":
            return f"{_dotted(loc[:-2])}: {ctx['message']}"
        key = f"{_dotted(loc[:-2])} name"
    else:
        key = _dotted(loc) or "params"
    if kind == "unknown_key":
        where = f"{_dotted(loc)}." if loc else ""
        return f"unknown key {where}{ctx['key']} (allowed here: {ctx['allowed']})"
    if kind == "missing":
        return f"missing key {key}"
    if kind == "run_id":
        return f"{key}: {ctx['message']}"
    if kind == "repeats":
        return f"{key} {ctx['message']}"
    if kind in _BOUNDS:
        name, op = _BOUNDS[kind]
        bound = ctx[name]
        if isinstance(bound, float) and isinstance(got, int):
            got = float(got)  # a float field: the value as it is compared
        rule = f"must be {op} {bound}"
    elif kind == "literal_error":  # ctx["expected"] is "'a', 'b' or 'c'"
        rule = "must be one of " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "too_short":
        rule = f"must have at least {ctx['min_length']} item(s)"
    elif kind == "too_long":
        rule = f"must have at most {ctx['max_length']} item(s)"
    elif kind == "model_type":
        rule = f"must be a mapping{_MAPPING_HINTS.get(ctx.get('class_name'), '')}"
    elif kind == "dict_type" and loc and loc[-1] == "per_class":
        rule = "must be a mapping {class: real fraction}"
    elif kind in _RULES:
        rule = _RULES[kind]
    else:  # a rule this table does not word yet: pydantic's own words, still one line
        return f"{key}: {err['msg']}".replace("\n", " ")
    return f"{key} {rule} (got {got!r})"


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
    """The validated params as a plain dict (lists, dicts, ints, floats, strings, bools)."""
    try:
        return Params.model_validate(raw).model_dump()
    except ValidationError as exc:
        raise ParamsError(_one_line(exc)) from None


def json_schema() -> dict[str, Any]:
    """JSON Schema of a params file (every section and key, with types and ranges)."""
    return Params.model_json_schema()


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


def pair_budget(section: dict[str, Any], pair: str) -> tuple[int, int]:
    """(epochs, pairs per epoch) of one pair of a coupled family's ``section``: its
    ``epochs_by_pair[pair]`` and ``train_limit_by_pair[pair]`` where named, else its ``epochs``
    and ``train_limit``."""
    epochs, limits = section["epochs_by_pair"], section["train_limit_by_pair"]
    return (epochs[pair] if pair in epochs else section["epochs"],
            limits[pair] if pair in limits else section["train_limit"])


if __name__ == "__main__":
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m mnistgan.pipeline.params --schema")
    import json

    print(json.dumps(json_schema(), indent=1, sort_keys=True))
