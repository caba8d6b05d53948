"""REPORT.md from metrics/summary.json: each experiment of both studies, theirs beside ours.

Pure: ``render(summary)`` returns the Markdown text; the same summary always gives the same
report, so a test can check that REPORT.md is exactly what the evaluate stage writes.
The source reports' numbers live here, in one table (:data:`THEIRS`), with where they come from.
"""

from __future__ import annotations

from typing import Any

# The source reports' numbers, the bars of ../shared/STUDY.md, and where each comes from.
THEIRS: dict[str, dict[str, Any]] = {
    "lenet.test_acc": {"value": 0.988, "bar": 0.992, "source": "report 000, section 3.3 (train 99.4%)"},
    "dcgan.best.config": {"value": "F1-D1-B32", "source": "report 000, section 2.3"},
    "ccgan.best.config": {"value": "F1-D1-B64", "source": "report 000, section 3.3"},
    "ccgan.best.lenet_acc": {"value": 0.976, "bar": 0.99,
                             "source": "report 000, section 3.3 (94.7% without label smoothing)"},
    "ccgan.best.is": {"value": None, "bar": 9.5, "source": "not reported; real test digits score ~9.9"},
    "hybrid.acc_real_0.0": {"value": 0.956, "bar": 0.97,
                            "source": "a published CGAN's classification accuracy score; report 000 gives no number"},
    "hybrid.acc_real_1.0": {"value": None, "source": "report 000, Fig 9 (curve only); ours beside the scorer LeNet"},
    "hybrid.fig9_smallest_r": {"value": None, "source": "report 000, Fig 9: 'a little real data is enough' (curve only)"},
    "pca.per_class.saturation_components": {"value": 64, "source": "report 000, section 5.2 (per-class PCA, Fig 13)"},
    "cogan.edge.agreement": {"value": 0.952, "bar": 0.95, "source": "Liu & Tuzel 2016 (CoGAN paper)"},
    "cogan.negative.agreement": {"value": 0.967, "bar": 0.97, "source": "Liu & Tuzel 2016 (CoGAN paper)"},
    "cogan.rotate.agreement": {"value": None, "source": "no published number: ours is the first"},
}
REPORT_COUNTS_TRAIN = [5932, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # 004 Table 1 (5932: typo)
REPORT_COUNTS_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def timed_stages(params: dict) -> list[str]:
    """The stages of ``params`` that write metrics/timings/<stage>.json: all but evaluate and
    plots_template. The evaluate stage reads exactly these (and the smoke run expects them)."""
    return (["download", "prepare", "train_lenet", "train_edge_lenet", "pca_sweep", "generate_synthetic",
             "train_hybrid"]
            + [f"train_{f}@{r}" for f in ("dcgan", "ccgan") for r in params[f]["runs"]]
            + [f"train_cogan@{p}" for p in params["cogan"]["pairs"]])


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


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def with_ci(value: Any, ci: Any, digits: int = 4) -> str:
    """``0.9760 [0.9717, 0.9797]``: a score and its 95% interval (just the score without one)."""
    if isinstance(ci, list | tuple) and len(ci) == 2 and isinstance(value, int | float):
        return f"{fmt(value, digits)} [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"
    return fmt(value, digits)


def comparison(summary: dict, keys: list[str]) -> str:
    """Theirs, ours (with its 95% interval where there is one), the difference and whether our
    bar (if any) is met, one row per key."""
    rows = []
    for key in keys:
        ref = THEIRS.get(key, {})
        ours, theirs, bar = get(summary, key), ref.get("value"), ref.get("bar")
        diff = ours - theirs if isinstance(ours, int | float) and isinstance(theirs, int | float) else None
        met = (ours >= bar) if isinstance(ours, int | float) and bar is not None else None
        rows.append([f"`{key}`", theirs, with_ci(ours, get(summary, f"{key}_ci95")), diff, bar, met,
                     ref.get("source", "")])
    return table(["metric", "theirs", "ours [95% interval]", "ours - theirs", "paper-profile bar", "bar met",
                  "their source"], rows)


def render(summary: dict) -> str:
    s = summary
    parts = [
        "# REPORT: two MNIST GAN studies, re-run",
        "",
        "Generated by the `evaluate` stage from `metrics/summary.json`; do not edit by hand "
        "(`dvc repro evaluate` rewrites it).",
        "",
        f"- **profile**: `{s.get('profile')}`",
        f"- **device**: {s.get('device')}",
        f"- **date** (last stage finished): {s.get('date')}",
        "",
        "\"Theirs\" is the source report's number; the bars are this project's targets for the paper "
        "profile (`../shared/STUDY.md`). The quick profile trains for minutes on a CPU and is not "
        "expected to meet them: it shows that every experiment runs and where it heads.",
        "",
        "Every sample-based score carries its 95% interval over the samples it was measured on, in "
        "brackets. That is the error of one run; the spread over training seeds (mean, std and "
        f"minimum of each headline over seeds) is in `results/spread/{s.get('profile')}.md` "
        "(`python -m mnistgan.spread`, see the README).",
        "",
    ]
    parts += _data(s) + _lenet(s) + _gan(s, "dcgan") + _gan(s, "ccgan") + _hybrid(s) + _pca(s) + _cogan(s)
    parts += _timings(s) + _versions(s)
    return "\n".join(parts).rstrip() + "\n"


def _section(title: str, *lines: str) -> list[str]:
    return [f"## {title}", "", *lines, ""]


def _data(s: dict) -> list[str]:
    counts = get(s, "data.class_counts") or {}
    train, test = counts.get("train"), counts.get("test")
    if not train:
        return []
    rows = [[d, REPORT_COUNTS_TRAIN[d], train[d], REPORT_COUNTS_TEST[d], test[d] if test else None] for d in range(10)]
    return _section(
        "Data (report 004, Table 1 and Figs 1-3)",
        table(["digit", "train (theirs)", "train (ours)", "test (theirs)", "test (ours)"], rows),
        "",
        "Report 004's 5932 for digit 0 is a typo: the data says 5923. Figures: "
        "![domains](plots/data/domains.png) ![t-SNE](plots/data/tsne.png)",
    )


def _lenet(s: dict) -> list[str]:
    if get(s, "lenet.test_acc") is None:
        return []
    return _section(
        "LeNet scorer (report 000, section 3.3)",
        comparison(s, ["lenet.test_acc"]),
        "",
        f"Inception Score of the real test digits under this scorer: {fmt(get(s, 'lenet.test_is'), 3)} "
        f"(ceiling 10); LeNet-FID between real train and real test: {fmt(get(s, 'lenet.fid_train_vs_test'), 3)}.",
    )


def _gan(s: dict, family: str) -> list[str]:
    runs = get(s, f"{family}.runs") or {}
    if not runs:
        return []
    title = {"dcgan": "DCGAN (report 000, section 2; Figs 2-5)",
             "ccgan": "Class-conditional GAN (report 000, section 3; Figs 6-8, 17)"}[family]
    keys = [f"{family}.best.config"] + ([f"{family}.best.lenet_acc", f"{family}.best.is"] if family == "ccgan" else [])
    cols = ["fid", "is"] + (["lenet_acc"] if family == "ccgan" else [])
    ranked = sorted(runs.items(), key=lambda kv: (kv[1].get("fid") is None, kv[1].get("fid") or 0.0))
    rows = [[f"`{name}`", *[with_ci(r.get(c), r.get(f"{c}_ci95")) for c in cols], r.get("samples"), r.get("epochs")]
            for name, r in ranked]
    return _section(
        title,
        comparison(s, keys),
        "",
        f"Every run, ranked by LeNet-FID (lower is better; best selected by `{get(s, f'{family}.best.selected_by')}`):",
        "",
        table(["run", *cols, "scored digits", "epochs"], rows),
        "",
        f"Sample grid of the best run: ![{family}](plots/{family}/{get(s, f'{family}.best.config')}.png)",
    )


def _hybrid(s: dict) -> list[str]:
    curve = get(s, "hybrid.real_fraction") or {}
    if not curve:
        return []
    rows = [[r, with_ci(acc, get(s, f"hybrid.real_fraction_ci95.{r}"))]
            for r, acc in sorted(curve.items(), key=lambda kv: float(kv[0]))]
    gap = get(s, "hybrid.gap_to_lenet")
    return _section(
        "Training on synthetic data (report 000, section 4; Figs 9-12)",
        comparison(s, ["hybrid.acc_real_0.0", "hybrid.acc_real_1.0"]),
        "",
        f"Synthetic set from `{get(s, 'synthetic.run')}`; every classifier is tested on "
        f"{get(s, 'hybrid.test_images')} real test digits (95% intervals). The headline classifiers train on "
        f"{get(s, 'hybrid.total')} images for {get(s, 'hybrid.epochs')} epoch(s): synthetic only (r = 0) "
        f"{with_ci(get(s, 'hybrid.acc_real_0.0'), get(s, 'hybrid.acc_real_0.0_ci95'))}, real only (r = 1) "
        f"{with_ci(get(s, 'hybrid.acc_real_1.0'), get(s, 'hybrid.acc_real_1.0_ci95'))}, "
        f"{fmt(None if gap is None else 100 * gap, 2)} points from the scorer LeNet "
        f"({fmt(get(s, 'lenet.test_acc'))}).{_gap_reason(s)}",
        "",
        f"Fig 9's curve, {get(s, 'hybrid.curve_total')} images for {get(s, 'hybrid.curve_epochs')} epoch(s) per "
        f"classifier. Report 000 reads it as: a little real data does nearly as well as all of it. Here the smallest "
        f"real fraction within half a point of r = 1.0 on this curve is **r = {fmt(get(s, 'hybrid.fig9_smallest_r'))}**.",
        "",
        table(["real fraction r", "test accuracy"], rows),
        "",
        _lr_batch_and_mixes(s),
    )


def _gap_reason(s: dict) -> str:
    """Why r = 1 is more than 0.3 points from the scorer LeNet, where its own curve says so."""
    gap, epochs = get(s, "hybrid.gap_to_lenet"), get(s, "hybrid.epochs")
    same_epoch = get(s, f"lenet.test_acc_by_epoch.{epochs}")
    if gap is None or gap >= -0.003 or same_epoch is None:
        return ""
    return (f" More than 0.3 points: r = 1 trains the scorer's LeNet for {epochs} epoch(s) (the budget), and "
            f"the scorer itself read {fmt(same_epoch)} after {epochs} epoch(s) "
            f"({fmt(get(s, 'lenet.test_acc'))} after all of them): the gap is training length, not the data.")


def _lr_batch_and_mixes(s: dict) -> str:
    best = get(s, "hybrid.lr_batch_best") or {}
    mixes = get(s, "hybrid.mixes") or {}
    return "\n".join([
        f"Best of the lr x batch-size sweep (Fig 10; report: lr 0.001, batch 32): lr {best.get('lr')}, "
        f"batch {best.get('batch_size')}, test accuracy {fmt(best.get('test_acc'))}.",
        "",
        table(["named mix (Figs 11-12)", "test accuracy"], [[f"`{k}`", v] for k, v in sorted(mixes.items())]),
    ])


PCA_NAMES = {"global": "global PCA, rebuilt", "per_class": "per-class PCA, rebuilt (report's Fig 13)",
             "ppca": "probabilistic PCA per class, new samples"}


def _pca(s: dict) -> list[str]:
    if get(s, "pca.per_class.best.lenet_acc") is None:
        return []
    best_gan = get(s, "ccgan.best.lenet_acc")
    one = get(s, "pca.per_class.curve.1.lenet_acc")
    gap = (best_gan - one) if isinstance(best_gan, float) and isinstance(one, float) else None
    rows = [[PCA_NAMES[m], get(s, f"pca.{m}.saturation_components"), get(s, f"pca.{m}.fid_saturation_components"),
             get(s, f"pca.{m}.best.lenet_acc"), get(s, f"pca.{m}.best.n")] for m in PCA_NAMES]
    return _section(
        "PCA as a generator (report 000, section 5; Fig 13) and probabilistic PCA (beyond the report)",
        comparison(s, ["pca.per_class.saturation_components"]),
        "",
        "**The per-class curve leaks the label.** A digit rebuilt from the basis of its own true class "
        "is pulled towards that class's mean, which LeNet reads correctly even from one component, so its "
        "accuracy saturates at n = 1 whatever the digits look like; the global basis (one PCA of all "
        "digits, blind to the label) and LeNet-FID are where the report's \"saturates at 64\" can be tested.",
        "",
        table(["method", "saturation n (LeNet accuracy)", "saturation n (LeNet-FID)", "best LeNet accuracy",
               "at n"], rows),
        "",
        f"Saturation: the smallest n within the tolerance of the best n (accuracy: `pca.saturation_tolerance`; "
        f"FID: `pca.fid_saturation_tolerance`). Every set is {get(s, 'pca.samples')} digits. The report found "
        f"1 component scores more than 10 points below the best CGAN; per class, here the gap is "
        f"{fmt(gap * 100 if gap is not None else None, 1)} points (positive: the CGAN is better).",
        "",
        *_pca_curve(s),
    )


def _pca_curve(s: dict) -> list[str]:
    curves = {m: get(s, f"pca.{m}.curve") or {} for m in PCA_NAMES}
    if not curves["per_class"]:
        return []
    ns = sorted(curves["per_class"], key=int)
    rows = [[int(n), *((curves[m].get(n) or {}).get(k) for m in PCA_NAMES for k in ("lenet_acc", "fid"))] for n in ns]
    real = get(s, "pca.real_test") or {}
    rows.append(["real test digits", real.get("lenet_acc"), real.get("fid"), None, None, None, None])
    return [
        "Every n (Fig 13), scored by the same LeNet:",
        "",
        table(["n", "global: LeNet acc", "global: FID", "per class: LeNet acc", "per class: FID",
               "PPCA: LeNet acc", "PPCA: FID"], rows),
        "",
        "![per-class PCA reconstructions](plots/pca/reconstruction.png) ![global PCA reconstructions]"
        "(plots/pca/global.png) ![PPCA samples](plots/pca/ppca.png)",
    ]


def _cogan(s: dict) -> list[str]:
    pairs = get(s, "cogan") or {}
    if not pairs:
        return []
    rows = [[p, THEIRS.get(f"cogan.{p}.agreement", {}).get("value"),
             with_ci(get(s, f"cogan.{p}.agreement"), get(s, f"cogan.{p}.agreement_ci95")),
             get(s, f"cogan.{p}.agreement_chance"), fmt(get(s, f"cogan.{p}.agreement_normalised"), 3),
             with_ci(get(s, f"cogan.{p}.label_agreement"), get(s, f"cogan.{p}.label_agreement_ci95"), 3),
             fmt(get(s, f"cogan.{p}.label_agreement_chance"), 3)] for p in pairs]
    return _section(
        "Coupled GAN (report 004, Figs 7-9)",
        comparison(s, [f"cogan.{p}.agreement" for p in ("edge", "negative", "rotate") if p in pairs]),
        "",
        "Read against chance: unrelated digits agree on most pixels (background), so each agreement "
        "stands beside its chance level (the same generator's samples re-paired at random) and the "
        "normalised score (a - chance) / (1 - chance): 0 is chance, 1 is every pair exact. The label "
        "agreement asks whether the two images of a pair show the same digit (domain 1 read by the "
        "LeNet; domain 2 mapped back by the inverse transform and read by it, or, for edge, read by "
        f"a LeNet trained on edge digits: test accuracy {fmt(get(s, 'lenet_edge.test_acc'))}); chance is about 0.1.",
        "",
        table(["pair", "pixel agreement (theirs)", "pixel agreement [95%]", "chance", "normalised",
               "label agreement [95%]", "label chance"], rows),
        "",
        "Pixel agreement as in the CoGAN paper (the exact rule is in `src/mnistgan/agreement.py`); "
        f"{get(s, 'cogan.' + next(iter(pairs)) + '.pairs')} pairs per pair of domains. "
        + " ".join(f"![{p}](plots/cogan/{p}.png)" for p in pairs),
        *_rotate(s),
    )


def _rotate(s: dict) -> list[str]:
    """Why rotate does not couple, where it does not (label agreement below 0.9)."""
    label = get(s, "cogan.rotate.label_agreement")
    if label is None or label >= 0.9:
        return []
    return ["", (
        f"**Rotate is not coupled** (label agreement {fmt(label, 3)}, chance "
        f"{fmt(get(s, 'cogan.rotate.label_agreement_chance'), 3)}). Report 004 shares every generator layer "
        "but the last, a 6x6 transposed convolution at stride 1: each output pixel sees only a 6x6 "
        "neighbourhood of the shared 28x28 feature map, so the two domains' images must keep their strokes "
        "in the same places. Edge and negative do (each pixel of the pair depends on the same neighbourhood), "
        "a 90-degree rotation moves every stroke elsewhere. The `cogan.shared_layers` sweep in the README "
        "(\"CoGAN weight sharing\", 0 to 4 shared layers) is the evidence: edge and negative rise from chance "
        "as layers are shared, rotate stays within 0.05 of chance at every sharing, so no sharing of first "
        "layers couples it. Coupling a rotation needs a domain-specific layer that can move strokes across the "
        "image (a fully connected or large-kernel last layer), which the report's architecture does not have."
    )]


def _timings(s: dict) -> list[str]:
    t = get(s, "timings") or {}
    if not t:
        return []
    rows = [[f"`{name}`", f"{v['wall_s']:.1f}", f"{v['peak_rss_mb']:.0f}"] for name, v in sorted(t.items())]
    rows.append(["**total** (sum; peak = largest)", f"{get(s, 'total_wall_s'):.1f}",
                 f"{max(v['peak_rss_mb'] for v in t.values()):.0f}"])
    return _section("Wall time and peak memory per stage", table(["stage", "wall (s)", "peak memory (MB)"], rows))


def _versions(s: dict) -> list[str]:
    v = get(s, "versions") or {}
    return _section("Library versions", table(["package", "version"], [[k, v[k]] for k in sorted(v)])) if v else []
