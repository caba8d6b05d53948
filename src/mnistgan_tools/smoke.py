"""Run a profile's whole graph on tiny budgets: python -m mnistgan_tools.smoke --profile profiles/paper.yaml

The paper profile declares report 000's full grids (28 DCGAN and 29 CCGAN runs), full-size
hybrids and PCA, and full-width CoGANs: about seventy stages that would take days on a CPU.
This proves the graph runs before anyone spends that time: every stage of the profile, with
the same runs, pairs, models, batches and lists (the grid), and only the budget keys
(:data:`BUDGET_KEYS`: epochs, images per epoch, scored samples, scoring frequency, the LeNets'
epochs, hybrid and PCA sizes) turned down to :data:`SMOKE_BUDGET`.

1. The profile is validated (a bad run id is one line naming it), the budgets are applied and
   the grid's memory is checked against this machine (mnistgan_tools.plan): a grid that cannot fit
   fails with one line, before any work.
2. The project's source files (Git's view of the checkout: tracked and untracked-but-not-
   ignored; no outputs) are copied into a fresh Git+DVC repository (--workdir, or a temporary
   one), with params.yaml = the profile with tiny budgets.
3. `dvc repro` runs there (``--jobs N``: mnistgan_tools.parallel, N stages at a time); its log is
   <workdir>/smoke.log.
4. It checks that every stage of the resolved dvc.yaml ran, that `dvc status` is clean after,
   and that metrics/summary.json and run_info.json have every key the evaluate stage writes for this profile
   (mnistgan.pipeline.summary.expected_keys) and the headline numbers in range (its headlines).

Exit status 0 and one line with the stage count and the time, or 1 and one line saying what
failed. The slow test ``python -m pytest -m slow tests/e2e/test_paper_smoke.py`` runs it on the
paper profile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mnistgan.errors import PipelineError, first_line
from mnistgan.gan import registry
from mnistgan.pipeline import params as params_mod, summary as schema

# Keys that set how much work a stage does, not what it computes: epochs, images per epoch
# (and the data they are drawn from), scored samples and how often scores are taken, the sizes
# of the hybrid and PCA stages. The smoke run changes these and nothing else.
_FAMILY_BUDGET = ("epochs", "train_limit", "eval_every")  # in every family's params section
_COUPLED_BUDGET = ("eval_samples", "domain_lenet_epochs", "epochs_by_pair", "train_limit_by_pair")
BUDGET_KEYS = frozenset({
    "data.train_limit", "data.test_limit", "data.tsne_samples",
    "lenet.epochs",
    "scoring.samples", "gan.eval_samples",
    *(f"{name}.{key}" for name in registry.FAMILIES for key in _FAMILY_BUDGET),
    *(f"{spec.name}.{key}" for spec in registry.coupled_families() for key in _COUPLED_BUDGET),
    "hybrid.total", "hybrid.test_images", "hybrid.epochs", "hybrid.curve_total", "hybrid.curve_epochs",
    "pca.fit_images",
})

SMOKE_BUDGET: dict[str, Any] = {
    "data.train_limit": 2000,   # 200 digits per class: PCA's 256 components are still fitted per class
    "data.test_limit": 500,
    "data.tsne_samples": 100,
    "lenet.epochs": 1,
    "scoring.samples": 200,     # every final score; > lenet.hidden[1] (84), the LeNet-FID features
    "gan.eval_samples": 100,
    **{f"{spec.name}.{key}": value for spec in registry.image_families()
       for key, value in (("epochs", 1), ("train_limit", 128), ("eval_every", 1))},  # one batch of B128
    **{f"{spec.name}.{key}": value for spec in registry.coupled_families()
       for key, value in (("epochs", 1), ("train_limit", 64),  # one batch of the paper's 64 pairs
                          ("eval_every", 1), ("eval_samples", 100), ("domain_lenet_epochs", 1),
                          ("epochs_by_pair", {}), ("train_limit_by_pair", {}))},  # every pair alike
    "hybrid.total": 500,
    "hybrid.test_images": 200,
    "hybrid.epochs": 1,
    "hybrid.curve_total": 0,    # = hybrid.total
    "hybrid.curve_epochs": 0,   # = hybrid.epochs
}
assert set(SMOKE_BUDGET) <= BUDGET_KEYS

# ----------------------------------------------------------------------------- params
def smoke_budget(params: dict) -> dict[str, Any]:
    """:data:`SMOKE_BUDGET`, with each family's images per epoch raised to its largest batch (a
    grid with B256 runs trains one batch of 256), and the data to hold them."""
    budget = dict(SMOKE_BUDGET)
    for spec in registry.image_families():
        largest = max(params_mod.parse_run_id(r).batch_size for r in spec.runs(params))
        budget[f"{spec.name}.train_limit"] = max(budget[f"{spec.name}.train_limit"], largest)
    for spec in registry.coupled_families():
        budget[f"{spec.name}.train_limit"] = max(budget[f"{spec.name}.train_limit"], params[spec.name]["batch_size"])
    budget["data.train_limit"] = max(budget["data.train_limit"],
                                     *(budget[f"{f.name}.train_limit"] for f in registry.image_families()),
                                     *(2 * budget[f"{f.name}.train_limit"] + 10 for f in registry.coupled_families()))
    return budget


def with_budget(params: dict, budget: dict[str, Any] | None = None) -> dict:
    """``params`` with only budget keys replaced (default: :func:`smoke_budget`), validated again
    (a budget that breaks a cross-field rule, e.g. more scored samples than test digits, is one
    line too)."""
    budget = smoke_budget(params) if budget is None else budget
    bad = sorted(set(budget) - BUDGET_KEYS)
    if bad:
        raise PipelineError(f"{bad[0]} is not a budget key (budget keys: {', '.join(sorted(BUDGET_KEYS))})")
    try:
        return params_mod.validate(params_mod.apply_overrides(params, budget))
    except params_mod.ParamsError as exc:
        raise PipelineError(f"the smoke budget does not fit this profile: {exc}") from None


# ----------------------------------------------------------------------------- the run
# The pipeline's outputs; a README.md among them is source (results/spread/ and results/seeds/ must
# exist: evaluate depends on them).
SKIP = ("dvc.lock", "metrics/", "plots/", "results/", "REPORT.md", "data/", "models/", "checkpoints/")
GIT_IDENTITY = ["-c", "user.name=mnistgan-smoke", "-c", "user.email=smoke@localhost"]


def project_files(root: Path) -> list[str]:
    """The checkout's source files as Git sees them (tracked, and untracked but not ignored),
    without the pipeline's outputs."""
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise PipelineError(f"{root} is not a Git checkout of the project (git ls-files: "
                            f"{first_line(Exception(r.stderr.strip()))})")
    return sorted(f for f in r.stdout.split("\0") if f and (root / f).is_file()
                  and (not f.startswith(SKIP) or f.endswith("/README.md")))


def make_repo(root: Path, dest: Path, params: dict, header: str) -> None:
    """A fresh Git+DVC repository at ``dest`` with the project's files and ``params``, committed."""
    for rel in project_files(root):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    (dest / "params.yaml").write_text(header + yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", *GIT_IDENTITY, "commit", "-qm", "smoke: the profile on tiny budgets"]):
        r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
        if r.returncode != 0:
            raise PipelineError(f"{' '.join(cmd)} failed in {dest}: {first_line(Exception(r.stderr.strip()))}")


def environment() -> dict[str, str]:
    """This environment, with this Python's bin first on PATH (the stages call `python`)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1"}


def stage_names(repo: Path) -> list[str]:
    """Every stage of the repository's dvc.yaml, resolved (foreach expanded)."""
    from mnistgan_tools.parallel import load_pipeline

    return sorted(load_pipeline(repo))


def stages_run(log: str) -> list[str]:
    """Stages a `dvc repro` (or mnistgan_tools.parallel) log says it ran."""
    out = []
    for line in log.splitlines():
        if line.startswith("Running stage '"):
            out.append(line.split("'")[1])
        elif line.startswith("parallel: start "):
            out.append(line.split()[2])
    return out


def check_memory(params: dict, jobs: int, memory_gib: float | None = None) -> None:
    """The grid's GAN stages, ``jobs`` at a time, fit in the free memory of the device the stages
    will use (or in ``memory_gib``); one PipelineError line if not (mnistgan_tools.plan)."""
    from mnistgan.pipeline import device as devices
    from mnistgan_tools import plan

    dev = devices.select(params["device"])
    if memory_gib is None:
        available, where = plan.available_memory(dev)
    else:
        available, where = int(memory_gib * 2**30), "the planned --memory"
    plan.check_memory(plan.gan_work(params), available, where, jobs, dev.type)


def run(root: Path, profile: Path, workdir: Path | None, jobs: int = 1, keep: bool = False,
        budget: dict[str, Any] | None = None, memory_gib: float | None = None) -> int:
    t0 = time.perf_counter()
    params = with_budget(params_mod.load(profile), budget)
    check_memory(params, jobs, memory_gib)

    temporary = workdir is None
    if temporary:
        workdir = Path(tempfile.mkdtemp(prefix="mnistgan-smoke-"))
    elif workdir.exists() and any(workdir.iterdir()):
        raise PipelineError(f"--workdir {workdir} is not empty")
    repo = workdir / "repo"
    repo.mkdir(parents=True)
    changed = ", ".join(f"{k}={v}" for k, v in (budget if budget is not None else smoke_budget(params)).items())
    make_repo(root, repo, params, f"# {profile} with tiny budgets (python -m mnistgan_tools.smoke): {changed}\n")
    expected = stage_names(repo)
    print(f"smoke: {len(expected)} stages of {profile} with tiny budgets in {repo}; log: {workdir / 'smoke.log'}",
          flush=True)

    cmd = ["dvc", "repro"] if jobs == 1 else [sys.executable, "-m", "mnistgan_tools.parallel", "-j", str(jobs)]
    env = environment()
    with open(workdir / "smoke.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if stages_run(line):
                print(f"smoke: [{time.perf_counter() - t0:6.0f}s] {stages_run(line)[0]}", flush=True)
        code = proc.wait()
    text = (workdir / "smoke.log").read_text()
    if code != 0:
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["?"]
        raise PipelineError(f"{' '.join(cmd)} failed (exit {code}): {last[0]} (log: {workdir / 'smoke.log'})")

    problems = [f"stage {s} did not run" for s in expected if s not in set(stages_run(text))]
    status = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    # evaluate is always changed by design (dvc.yaml): only the other stages must be up to date
    stale = (sorted(s for s, why in json.loads(status.stdout or "{}").items() if why != ["always changed"])
             if status.returncode == 0 else ["(dvc status failed)"])
    problems += [f"dvc status: {s} is not up to date" for s in stale]
    summary_path = repo / "metrics/summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    info_path = repo / "metrics/run_info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    problems += schema.problems(summary, params, info)
    took = time.perf_counter() - t0
    if problems:
        more = f" (and {len(problems) - 1} more; workdir kept: {workdir})" if len(problems) > 1 else ""
        raise PipelineError(problems[0] + more)
    print(f"smoke: all {len(expected)} stages of {profile} ran with tiny budgets in {took:.0f}s; dvc status is "
          f"clean; metrics/summary.json has all {len(schema.expected_keys(params))} keys", flush=True)
    if temporary and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnistgan_tools.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=Path("profiles/paper.yaml"),
                        help="the params file whose graph to run (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, help="run here (kept); default: a temporary directory, "
                                                     "removed after a successful run")
    parser.add_argument("--jobs", "-j", type=int, default=1,
                        help="stages at a time (mnistgan_tools.parallel); 1 = `dvc repro` (default)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--memory", type=float, metavar="GIB",
                        help="plan for this much free memory (GiB) instead of this machine's")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    root = Path.cwd()
    if not (root / "dvc.yaml").is_file():
        parser.error(f"no dvc.yaml in {root}; run from the project root")
    try:
        return run(root, args.profile, args.workdir, args.jobs, args.keep, memory_gib=args.memory)
    except PipelineError as exc:
        print(f"smoke: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("smoke: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
