"""`dvc repro`, several stages at a time: python -m mnistgan.parallel -j 4

DVC runs one stage at a time (`dvc repro` has no --jobs, and two `dvc repro` processes in one
workspace race for its lock). The GAN grid is dozens of independent stages that each leave a
GPU mostly idle, or use a CPU core poorly, so running them side by side is where the paper
profile's wall time goes down. This tool does what `dvc repro` does, N stages at a time:

1. reads the pipeline from dvc.yaml (through DVC) and orders its stages by their deps/outs;
2. runs a stage's command, exactly as written in dvc.yaml, once every stage it depends on
   has finished, if `dvc status` says the stage is out of date at that moment (so, as with
   `dvc repro`, a stage whose inputs came out unchanged is skipped); at most N at a time;
3. records every stage that ran with `dvc commit -f`, as `dvc repro` does after running a
   command, so `dvc status` is clean and a following `dvc repro` runs nothing.

A failed stage stops new launches; the stages already running finish, and everything that
succeeded is committed (the failed stage's GAN checkpoint lets a rerun resume). Ctrl-C
terminates the running stages the same way. Stages start longest first, by the wall time
of their last run (metrics/timings). For experiments: run this, then `dvc exp run -n NAME`,
which finds every stage up to date and records the experiment.

CPU threads: each stage uses `cpu_threads` from params.yaml (0: all cores), a param, so DVC
sees it and `dvc repro` gives the same numbers (CPU results depend on the thread count). This
tool does not change it; with -j N, set it to cores / N (`cpu_threads: 1` in params.yaml, or
`dvc exp run -S cpu_threads=1`), or stages running side by side oversubscribe the CPU (it
warns when N x cpu_threads exceeds the cores).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import PipelineError
from .files import load_json


@dataclass
class Stage:
    name: str
    cmd: str
    deps: list[str]
    outs: list[str]
    upstream: set[str] = field(default_factory=set)


def _contains(a: str, b: str) -> bool:
    """Whether path ``a`` is ``b`` or one of them lies inside the other."""
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def link(stages: Iterable[Stage]) -> dict[str, Stage]:
    """Index stages by name and fill ``upstream``: the stages producing an output that a dep
    of the stage is, contains or lies in."""
    by_name = {s.name: s for s in stages}
    for s in by_name.values():
        s.upstream = {o.name for o in by_name.values() if o is not s
                      and any(_contains(d, out) for d in s.deps for out in o.outs)}
    return by_name


def load_pipeline(root: Path) -> dict[str, Stage]:
    """The stages of the repository at ``root``, as DVC resolves them (foreach expanded)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = [Stage(s.addressing, s.cmd if isinstance(s.cmd, str) else " && ".join(s.cmd),
                        [d.def_path for d in s.deps], [o.def_path for o in s.outs])
                  for s in repo.index.stages if getattr(s, "cmd", None)]
    return link(stages)


def closure(stages: dict[str, Stage], targets: Iterable[str]) -> set[str]:
    """``targets`` and every stage they depend on, transitively."""
    todo, seen = list(targets), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(stages[name].upstream)
    return seen


def select(stages: dict[str, Stage], patterns: list[str]) -> set[str]:
    """Stage names matching any glob of ``patterns`` (none: all), with everything upstream."""
    if not patterns:
        return set(stages)
    hits = {n for n in stages if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    missing = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in stages)]
    if missing:
        raise SystemExit(f"parallel: error: no stage matches {missing[0]!r} (see `dvc stage list`)")
    return closure(stages, hits)


def dvc_status(root: Path, names: Iterable[str] = ()) -> set[str]:
    """The stages among ``names`` (none: all) that `dvc status` says are out of date."""
    r = subprocess.run(["dvc", "status", "--json", *names], cwd=root, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"parallel: error: dvc status failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return set(json.loads(r.stdout or "{}"))


def remove_outputs(root: Path, stage: Stage) -> None:
    """Delete a stage's outputs before it runs, as `dvc repro` does, so nothing stale is
    committed with them (they stay in the DVC cache; `dvc checkout` brings them back)."""
    for out in stage.outs:
        path = root / out
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def last_wall_time(root: Path, stage: Stage) -> float:
    """The stage's wall time in its last run, from the ``--timing`` JSON among its outputs
    (``timings/<stage>.json``); infinity when unknown, so new stages start first."""
    for out in stage.outs:
        path = root / out
        if path.name == f"{stage.name}.json" and path.parent.name == "timings" and path.is_file():
            try:
                return float(load_json(path)["wall_s"])
            except (PipelineError, KeyError, TypeError, ValueError):
                break
    return math.inf


# --- threads ----------------------------------------------------------------------------------

def cpu_threads(root: Path) -> int | None:
    """The CPU threads each stage uses: `cpu_threads` in params.yaml (missing or 0: all cores);
    None if it is not a whole number >= 0 (then there is nothing to warn about here)."""
    try:
        value = (yaml.safe_load((root / "params.yaml").read_text()) or {}).get("cpu_threads", 0)
    except (OSError, yaml.YAMLError, AttributeError):
        value = 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value or os.cpu_count() or 1


def oversubscription_warning(root: Path, jobs: int) -> str | None:
    """One warning line when ``jobs`` stages of ``cpu_threads`` threads exceed the cores."""
    threads, cores = cpu_threads(root), os.cpu_count() or 1
    if threads is None or jobs * threads <= cores:
        return None
    k = cores // jobs
    fix = (f"set cpu_threads to {k} in params.yaml (or `dvc exp run -S cpu_threads={k}`)" if k else
           f"run at most -j {cores}, with cpu_threads: 1 in params.yaml")
    return (f"parallel: warning: -j {jobs} stages x {threads} CPU threads (cpu_threads in params.yaml; 0 = all "
            f"cores) > {cores} cores: oversubscribed, CPU stages run several times slower; {fix}. "
            f"cpu_threads is a param, so `dvc repro` gives the same numbers")


class Runner:
    """Launches stage commands as process groups and streams their output, prefixed."""

    def __init__(self, root: Path):
        self.root, self.lock = root, threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}

    def say(self, line: str) -> None:
        with self.lock:
            print(line, flush=True)

    def start(self, stage: Stage, done) -> None:
        """Run ``stage.cmd``; put (name, exit status, seconds) on ``done`` when it ends."""
        proc = subprocess.Popen(stage.cmd, shell=True, cwd=self.root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[stage.name] = proc
        t0 = time.perf_counter()

        def pump():
            for line in proc.stdout:
                self.say(f"[{stage.name}] {line.rstrip()}")
            done.put((stage.name, proc.wait(), time.perf_counter() - t0))

        threading.Thread(target=pump, daemon=True).start()

    def terminate(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def run(root: Path, jobs: int, patterns: list[str], dry: bool = False) -> int:
    """Run the out-of-date stages among ``patterns`` (and their upstream), ``jobs`` at a time,
    then `dvc commit` them. Returns the exit status."""
    t_all = time.perf_counter()
    stages = load_pipeline(root)
    wanted = select(stages, patterns)
    waiting = {n: stages[n].upstream & wanted for n in wanted}
    finished: set[str] = set()
    ran: list[str] = []      # started and, once the loop ends, succeeded
    running: set[str] = set()
    failed: list[str] = []
    done: queue.Queue = queue.Queue()
    runner = Runner(root)
    if warning := oversubscription_warning(root, jobs):
        print(warning, file=sys.stderr, flush=True)
    stale_at_start = dvc_status(root)
    # longest first (by the last run's wall time): the long GAN runs do not end up last, alone
    expected = {n: last_wall_time(root, stages[n]) for n in wanted}

    def launch_ready() -> None:
        """Start (or skip, when up to date) every stage whose upstream has finished."""
        progress = True
        while progress and not failed:
            progress = False
            for name in sorted((n for n, up in waiting.items() if up <= finished),
                               key=lambda n: (-expected[n], n)):
                if len(running) >= jobs:
                    return
                del waiting[name]
                progress = True
                if set(ran) & closure(stages, [name]):
                    # an upstream stage ran: its new outputs decide (a dry run assumes they changed)
                    stale = dry or bool(dvc_status(root, [name]))
                else:
                    stale = name in stale_at_start
                if not stale:  # done: look again, stages behind it may now come first
                    finished.add(name)
                    break
                ran.append(name)
                if dry:
                    runner.say(f"would run {name}: {stages[name].cmd}")
                    finished.add(name)
                    continue
                remove_outputs(root, stages[name])
                running.add(name)
                runner.say(f"parallel: start {name} ({len(running)} running, {len(waiting)} waiting)")
                runner.start(stages[name], done)

    def collect() -> None:
        name, code, wall = done.get()
        running.discard(name)
        if code == 0:
            finished.add(name)
            runner.say(f"parallel: done {name} in {wall:.1f}s")
        else:
            failed.append(name)
            ran.remove(name)
            runner.say(f"parallel: FAILED {name} (exit {code}) after {wall:.1f}s; "
                       f"waiting for {len(running)} running stage(s)")

    try:
        launch_ready()
        while running:
            collect()
            launch_ready()
        if waiting and not failed:
            raise RuntimeError(f"stages wait on each other: {sorted(waiting)}")
    except KeyboardInterrupt:
        runner.say("parallel: interrupted; stopping the running stages")
        runner.terminate()
        failed.append("(interrupted)")
        while running:
            collect()
    if ran and not dry:
        r = subprocess.run(["dvc", "commit", "-f", *ran], cwd=root)
        if r.returncode != 0:
            print("parallel: error: dvc commit failed; run `dvc repro` to finish", file=sys.stderr)
            return 1
    took = time.perf_counter() - t_all
    if failed:
        print(f"parallel: error: {', '.join(failed)} failed; the {len(ran)} stage(s) that ran were committed "
              f"({took:.1f}s). Fix it and rerun: committed stages do not run again.", file=sys.stderr)
        return 1
    print(f"parallel: {len(ran)} stage(s) {'would run' if dry else 'ran'}, up to {jobs} at a time, "
          f"in {took:.1f}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistgan.parallel", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-j", "--jobs", type=int, default=2,
                        help="stages running at once (default %(default)s)")
    parser.add_argument("targets", nargs="*", metavar="STAGE",
                        help="stage names or globs, e.g. 'train_ccgan@*' (default: the whole pipeline); "
                             "the stages they depend on run too")
    parser.add_argument("--dry", action="store_true", help="list the stages that would run, run nothing")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    root = Path.cwd()
    if not (root / "dvc.yaml").is_file():
        parser.error(f"no dvc.yaml in {root}; run from the project root")
    return run(root, args.jobs, args.targets, args.dry)


if __name__ == "__main__":
    sys.exit(main())
