"""metrics/summary.json, declared once: its keys, its headlines, their bars and sources.

The ``evaluate`` stage writes the summary; the report (REPORT.md), the smoke run, the spread
over seeds and the tests read it, all through this module: the key of a headline, the
source's number beside it, the bar it is read against in each profile and the range a
sane value lies in are written here and nowhere else (torch-fidelity's ``KEY_METRIC_*``
constants are the model).

Bars are the project's targets (the study's "bars by profile" table): the ``quick`` column
is the default profile's on a 2-core CPU, ``paper`` the full study's. A profile with no
column of its own (``study``) is read against the default's. Every bar holds on the minimum
over seeds 0-2, read with its sampling error (mnistgan_tools.spread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mnistgan.gan import registry

DEFAULT_PROFILE = "quick"
PCA_METHODS = ("global", "per_class", "ppca")
SATURATION = ("saturation_components", "fid_saturation_components")
# The stages with a metrics/timings/<stage>.json besides the GAN runs (not check_params and
# plots_template, which only build files for the others, nor evaluate, which reads them all).
TIMED_STAGES = ("download", "prepare", "train_lenet", "train_edge_lenet", "pca_sweep", "generate_synthetic",
                "train_hybrid")


@dataclass(frozen=True)
class Headline:
    """One headline number of the summary.

    ``theirs`` is the source's number (None where it gave none), ``bars`` this project's
    target per profile (the value must be >= it, or <= where ``higher_is_better`` is False),
    ``range`` the values a sane run can produce (None: a non-empty string; "ci": a 95%
    interval around its score), checked by the smoke run and the end-to-end test.
    """

    key: str
    higher_is_better: bool | None = True
    range: Any = (0, 1)
    theirs: Any = None
    source: str = ""
    bars: dict[str, float] = field(default_factory=dict)

    def bar(self, profile: str) -> float | None:
        return self.bars.get(profile, self.bars.get(DEFAULT_PROFILE))

    def met(self, value: Any, profile: str) -> bool | None:
        bar = self.bar(profile)
        if bar is None or not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return value >= bar if self.higher_is_better else value <= bar


COGAN_PAPER = "Liu & Tuzel 2016 (Coupled Generative Adversarial Networks)"
HEADLINES: tuple[Headline, ...] = (
    Headline("profile", None, None), Headline("device", None, None),
    Headline("lenet.test_acc", theirs=0.988, source="report 000, section 3.3 (train 99.4%)",
             bars={"quick": 0.992, "paper": 0.992}),
    Headline("lenet.test_acc_ci95", None, "ci"),
    Headline("dcgan.best.config", None, None, theirs="F1-D1-B32", source="report 000, section 2.3"),
    Headline("dcgan.best.fid", False, (0, 1e4)),
    Headline("dcgan.best.is", True, (1, 10)),
    Headline("ccgan.best.config", None, None, theirs="F1-D1-B64", source="report 000, section 3.3"),
    Headline("ccgan.best.lenet_acc", theirs=0.976, source="report 000, section 3.3 (94.7% without label smoothing)",
             bars={"quick": 0.976, "paper": 0.99}),
    Headline("ccgan.best.lenet_acc_ci95", None, "ci"),
    Headline("ccgan.best.is", True, (1, 10), source="not reported; the real test digits score lenet.test_is",
             bars={"quick": 9.5, "paper": 9.5}),
    Headline("ccgan.best.fid", False, (0, 1e4)),
    Headline("hybrid.acc_real_0.0", theirs=0.956,
             source="a published CGAN's classification accuracy score; report 000 gives no number",
             bars={"quick": 0.956, "paper": 0.97}),
    Headline("hybrid.acc_real_0.0_ci95", None, "ci"),
    Headline("hybrid.acc_real_1.0", source="report 000, Fig 9 (curve only); ours beside the scorer LeNet"),
    Headline("hybrid.real_fraction.0.0"),
    Headline("hybrid.gap_to_lenet", True, (-1, 1)),
    Headline("hybrid.fig9_smallest_r", False, source="report 000, Fig 9: 'a little real data is enough' (curve only)"),
    *(Headline(f"pca.{m}.{k}", True, (1, 784)) for m in PCA_METHODS for k in SATURATION
      if (m, k) != ("per_class", "saturation_components")),
    Headline("pca.per_class.saturation_components", True, (1, 784), theirs=64,
             source="report 000, section 5.2 (per-class PCA, Fig 13)"),
    *(Headline(f"pca.{m}.best.lenet_acc") for m in PCA_METHODS),
    Headline("lenet_edge.test_acc"),
)
# Per pair of a coupled family: the agreement headlines (the bars: the CoGAN paper's digits).
PAIR_THEIRS = {"edge": 0.952, "negative": 0.967}
PAIR_HEADLINE_KEYS = {"agreement": (0, 1), "agreement_chance": (0, 1), "label_agreement": (0, 1),
                      "label_agreement_chance": (0, 1), "agreement_normalised": (-1, 1),
                      "agreement_ci95": "ci", "label_agreement_ci95": "ci"}


def pair_headlines(family: str, pairs: list[str]) -> list[Headline]:
    out = []
    for pair in pairs:
        for key, rng in PAIR_HEADLINE_KEYS.items():
            theirs = PAIR_THEIRS.get(pair) if key == "agreement" else None
            source = (COGAN_PAPER if pair in PAIR_THEIRS else "no published number: ours is the first") \
                if key == "agreement" else ""
            bars = {"quick": theirs, "paper": theirs} if theirs is not None else {}
            out.append(Headline(f"{family}.{pair}.{key}", True, rng, theirs=theirs, source=source, bars=bars))
    return out


def headlines(params: dict) -> list[Headline]:
    """Every headline of a run of ``params``: the fixed ones and each coupled family's pairs."""
    out = list(HEADLINES)
    for spec in registry.coupled_families():
        out += pair_headlines(spec.name, spec.runs(params))
    return out


def headline(key: str) -> Headline | None:
    """The headline of ``key`` (a pair's headline for any pair name), or None if it is none."""
    found = next((h for h in HEADLINES if h.key == key), None)
    family, _, rest = key.partition(".")
    if found is None and family in registry.FAMILIES and "." in rest:
        pair = rest.partition(".")[0]
        found = next((h for h in pair_headlines(family, [pair]) if h.key == key), None)
    return found


# ----------------------------------------------------------------------------- reading it
def get(summary: dict, dotted: str, default=None):
    """``summary['a']['b']`` for ``'a.b'``; keys may themselves contain dots (acc_real_0.1)."""
    node: Any = summary
    parts = dotted.split(".")
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):  # longest key first: "acc_real_0.1" before "acc_real_0"
            key = ".".join(parts[i:j])
            if isinstance(node, dict) and key in node:
                node, i = node[key], j
                break
        else:
            return default
    return node


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def timed_stages(params: dict) -> list[str]:
    """The stages of ``params`` that write metrics/timings/<stage>.json. The evaluate stage reads
    exactly these (and the smoke run expects them)."""
    return list(TIMED_STAGES) + [f"train_{spec.name}@{run}" for spec in registry.FAMILIES.values()
                                 for run in spec.runs(params)]


# ----------------------------------------------------------------------------- what evaluate promises
def expected_keys(params: dict) -> list[str]:
    """Every key of metrics/summary.json the evaluate stage writes for ``params`` (dotted; a key
    may contain dots itself, see :func:`get`): the headline keys, each run's and pair's scores,
    each real fraction, mix and PCA n, each stage's timing."""
    keys = [h.key for h in headlines(params)]
    for spec in registry.image_families():
        run_keys = [k for k in spec.run_keys if spec.conditional or not k.startswith(("lenet_acc", "samples_by_class"))]
        keys += [f"{spec.name}.runs.{run}.{k}" for run in spec.runs(params) for k in run_keys]
        keys += [f"{spec.name}.best.{k}" for k in ("config", "fid", "is", "samples", "selected_by")]
    for spec in registry.coupled_families():
        keys += [f"{spec.name}.{pair}.{k}" for pair in spec.runs(params) for k in spec.run_keys]
    h = params["hybrid"]
    keys += [f"hybrid.acc_real_{r:.1f}{ci}" for r in (0.0, 1.0) for ci in ("", "_ci95")]
    keys += [f"hybrid.real_fraction{ci}.{r:.1f}" for r in h["real_fractions"] for ci in ("", "_ci95")]
    keys += [f"hybrid.mixes.{name}" for name in h["mixes"]] + ["hybrid.test_images", "hybrid.lr_batch_best"]
    keys += [f"pca.{m}.curve.{n}.{s}" for m in PCA_METHODS for n in params["pca"]["components"]
             for s in ("lenet_acc", "is", "fid")]
    keys += ["synthetic.run", "synthetic.images", "lenet_edge.test_acc", "lenet_edge.test_acc_ci95"]
    from mnistgan.pipeline.claims import CLAIMS  # the ledger's keys: one verdict per claim

    keys += [f"claims.{c.id}.{k}" for c in CLAIMS for k in ("verdict", "evidence", "rule")]
    return list(dict.fromkeys(keys))


def run_info_keys(params: dict) -> list[str]:
    """Every key of metrics/run_info.json: each stage's timing, their total, the date, versions."""
    return ([f"timings.{s}.{k}" for s in timed_stages(params) for k in ("wall_s", "peak_rss_mb")]
            + ["total_wall_s", "peak_rss_mb", "date", "versions.torch", "versions.dvc"])


def scored_headlines(params: dict) -> list[Headline]:
    """The numeric headlines that are scores (not intervals, chance levels or labels): the keys of
    metrics/headlines.json, the file `dvc exp show` and `dvc metrics diff` show."""
    return [h for h in headlines(params)
            if h.higher_is_better is not None and h.range != "ci" and "chance" not in h.key]


def headline_values(summary: dict, params: dict) -> dict:
    """metrics/headlines.json: the scored headlines of ``summary``, nested as in the summary, and
    each claim's verdict (``claims.<id>.verdict``, and ``holds``: 1, 0.5 or 0 where decided)."""
    out: dict = {"claims": {cid: {k: c[k] for k in ("verdict", "holds") if k in c}
                            for cid, c in (summary.get("claims") or {}).items()}}
    if not out["claims"]:
        del out["claims"]
    for h in scored_headlines(params):
        value = get(summary, h.key)
        if value is None:
            continue
        node, parts = out, _split(summary, h.key)
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _split(summary: dict, dotted: str) -> list[str]:
    """The keys of ``summary`` that ``dotted`` walks through (a key may contain dots)."""
    node, parts, i, out = summary, dotted.split("."), 0, []
    while i < len(parts):
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if isinstance(node, dict) and key in node:
                node, i = node[key], j
                out.append(key)
                break
        else:
            raise KeyError(dotted)
    return out


def problems(summary: dict, params: dict, run_info: dict | None = None) -> list[str]:
    """One line per key of :func:`expected_keys` missing from ``summary`` (and of
    :func:`run_info_keys` from ``run_info``, when given) and per headline value out of its range."""
    missing = object()
    out = [f"metrics/summary.json has no {k}" for k in expected_keys(params) if get(summary, k, missing) is missing]
    if run_info is not None:
        out += [f"metrics/run_info.json has no {k}" for k in run_info_keys(params)
                if get(run_info, k, missing) is missing]
    for h in headlines(params):
        value = get(summary, h.key, missing)
        if value is missing:
            continue  # named above
        if h.range is None:
            ok = isinstance(value, str) and bool(value)
        elif h.range == "ci":
            score = get(summary, h.key.removesuffix("_ci95"))
            ok = (isinstance(value, list) and len(value) == 2 and isinstance(score, int | float)
                  and 0 <= value[0] <= score <= value[1] <= 1)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and h.range[0] <= value <= h.range[1]
        if not ok and h.range == "ci":
            out.append(f"metrics/summary.json: {h.key} = {value!r} is not a 95% interval around "
                       f"{h.key.removesuffix('_ci95')}")
        elif not ok:
            out.append(f"metrics/summary.json: {h.key} = {value!r} is out of range {h.range}")
    return out
