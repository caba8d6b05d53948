"""Spread over training seeds: mean, std and minimum of each headline across experiments.

One run is one draw: the same commit gave DCGAN FID 170 on one machine and 139 on another, so
a bar met once may be luck. Run the same params with other seeds as DVC experiments, then
aggregate them:

    for s in 1 2; do dvc exp run --queue -n seed$s -S seed=$s; done
    dvc queue start -j 1            # wait for `dvc queue status`
    python -m mnistgan_tools.spread       # -> results/spread/<profile>.{json,md}

It reads ``dvc exp show --json`` (the workspace, the baseline commit and every experiment on
it; ``--rev REV`` adds the experiments of an earlier commit whose dvc.lock is byte-identical to
HEAD's, i.e. whose every stage ran on the same code, data and params), keeps the runs whose
params equal the workspace's except ``seed`` (one run per seed),
skips experiments still queued or running (DVC shows them with the baseline's metrics),
and for each headline key of metrics/headlines.json (:data:`HEADLINES`) writes the values per
seed, their mean, sample standard deviation, minimum and maximum. For a score where lower is
better (FID) the worst case is the maximum; the table marks it. Nothing here is DVC-specific
beyond reading that JSON: :func:`aggregate` is pure and tested on hand-made rows.

Written by hand because DVC's own tools compare experiments but do not aggregate them
(`dvc exp show` lists, `dvc metrics diff` subtracts two).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from mnistgan.files import atomic_path, save_json
from mnistgan.pipeline import summary as schema
from mnistgan.pipeline.summary import get


def headlines(pairs: tuple[str, ...] | None = None) -> list[tuple[str, bool]]:
    """(key, higher is better) of the summary schema's scored headlines, for every pair a run may have."""
    from mnistgan.gan import registry

    pairs = registry.PAIRS if pairs is None else pairs
    pool = list(schema.HEADLINES) + [h for spec in registry.coupled_families()
                                     for h in schema.pair_headlines(spec.name, list(pairs))]
    return [(h.key, h.higher_is_better) for h in pool
            if h.higher_is_better is not None and h.range != "ci" and "chance" not in h.key]


HEADLINES = headlines()


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def _file_data(exp_data: dict, kind: str, path: str) -> dict | None:
    node = ((exp_data or {}).get(kind) or {}).get(path) or {}
    return node.get("data")


def rows_from_exp_show(shown: list[dict]) -> list[dict]:
    """``dvc exp show --json`` -> one row per run: {name, rev, params (flat), summary}."""
    rows = []

    def add(state: dict, name: str | None) -> None:
        data = state.get("data") or {}
        params = _file_data(data, "params", "params.yaml")
        # the declared headlines; commits from before they had their own file declared the summary
        summary = _file_data(data, "metrics", "metrics/headlines.json") or _file_data(data, "metrics", "metrics/summary.json")
        if params is not None and summary is not None:
            rows.append({"name": name or state.get("name") or state.get("rev", "")[:7], "rev": state.get("rev"),
                         "params": _flat(params), "summary": summary})

    for state in shown:
        add(state, state.get("name") or state.get("rev"))
        for exp in state.get("experiments") or []:
            revs = exp.get("revs") or []
            executor = exp.get("executor") or {}
            if executor.get("state") not in (None, "success"):
                continue  # queued or still running: its files are not its own results yet
            if revs:
                add(revs[0], exp.get("name") or revs[0].get("name"))
    return rows


def same_but_seed(rows: list[dict], reference: dict) -> list[dict]:
    """The rows whose params equal ``reference`` (flat) but for ``seed``, one per seed (first wins)."""
    want = {k: v for k, v in reference.items() if k != "seed"}
    out, seeds = [], set()
    for row in rows:
        if {k: v for k, v in row["params"].items() if k != "seed"} == want and row["params"].get("seed") not in seeds:
            seeds.add(row["params"].get("seed"))
            out.append(row)
    return sorted(out, key=lambda r: r["params"].get("seed"))


def aggregate(rows: list[dict]) -> dict:
    """Per headline: values by seed, n, mean, std (n - 1), min, max, and the worst value."""
    metrics = {}
    for key, higher in HEADLINES:
        values = {str(r["params"].get("seed")): get(r["summary"], key) for r in rows}
        values = {s: float(v) for s, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if not values:
            continue
        xs = list(values.values())
        metrics[key] = {
            "values": values, "n": len(xs), "mean": statistics.fmean(xs),
            "std": statistics.stdev(xs) if len(xs) > 1 else math.nan,
            "min": min(xs), "max": max(xs), "worst": min(xs) if higher else max(xs),
            "higher_is_better": higher,
        }
    return {"seeds": [r["params"].get("seed") for r in rows], "runs": [r["name"] for r in rows], "metrics": metrics}


def markdown(result: dict, profile: str) -> str:
    def f(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"

    seeds = [str(s) for s in result["seeds"]]
    lines = [f"Spread over seeds {', '.join(seeds)} (profile `{profile}`; runs: {', '.join(result['runs'])}); "
             "worst = min, or max where lower is better (FID):", "",
             "| metric | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | worst |",
             "|---|" + "---|" * (len(seeds) + 3)]
    for key, m in result["metrics"].items():
        lines.append(f"| `{key}` | " + " | ".join(f(m["values"].get(s)) for s in seeds)
                     + f" | {f(m['mean'])} | {f(m['std'])} | {f(m['worst'])} |")
    return "\n".join(lines) + "\n"


def git_show(rev: str, path: str) -> str:
    r = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"spread: error: no {path} in {rev}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return r.stdout


def same_lock(rev: str) -> bool:
    """Whether ``rev``'s committed dvc.lock is byte-identical to HEAD's (False if either is missing)."""
    shown = [subprocess.run(["git", "show", f"{r}:dvc.lock"], capture_output=True) for r in (rev, "HEAD")]
    return all(s.returncode == 0 for s in shown) and shown[0].stdout == shown[1].stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnistgan_tools.spread", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE", help="read this `dvc exp show --json` output instead of running it")
    parser.add_argument("--out", default="results/spread", help="output directory (default: %(default)s)")
    parser.add_argument("--rev", action="append", default=[], metavar="REV",
                        help="also read the experiments based on this earlier commit; refused unless its dvc.lock "
                             "equals HEAD's (the same pipeline). Repeatable")
    parser.add_argument("--min-seeds", type=int, default=2, help="fail unless this many seeds are found")
    parser.add_argument("--save-summaries", metavar="DIR", nargs="?", const="results/seeds", default=None,
                        help="also write each seed's whole metrics/summary.json (from its experiment's commit) to "
                             "DIR/<profile>/seed<k>.json, what the claims ledger reads (default DIR: %(const)s)")
    args = parser.parse_args(argv)
    if args.json:
        shown = json.loads(Path(args.json).read_text())
    else:
        for rev in args.rev:
            if not same_lock(rev):
                parser.error(f"--rev {rev}: its dvc.lock differs from HEAD's, so its experiments ran another pipeline")
        revs = [a for rev in args.rev for a in ("--rev", rev)]
        r = subprocess.run(["dvc", "exp", "show", "--json", *(["--rev", "HEAD", *revs] if revs else [])],
                           capture_output=True, text=True)
        if r.returncode != 0:
            parser.error(f"dvc exp show failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        shown = json.loads(r.stdout)
    rows = rows_from_exp_show(shown)
    if not rows:
        parser.error("no run with params.yaml and metrics/summary.json in `dvc exp show` (run `dvc repro` first)")
    reference = rows[0]["params"]  # the workspace
    runs = same_but_seed(rows, reference)
    if len(runs) < args.min_seeds:
        parser.error(f"found {len(runs)} seed(s) with the workspace's params (need {args.min_seeds}); queue more with "
                     "`dvc exp run --queue -S seed=K` and `dvc queue start`")
    result = aggregate(runs)
    profile = str(reference.get("profile", "run"))
    out = Path(args.out)
    save_json(out / f"{profile}.json", {"profile": profile, **result})
    with atomic_path(out / f"{profile}.md") as tmp:
        tmp.write_text(markdown(result, profile))
    print(f"spread: {len(runs)} seeds ({', '.join(map(str, result['seeds']))}) -> {out}/{profile}.json and .md")
    if args.save_summaries:
        for run in runs:
            dest = Path(args.save_summaries) / profile / f"seed{run['params'].get('seed')}.json"
            summary = (Path("metrics/summary.json").read_text() if run["name"] == "workspace"
                       else git_show(run["rev"], "metrics/summary.json"))
            with atomic_path(dest) as tmp:
                tmp.write_text(summary)
            print(f"spread: {run['name']} -> {dest}")
    print(markdown(result, profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
