"""Gather every study's results into metrics/summary.json, the figure tables, and REPORT.md.

Reads the metrics the other stages wrote (LeNet, each GAN run, synthetic set, hybrid
classifiers, PCA, coupled pairs, per-stage timings) of the runs, pairs and stages of the current
params only (a run id removed from params.yaml leaves its files behind; they must not count), and writes:
  metrics/headlines.json   the headline scores (mnistgan.pipeline.summary): the one metrics file
                           dvc.yaml declares, so `dvc exp show` and `dvc metrics diff` show them
  metrics/summary.json     every score (nested; `dvc metrics diff --targets metrics/summary.json`)
                           and the claims ledger: each claim of both reports with the verdict its
                           rule computes from the numbers (mnistgan.pipeline.claims; it also reads
                           results/spread/<profile>.json and results/seeds/study/seed<k>.json)
  metrics/run_info.json    what the machine did: wall time and peak memory per stage, their
                           total, the date, library versions (REPORT's time table reads it)
  plots/summary/             per family: <family>_grid.csv (run, F, D, B, fid, is, lenet_acc: the
                           heat map over F x D x B), <family>_train_curves.csv and
                           <family>_score_curves.csv (every run's per-epoch curves in one table)
  REPORT.md                each experiment of both reports, theirs beside ours (src/mnistgan/pipeline/report.py)
  results/<profile>/       summary.json, run_info.json, REPORT.md and provenance.json (commit,
                           device, date), so a paper-profile run is kept beside the committed quick one

The stage runs on every `dvc repro` (always_changed in dvc.yaml): it depends on each GAN run's
done-marker (build/done/, constant) for its place in the pipeline, not on the runs' metrics
and timings themselves, so that changing one param shows no dependency-hash columns in
`dvc exp show`. It reads everything afresh each time and takes seconds.
"""

from __future__ import annotations

import csv
import json
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan.files import atomic_path, load_json, save_csv, save_json
from mnistgan.gan import registry
from mnistgan.pipeline import claims, report, summary as schema
from mnistgan.pipeline.params import ParamsError, parse_run_id
from mnistgan.pipeline.stage import run_stage

PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "dvc", "dvclive", "matplotlib")


def read_counts(path: Path) -> list[int]:
    lines = path.read_text().splitlines()[1:]
    return [int(line.split(",")[1]) for line in lines]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def class_errors(confusion_csv: Path, digit: int) -> dict:
    """How the test digits of class ``digit`` were read: their count and the count per predicted class."""
    rows = [(int(r["actual"]), int(r["predicted"])) for r in read_csv(confusion_csv)]
    read_as = [sum(1 for a, p in rows if a == digit and p == k) for k in range(10)]
    return {"n": sum(read_as), "as": read_as}


def gan_runs(metrics_dir: Path, names: list[str], keys: tuple[str, ...]) -> dict[str, dict]:
    """Final scores of the runs ``names`` of one GAN family, from each run's dvclive metrics.json.

    Only the runs of the current params: files of a run id removed from ``<family>.runs`` stay on
    disk (DVC does not delete the outputs of a stage that no longer exists) and must not count."""
    runs = {}
    for name in sorted(names):
        m = load_json(metrics_dir / name / "metrics.json")
        runs[name] = {k: m.get(k) for k in keys if k in m}
    return runs


def best_by(runs: dict[str, dict], key: str, lower_is_better: bool) -> tuple[str, dict] | None:
    scored = [(name, r) for name, r in runs.items() if isinstance(r.get(key), int | float)]
    if not scored:
        return None
    return (min if lower_is_better else max)(scored, key=lambda kv: kv[1][key])


def collect(m: Path, plots: Path, params: dict) -> dict:
    lenet = load_json(m / "lenet/metrics.json")
    summary: dict = {"profile": params["profile"], "device": lenet.get("device")}
    summary["lenet"] = {k: lenet[k] for k in ("test_acc", "test_acc_ci95", "train_acc", "test_is", "fid_train_vs_test")
                        if k in lenet}
    curve = m / "lenet/plots/metrics/test/acc.tsv"  # dvclive's per-epoch test accuracy (step 0 = epoch 1)
    if curve.exists():
        summary["lenet"]["test_acc_by_epoch"] = {str(step + 1): acc for step, acc in read_tsv(curve).items()}
    summary["data"] = {"class_counts": {s: read_counts(plots / f"data/class_counts_{s}.csv") for s in ("train", "test")}}
    purity = plots / "data/tsne_purity.csv"
    if purity.is_file():  # how well the t-SNE separates each digit (report 004's Figs 2-3)
        summary["data"]["tsne_purity"] = {r["digit"]: {"purity": float(r["purity"]), "n": int(r["n"]),
                                                       "purity_ci95": [float(r["low"]), float(r["high"])] if r["low"] else None}
                                          for r in read_csv(purity)}

    synthetic = load_json(m / "synthetic.json")
    for spec in registry.image_families():
        family = spec.name
        runs = gan_runs(m / family, spec.runs(params), spec.run_keys)
        summary[family] = {"runs": runs}
        if spec.conditional:  # the run the synthetic training set was drawn from (synthetic.select_by)
            best = (synthetic["run"], runs.get(synthetic["run"], {}))
            selected_by = f"{synthetic['select_by']} ({synthetic['mode']})"
        else:
            key, mode = spec.best_by
            best = best_by(runs, key, lower_is_better=mode == "min")
            selected_by = f"{key} ({'lowest' if mode == 'min' else 'highest'})"
        if best:
            name, r = best
            summary[family]["best"] = {"config": name, **{k: r[k] for k in spec.run_keys if k in r and k != "epochs"},
                                       "selected_by": selected_by}

    summary["synthetic"] = {"run": synthetic["run"], "images": synthetic["images"]}
    hybrid = load_json(m / "hybrid.json")
    curve = hybrid["curve"]
    summary["hybrid"] = {
        **{k: v for k, v in hybrid.items() if k.startswith("acc_real_")},  # the headline r = 0 and r = 1
        "gap_to_lenet": hybrid["acc_real_1.0"] - summary["lenet"]["test_acc"],  # r = 1 vs the scorer LeNet
        "total": hybrid["total"], "epochs": hybrid["epochs"],
        # Fig 9's curve (at its own budget) and its claim
        "real_fraction": {k.removeprefix("acc_real_"): v for k, v in curve.items() if not k.endswith("_ci95")},
        "real_fraction_ci95": {k.removeprefix("acc_real_").removesuffix("_ci95"): v
                               for k, v in curve.items() if k.endswith("_ci95")},
        "fig9_smallest_r": hybrid["fig9_smallest_r"],
        "curve_total": hybrid["curve_total"], "curve_epochs": hybrid["curve_epochs"],
        "test_images": hybrid["test_images"], "lr_batch_best": hybrid["sweep"]["best"],
        "mixes": {k: v["test_acc"] for k, v in hybrid["mixes"].items()},
        # Fig 10's sweep and, per mix, what the classifier reads class-0 test digits as (Figs 11-12)
        "lr_batch": [{"lr": float(r["lr"]), "batch_size": int(r["batch_size"]), "test_acc": float(r["test_acc"])}
                     for r in read_csv(plots / "hybrid/lr_batch.csv")],
        "class0_errors": {mix: class_errors(plots / "hybrid/confusion" / f"{mix}.csv", 0) for mix in hybrid["mixes"]}}

    pca = load_json(m / "pca.json")
    summary["pca"] = {method: {"saturation_components": pca[method]["saturation_components"],
                               "fid_saturation_components": pca[method]["fid_saturation_components"],
                               "best": pca[method]["best"],
                               "curve": {k.removeprefix("n"): {s: v[s] for s in ("lenet_acc", "is", "fid")}
                                         for k, v in pca[method].items() if re.fullmatch(r"n\d+", k)}}
                      for method in schema.PCA_METHODS}
    summary["pca"].update({"real_test": pca["real_test"], "samples": pca["samples"]})

    for spec in registry.coupled_families():
        summary[spec.name] = {pair: {k: v for k, v in load_json(m / spec.name / pair / "metrics.json").items()
                                     if k in spec.run_keys} for pair in spec.runs(params)}
    if (m / "lenet_edge.json").is_file():
        edge = load_json(m / "lenet_edge.json")
        summary["lenet_edge"] = {k: edge[k] for k in ("test_acc", "test_acc_ci95")}

    return summary


def seeds(results: Path, profile: str) -> tuple[dict | None, list[dict]]:
    """The spread of this profile's headlines over seeds (results/spread/<profile>.json, written by
    `python -m mnistgan_tools.spread`) and the summaries of the study profile's seeds
    (results/seeds/study/seed<k>.json, committed after each seed's run): the claims ledger reads both."""
    spread = results / "spread" / f"{profile}.json"
    study = sorted((results / "seeds" / "study").glob("seed*.json"))
    return (json.loads(spread.read_text()) if spread.is_file() else None,
            [{**json.loads(f.read_text()), "seed": int(f.stem.removeprefix("seed"))} for f in study])


def run_info(m: Path, params: dict) -> dict:
    """Wall time and peak memory of every stage but this one (written after, it would make reruns
    differ), their total and the date of the last, and the library versions: machine facts, kept
    apart from the scores so that `dvc metrics diff` shows no timing noise."""
    timings = {stage: load_json(m / "timings" / f"{stage}.json") for stage in sorted(schema.timed_stages(params))}
    return {
        "date": max((v.get("finished", "") for v in timings.values()), default="") or None,
        "timings": {k: {"wall_s": v["wall_s"], "peak_rss_mb": v["peak_rss_mb"]} for k, v in timings.items()},
        "total_wall_s": round(sum(v["wall_s"] for v in timings.values()), 1),
        "peak_rss_mb": max((v["peak_rss_mb"] for v in timings.values()), default=None),
        "versions": {"python": platform.python_version(), **{p: metadata.version(p) for p in PACKAGES}},
    }


def gan_grid_rows(runs: dict[str, dict]):
    """One row per plain F<n>-D<n>-B<n> run (the heat map; -vbn/-ls variants are in REPORT.md)."""
    for name, r in runs.items():
        try:
            spec = parse_run_id(name)
        except ParamsError:
            continue
        if not (spec.vbn or spec.smoothing):
            yield [name, str(spec.width), str(spec.depth), str(spec.batch_size),
                   r.get("fid", ""), r.get("is", ""), r.get("lenet_acc", "")]


TRAIN_CURVES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")


def read_tsv(path: Path) -> dict[int, float]:
    """dvclive's per-metric TSV (timestamp, step, value) as {step: value}."""
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return {int(row[header.index("step")]): float(row[-1]) for row in (line.split("\t") for line in lines[1:])}


def gan_curves(metrics_dir: Path, runs: list[str], names: tuple[str, ...]):
    """Tidy rows (run, epoch, *names) of the runs ``runs`` of a family, epochs where all were logged."""
    for run_dir in (metrics_dir / run for run in sorted(runs)):
        series = {n: read_tsv(run_dir / f"plots/metrics/{n}.tsv") for n in names
                  if (run_dir / f"plots/metrics/{n}.tsv").is_file()}
        if not series:
            continue
        steps = sorted(set.intersection(*(set(v) for v in series.values())))
        for step in steps:
            row = [run_dir.name, step + 1, *(series[n][step] if n in series else "" for n in names)]
            if "d_acc_real" in series:  # the report's "discriminator accuracy": mean of real and fake
                row.append((series["d_acc_real"][step] + series["d_acc_fake"][step]) / 2)
            yield row


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def main(args, params):
    summary = collect(Path(args.metrics), Path(args.plots), params)
    summary["claims"] = claims.judge(summary, *seeds(Path(args.results), params["profile"]))
    info = run_info(Path(args.metrics), params)
    text = report.render(summary, info)
    save_json(Path(args.metrics) / "summary.json", summary)
    save_json(Path(args.metrics) / "run_info.json", info)
    save_json(Path(args.metrics) / "headlines.json", schema.headline_values(summary, params))
    out, metrics = Path(args.plots) / "summary", Path(args.metrics)
    for spec in registry.FAMILIES.values():
        family, runs = spec.name, spec.runs(params)
        if spec in registry.image_families():
            save_csv(out / f"{family}_grid.csv", ["run", "F", "D", "B", "fid", "is", "lenet_acc"],
                     gan_grid_rows(summary[family]["runs"]))
        save_csv(out / f"{family}_train_curves.csv", ["run", "epoch", *TRAIN_CURVES, "d_acc"],
                 gan_curves(metrics / family, runs, TRAIN_CURVES))
        if spec.curves:
            save_csv(out / f"{family}_score_curves.csv", ["run", "epoch", *spec.curves],
                     gan_curves(metrics / family, runs, spec.curves))
    with atomic_path(args.report) as tmp:
        tmp.write_text(text)
    archive = Path(args.results) / params["profile"]
    with atomic_path(archive) as tmp:
        tmp.mkdir()
        save_json(tmp / "summary.json", summary)
        save_json(tmp / "run_info.json", info)
        (tmp / "REPORT.md").write_text(text)
        save_json(tmp / "provenance.json", {"profile": params["profile"], "device": summary["device"],
                                            "date": info["date"], "commit": git_commit()})
    print(f"evaluate: wrote {args.report}, metrics/headlines.json, summary.json, run_info.json and {archive}/ "
          f"(total stage wall time {info['total_wall_s']}s)")


def configure(parser):
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--plots", default="plots")
    parser.add_argument("--report", default="REPORT.md")
    parser.add_argument("--results", default="results")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
