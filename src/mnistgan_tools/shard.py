"""The GAN stages over several machines or GPUs with Ray, back as one experiment through DVC's
run cache: python -m mnistgan_tools.shard --workers 4 --remote /shared/dvcstore

Every GAN stage (train_dcgan@*, train_ccgan@*, train_cogan@*; ``--stages`` picks others) is
independent of the others once the stages it needs (download, prepare, train_lenet,
train_edge_lenet) are done, so the grid splits into shards. DVC's own mechanisms carry the
results; Ray only places the work:

0. One Ray task runs the upstream stages in its own clone of this commit and pushes them to the
   DVC remote (``--remote``) with their run-cache entries. They run once: every later clone
   restores them from the run cache, so all shards train on the same data and scorer.
1. ``--workers`` Ray tasks each get a shard (a longest-first split by each stage's FLOPs,
   mnistgan_tools.plan.lpt) and, in their own clone at ``<workdir>/shard-<i>``, for each stage:
   ``dvc repro --pull STAGE`` (the upstream stages come back from the run cache, the stage
   runs), ``dvc commit -f STAGE`` and ``dvc push --run-cache STAGE``, so a finished stage is on
   the remote at once.
2. This clone (the aggregator) runs ``dvc pull --run-cache --allow-missing``, then
   ``dvc repro --pull``: every sharded stage is restored from the run cache ("is cached -
   skipping run"), and only the stages after them (pca_sweep, generate_synthetic, train_hybrid,
   evaluate, plots_template) run here. The tool checks that no sharded or upstream stage ran
   again; commit dvc.lock and the metrics as after any `dvc repro`.

Two places where DVC 3 needs help, both with its own API: a stage with a ``cache: false``
output that is not a metric or plot (our sample grids, timings, per-epoch TSVs, committed to
Git on purpose) is left out of the run cache by `dvc repro` (DVC PR #8738), but `dvc commit -f`
saves it, its uncached outputs copied into the cache; and `dvc push` does not send those
copies, so each worker pushes them with DataCloud.push (the objects of the run-cache entry, as
`dvc repro --pull` fetches them). And `dvc repro` alone, after `dvc pull --run-cache`, would
rerun everything: the pull fetches the entries, not the outputs they name; `--pull` fetches
those when it restores a stage.

Interruptions: a worker killed mid-stage (its node lost, the task killed) fails its shard; the
other shards finish and push. Rerunning the same command restores every pushed stage from the
run cache, and the killed stage resumes from its last epoch (its checkpoint is in the worker's
clone, which a rerun reuses when it lands on the same node or ``--workdir`` is shared; a stage
on another node starts that stage over). ``--retries N`` lets Ray rerun a crashed shard itself.

Addresses: ``local`` starts a Ray cluster on this machine (``--workers`` x ``--cpus-per-worker``
CPUs); ``auto`` joins the cluster this node belongs to (``ray start --head`` / ``ray start
--address HEAD:6379`` on the others); ``ray://HEAD:10001`` connects through Ray Client
(``pip install -e '.[cluster]'``). On a cluster, every node needs this project installed in the
same environment, ``--repo`` a Git URL every node can fetch this commit from, ``--remote`` a
DVC remote every node can reach, and ``--workdir`` a path valid on every node.

Hand-written on purpose only where nothing exists: splitting the stages (Ray places tasks but
does not know DVC stages) and the checks around DVC; transport, caching and restoring are
DVC's, placement and retries Ray's.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mnistgan.errors import PipelineError, first_line
from mnistgan.gan import registry
from mnistgan.pipeline import params as params_mod

DEFAULT_STAGES = tuple(f"train_{name}@*" for name in registry.FAMILIES)  # dvc.yaml: train_<family>@<run>
REMOTE = "shard"  # the DVC remote's name in every clone's .dvc/config.local
DVC = [sys.executable, "-m", "dvc"]


# ----------------------------------------------------------------------------- planning (pure)
def select(names: list[str], patterns: list[str]) -> list[str]:
    """The stage names matching any glob of ``patterns``, in the given order."""
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def split(weights: dict[str, float], workers: int) -> list[list[str]]:
    """Stages into ``workers`` shards, longest first to the lightest shard (mnistgan_tools.plan.lpt)."""
    from mnistgan_tools.plan import lpt

    return [s for s in lpt(weights, workers)[1] if s]


def stage_weights(params: dict, stages: list[str]) -> dict[str, float]:
    """Each stage's training FLOPs (epochs x images x FLOPs per image of its networks); stages
    the plan does not model weigh as much as the heaviest, so they are spread first."""
    from mnistgan_tools import plan

    work = {w.stage: w for w in plan.gan_work(params)}
    weights = {s: sum(p.epochs * p.images * plan.step_flops(p.config) for p in work[s].parts)
               for s in stages if s in work}
    heaviest = max(weights.values(), default=1.0)
    return {s: weights.get(s, heaviest) for s in stages}


def parse_repro(log: str) -> dict[str, str]:
    """What `dvc repro` did with each stage: ran, restored (from the run cache) or unchanged."""
    out = {}
    for line in log.splitlines():
        if line.startswith("Running stage '"):
            out[line.split("'")[1]] = "ran"
        elif line.startswith("Stage '") and "is cached - skipping run" in line:
            out[line.split("'")[1]] = "restored"
        elif line.startswith("Stage '") and "didn't change, skipping" in line:
            out[line.split("'")[1]] = "unchanged"
    return out


# ----------------------------------------------------------------------------- in a clone
def sh(cmd: list[str], cwd: Path, log: Path, env: dict[str, str], started=None) -> str:
    """Run ``cmd`` under a supervisor that dies with this process (mnistgan_tools.parallel's: if the
    worker is killed, so is the stage), appending its output to ``log``; return the output or
    raise PipelineError with its last line. ``started(pgid)`` is told the command's process group."""
    import shlex

    from mnistgan_tools.parallel import SUPERVISOR

    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}  # in {cwd}\n")
        f.flush()
        proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(os.getpid()), shlex.join(cmd)], cwd=cwd,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        if started:
            started(proc.pid)
        out = []
        for line in proc.stdout:
            f.write(line)
            f.flush()
            out.append(line)
        code = proc.wait()
    text = "".join(out)
    if code != 0:
        raise PipelineError(f"{' '.join(cmd[:4] if cmd[:3] == DVC else cmd[:3])} failed in {cwd}: "
                            f"{failure(text, code)}")
    return text


def failure(output: str, code: int) -> str:
    """One line for a failed command: its last line, and when that is DVC's "ERROR: failed to
    reproduce ..." the stage's own last line before it ("OSError: [Errno 28] No space left...")."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    if not lines:
        return f"exit {code}"
    cause = [ln for ln in lines[:-1] if not ln.startswith(("ERROR", "Running stage", "Stage ", "Verifying", "> "))][-1:]
    if lines[-1].startswith("ERROR: failed to reproduce") and cause:
        return f"{lines[-1]}; its last line: {cause[0]}"
    return lines[-1]


def clone_at(repo: str, commit: str, dest: Path, log: Path, env: dict[str, str]) -> None:
    """``dest``, a clone of ``repo`` checked out at ``commit``. An existing clone is reused:
    its ignored files (data, models, checkpoints, DVC cache) stay, so a rerun resumes."""
    if not (dest / ".git").is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        sh(["git", "clone", "-q", "--no-checkout", repo, str(dest)], dest.parent, log, env)
    else:
        sh(["git", "fetch", "-q", repo, commit], dest, log, env)
    sh(["git", "checkout", "-q", "--force", commit], dest, log, env)


def use_remote(root: Path, url: str, log: Path, env: dict[str, str]) -> None:
    """Make ``url`` this clone's default DVC remote, in .dvc/config.local (not committed)."""
    sh([*DVC, "remote", "add", "--local", "--force", "--default", REMOTE, url], root, log, env)


def push_uncached_outputs(stages: list[str]) -> int:
    """Push the objects of the stages' run-cache entries that `dvc push` leaves out: the outputs
    with ``cache: false`` (`dvc commit -f` put copies in the cache). Returns how many went.
    Run in the clone's root: DVC resolves the stage's outputs against the working directory."""
    from dvc.repo import Repo
    from dvc.stage.serialize import to_single_stage_lockfile

    sent = 0
    with Repo(os.getcwd()) as repo:
        for stage in repo.index.stages:
            if stage.addressing in stages and any(not out.use_cache for out in stage.outs):
                entry = repo.stage_cache._create_stage(to_single_stage_lockfile(stage), wdir=stage.wdir)
                for objs in entry.get_used_objs().values():
                    sent += len(repo.cloud.push(objs).transferred)
    return sent


PUSH_UNCACHED = ("import sys; from mnistgan_tools.shard import push_uncached_outputs; "
                 "print(push_uncached_outputs(sys.argv[1:]), 'uncached output file(s) pushed')")


def run_stages(spec: dict[str, Any]) -> dict[str, Any]:
    """One shard, in its own clone: each stage reproduced (upstream restored from the run cache),
    recorded in the run cache and pushed. Runs in a Ray worker (or in-process in tests)."""
    t0 = time.perf_counter()
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    root, log = workdir / spec["name"], workdir / f"{spec['name']}.log"
    env = {**os.environ, **spec["env"],
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # <workdir>/<name>.json: where the shard is (its worker's pid, the stage running and its process group)
    state = {"name": spec["name"], "host": socket.gethostname(), "pid": os.getpid(), "stage": None, "pgid": None,
             "done": []}

    def note(**kw) -> None:
        state.update(kw)
        tmp = workdir / f".{spec['name']}.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, workdir / f"{spec['name']}.json")

    note()
    clone_at(spec["repo"], spec["commit"], root, log, env)
    use_remote(root, spec["remote"], log, env)
    results = {}
    for stage in spec["stages"]:
        note(stage=stage)
        did = parse_repro(sh([*DVC, "repro", "--pull", stage], root, log, env, lambda pgid: note(pgid=pgid)))
        results[stage] = did.get(stage, "unchanged")
        sh([*DVC, "commit", "--force", stage], root, log, env)  # also into the run cache (see module doc)
        sh([*DVC, "push", "--run-cache", stage], root, log, env)
        sh([sys.executable, "-c", PUSH_UNCACHED, stage], root, log, env)
        note(stage=None, done=[*state["done"], stage])
    return {"name": spec["name"], "host": state["host"], "stages": results, "seconds": time.perf_counter() - t0,
            "root": str(root)}


# ----------------------------------------------------------------------------- the aggregator
def git(root: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if r.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {first_line(Exception(r.stderr.strip() or 'failed'))}")
    return r.stdout.strip()


def check_committed(root: Path) -> str:
    """HEAD's commit, if the workers' clones of it hold what this checkout would run."""
    dirty = git(root, "status", "--porcelain", "--untracked-files=all", "--", "dvc.yaml", "params.yaml", "src",
                "stages", ".dvc/config", ".dvcignore")
    if dirty:
        first = dirty.splitlines()[0].split(maxsplit=1)[1]  # "XY path"
        raise PipelineError(f"{first} differs from HEAD (uncommitted or untracked); the workers clone the commit: "
                            f"commit it first")
    return git(root, "rev-parse", "HEAD")


def missing_runs(stages: list[str]) -> list[str]:
    """The stages among ``stages`` with no run-cache entry for their current deps and params in
    the clone at the working directory (after `dvc pull --run-cache`): `dvc repro` would train
    them here."""
    from dvc.repo import Repo

    missing = []
    with Repo(os.getcwd()) as repo:
        for stage in repo.index.stages:
            if stage.addressing in stages:
                stage.save_deps()
                if repo.stage_cache._load(stage) is None:
                    missing.append(stage.addressing)
    return missing


MISSING_RUNS = ("import json, sys; from mnistgan_tools.shard import missing_runs; "
                "print(json.dumps(missing_runs(sys.argv[1:])))")


def aggregate(root: Path, remote: str, sharded: list[str], upstream: list[str], log: Path) -> dict[str, str]:
    """The aggregating clone: pull the run cache, then `dvc repro --pull`; a sharded or upstream
    stage that would run (no entry) or did run is an error."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_NO_ANALYTICS": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    use_remote(root, remote, log, env)
    sh([*DVC, "pull", "--run-cache", "--allow-missing"], root, log, env)
    did = parse_repro(sh([*DVC, "repro", "--pull", *upstream], root, log, env)) if upstream else {}
    out = sh([sys.executable, "-c", MISSING_RUNS, *sharded], root, log, env)
    missing = json.loads(out.strip().splitlines()[-1])
    if missing:
        raise PipelineError(f"{len(missing)} sharded stage(s) have no run-cache entry on the remote, e.g. "
                            f"{missing[0]}; rerun the shards first (nothing was trained here)")
    for stage, how in parse_repro(sh([*DVC, "repro", "--pull"], root, log, env)).items():
        if how != "unchanged" or stage not in did:  # upstream restored above stays "restored"
            did[stage] = how
    again = [s for s in [*upstream, *sharded] if did.get(s) == "ran"]
    if again:
        raise PipelineError(f"the aggregator reran {', '.join(again)}: not restored from the run cache")
    return did


# ----------------------------------------------------------------------------- the driver
def default_workdir(root: Path) -> Path:
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"mnistgan-shard-{root.name}-{tag}"


def connect(address: str, workers: int, cpus: float, gpus: float):
    try:
        import ray
    except ImportError:
        raise PipelineError("Ray is not installed: pip install -e '.[cluster]'") from None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address == "local":
        ray.init(num_cpus=max(1, int(workers * cpus + 0.999)), object_store_memory=100 * 2**20, **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return ray


def run(root: Path, args) -> int:
    t0 = time.perf_counter()
    from mnistgan_tools import parallel, plan

    params = params_mod.load(os.path.relpath(root / "params.yaml"))
    pipeline = parallel.load_pipeline(root)
    names = sorted(pipeline)
    patterns = args.stages or list(DEFAULT_STAGES)
    sharded = select(names, patterns)
    if not sharded:
        raise PipelineError(f"no stage matches {' '.join(patterns)} (see `dvc stage list`)")
    upstream = sorted(parallel.closure(pipeline, sharded) - set(sharded))
    gan = [w for w in plan.gan_work(params) if w.stage in sharded]
    if gan:
        from mnistgan.pipeline import device as devices

        dev = devices.select(params["device"])
        available, where = ((int(args.memory * 2**30), "the planned --memory") if args.memory is not None
                            else plan.available_memory(dev))
        plan.check_memory(gan, available, where, 1, dev.type)  # each worker runs one stage at a time
    shards = split(stage_weights(params, sharded), args.workers)
    commit = check_committed(root)
    workdir = (args.workdir or default_workdir(root)).resolve()
    print(f"shard: {len(sharded)} stage(s) of {commit[:7]} in {len(shards)} shard(s) "
          f"({', '.join(str(len(s)) for s in shards)} stages); upstream, run once: {', '.join(upstream) or '-'}; "
          f"clones and logs in {workdir}", flush=True)
    if args.dry:
        for i, s in enumerate(shards):
            print(f"shard-{i}: {' '.join(s)}")
        return 0

    env = {k: os.environ[k] for k in ("MNIST_MIRROR", "MNISTGAN_PUBLIC_MIRRORS", "MNISTGAN_DEVICE") if k in os.environ}
    env["DVC_NO_ANALYTICS"] = "1"
    base = {"repo": args.repo or str(root), "commit": commit, "remote": args.remote, "workdir": str(workdir),
            "env": env}
    ray = connect(args.address, args.workers, args.cpus_per_worker, args.gpus_per_worker)
    task = ray.remote(run_stages).options(num_cpus=args.cpus_per_worker, num_gpus=args.gpus_per_worker,
                                          max_retries=args.retries)
    try:
        if upstream:
            try:
                done = ray.get(task.remote({**base, "name": "upstream", "stages": upstream}))
            except Exception as exc:  # noqa: BLE001 - one line, as for a shard
                raise PipelineError(f"the upstream stages failed: {_ray_error(exc)} (log: {workdir}/upstream.log)")
            print(f"shard: upstream on {done['host']} in {done['seconds']:.0f}s: "
                  + ", ".join(f"{s} {how}" for s, how in done["stages"].items()), flush=True)
        pending = {task.remote({**base, "name": f"shard-{i}", "stages": s}): f"shard-{i}"
                   for i, s in enumerate(shards)}
        failed, results = [], {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ready[0])
            try:
                done = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - a crashed worker, a failed stage: report, go on
                failed.append(name)
                print(f"shard: {name} FAILED: {_ray_error(exc)} (log: {workdir / name}.log)", file=sys.stderr,
                      flush=True)
                continue
            results[name] = done
            ran = [s for s, how in done["stages"].items() if how == "ran"]
            print(f"shard: {name} done on {done['host']} in {done['seconds']:.0f}s: ran {len(ran)}, "
                  f"{len(done['stages']) - len(ran)} already done", flush=True)
    finally:
        ray.shutdown()
    if failed:
        raise PipelineError(f"{', '.join(failed)} failed; the stages they finished are pushed. Run the same "
                            f"command again to finish: pushed stages are restored, a killed stage resumes "
                            f"from its checkpoint")
    did = aggregate(root, args.remote, sharded, upstream, workdir / "aggregator.log")
    here = [s for s, how in did.items() if how == "ran"]
    restored = [s for s in [*upstream, *sharded] if did.get(s) == "restored"]
    print(f"shard: aggregated in {root}: {len(restored)} stage(s) restored from the run cache, none rerun; "
          f"ran here: {', '.join(here) or 'nothing'} ({time.perf_counter() - t0:.0f}s). "
          f"Commit dvc.lock and the metrics as after `dvc repro`.", flush=True)
    return 0


def _ray_error(exc: BaseException) -> str:
    """One line for a failed Ray task: the PipelineError inside, or what Ray says."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, PipelineError):
        return str(cause)
    text = first_line(exc)
    return text if len(text) < 300 else text[:300] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnistgan_tools.shard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="local",
                        help="local (a Ray cluster on this machine; default), auto (the cluster this node is in) "
                             "or ray://HEAD:10001 (Ray Client)")
    parser.add_argument("--workers", type=int, default=2, help="shards, one Ray task each (default %(default)s)")
    parser.add_argument("--remote", required=True,
                        help="DVC remote URL every clone pushes to and pulls from (a directory, s3://, ssh://...)")
    parser.add_argument("--stages", action="append", metavar="PATTERN",
                        help=f"stages to shard (globs, repeatable; default: {' '.join(DEFAULT_STAGES)})")
    parser.add_argument("--repo", help="Git URL the workers clone this commit from (default: this checkout)")
    parser.add_argument("--workdir", type=Path,
                        help="the workers' clones and logs (a path valid on every node; default: a directory "
                             "under the system temp dir named after this checkout, reused by a rerun)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--retries", type=int, default=0, help="Ray reruns of a crashed shard (default 0)")
    parser.add_argument("--memory", type=float, metavar="GIB",
                        help="free memory per worker to plan with (default: this machine's)")
    parser.add_argument("--dry", action="store_true", help="print the shards; run nothing")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    root = Path.cwd()
    if not (root / "dvc.yaml").is_file():
        parser.error(f"no dvc.yaml in {root}; run from the project root")
    try:
        return run(root, args)
    except PipelineError as exc:
        print(f"shard: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("shard: interrupted; finished stages are pushed, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
