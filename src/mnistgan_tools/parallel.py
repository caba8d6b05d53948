"""`dvc repro`, several stages at a time: python -m mnistgan_tools.parallel -j 4

DVC runs one stage at a time. The GAN grid is dozens of independent stages that each leave a
GPU mostly idle, or use a CPU core poorly, so running them side by side is where the paper
profile's wall time goes down.

Why not several `dvc repro -s STAGE` at once, with DVC's own locking? DVC 3.67 releases its
repo lock while a stage's command runs, and concurrent `dvc repro -s a` / `dvc repro -s b`
both record correctly in dvc.lock. What it lacks is a scheduler: `dvc repro` has no --jobs;
a stage whose deps another process is still writing fails at once ("'out' is busy", exit
255) instead of waiting; `--wait-for-lock` waits only for the repo lock; `dvc queue start -j
N` runs whole experiments side by side, each a one-at-a-time `dvc repro`; and `dvc repro`
hashes a stage's deps after its command, so an edit made while it ran is recorded against
outputs of the old inputs. To see the first point, with a stage `all` that depends on `a`'s
outputs: `dvc repro -s a & sleep 1; dvc --wait-for-lock repro -s all` (docs/scaling-out.md).
So this tool does what `dvc repro` does, N stages at a time:

1. reads the pipeline from dvc.yaml (through DVC) and orders its stages by their deps/outs;
2. runs a stage's command, exactly as written in dvc.yaml, once every stage it depends on
   has finished and been recorded, if `dvc status` says the stage is out of date at that
   moment (so, as with `dvc repro`, a stage whose inputs came out unchanged is skipped); at
   most N at a time;
3. records each stage in dvc.lock (`dvc commit -f STAGE`) as soon as it finishes, and only if
   none of its inputs changed while it ran: its file and directory deps (content), the values
   of its params and its definition in dvc.yaml are the same as when it started. A stage whose
   inputs were edited mid-run is not recorded: it stays stale, one line names what changed,
   and the stages after it do not start. So an edit to src/, stages/ or params.yaml during a
   long run never goes into dvc.lock against outputs made from the old inputs.

A failed stage stops new launches; the stages already running finish and are recorded (the
failed stage's GAN checkpoint lets a rerun resume). Ctrl-C (SIGINT) or SIGTERM stops the
running stages (their whole process groups) and records only the stages that had finished
before it; if the runner itself is killed (SIGKILL), Linux stops the stages too (each stage
runs under a small supervisor with PR_SET_PDEATHSIG). Stages start longest first, by the wall
time of their last run (metrics/timings). For experiments: run this, then `dvc exp run -n
NAME`, which finds every stage up to date and records the experiment.

CPU threads: each stage uses `cpu_threads` from params.yaml (0: all cores), a param, so DVC
sees it and `dvc repro` gives the same numbers (CPU results depend on the thread count). This
tool does not change it; with -j N, set it to cores / N (`cpu_threads: 1` in params.yaml, or
`dvc exp run -S cpu_threads=1`), or stages running side by side oversubscribe the CPU (it
warns when N x cpu_threads exceeds the cores).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
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

from mnistgan.errors import PipelineError, first_line
from mnistgan.files import load_json

DVC = [sys.executable, "-m", "dvc"]  # the DVC this Python imports, on PATH or not


@dataclass
class Stage:
    name: str
    cmd: str
    deps: list[str]  # files and directories, relative to the project root
    outs: list[str]
    upstream: set[str] = field(default_factory=set)
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)  # params file: keys (none: all)
    wdir: str = "."
    dvcfile: str = "dvc.yaml"

    def definition(self) -> tuple:
        """What dvc.yaml says about the stage: a change to it makes the stage stale."""
        return (self.cmd, sorted(self.deps), sorted(self.outs), sorted(self.params.items()), self.wdir)


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
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    def rel(path: str) -> str:
        return Path(os.path.relpath(path, root)).as_posix()

    stages = []
    with Repo(str(root)) as repo:
        for s in repo.index.stages:
            if not getattr(s, "cmd", None):
                continue
            params = {rel(d.fs_path): tuple(d.params) for d in s.deps if isinstance(d, ParamsDependency)}
            deps = [rel(d.fs_path) for d in s.deps if not isinstance(d, ParamsDependency)
                    and getattr(d.fs, "protocol", "local") == "local"]
            name = s.name if rel(s.path) == "dvc.yaml" else f"{rel(s.path)}:{s.name}"  # `dvc` run at root
            stages.append(Stage(name, s.cmd if isinstance(s.cmd, str) else " && ".join(s.cmd),
                                deps, [rel(o.fs_path) for o in s.outs], params=params,
                                wdir=rel(s.wdir), dvcfile=rel(s.path)))
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
    r = subprocess.run([*DVC, "status", "--json", *names], cwd=root, capture_output=True, text=True,
                       start_new_session=True)  # a Ctrl-C is the runner's to handle
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


# --- the inputs a stage ran with ------------------------------------------------------------

MISSING = "missing"


def _canonical(value) -> str:
    """A param's value as text, equal for equal values (dicts in any order)."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:  # keys of mixed types
        return repr(value)


class Inputs:
    """Fingerprints of what `dvc commit` records against a stage's outputs: the content of its
    file and directory deps (directories: every file below that .dvcignore keeps, sorted; a dep
    that does not exist counts as missing), the values of its params, its definition."""

    def __init__(self, root: Path, pipeline: dict[str, Stage]):
        from dvc.fs import LocalFileSystem
        from dvc.ignore import DvcIgnoreFilter

        self.root, self.fs = root, LocalFileSystem()
        self.ignore = DvcIgnoreFilter(self.fs, str(root))
        self.memo: dict[str, tuple[tuple, str]] = {}  # path: (stat, digest), so each file is read once
        self.pipelines = {self.definition_files(): pipeline}

    def file(self, path: str) -> str:
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if path in self.memo and self.memo[path][0] == key:
            return self.memo[path][1]
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        self.memo[path] = (key, h.hexdigest())
        return self.memo[path][1]

    def dep(self, rel: str) -> str:
        path = os.path.join(self.root, rel)
        try:
            if not os.path.isdir(path):
                return self.file(path)
            h = hashlib.blake2b(digest_size=16)
            for file in sorted(self.ignore.find(self.fs, path)):
                h.update(f"{os.path.relpath(file, path)}\0{self.file(file)}\0".encode())
            return "dir:" + h.hexdigest()
        except FileNotFoundError:
            return MISSING

    def params(self, rel: str, keys: tuple[str, ...]) -> dict[str, str]:
        """{label: value as JSON} for each key (a whole section included), or the whole file."""
        import dpath
        from dvc.utils.serialize import load_path

        try:
            values = load_path(os.path.join(self.root, rel), self.fs)
        except FileNotFoundError:
            values = MISSING
        except Exception as exc:  # a params file half written by an editor: it changed
            values = f"unreadable: {first_line(exc)}"
        if not keys:
            return {f"{rel} (all its params)": _canonical(values)}
        out = {}
        for key in keys:
            try:
                value = dpath.get(values, key, separator=".") if isinstance(values, dict) else values
            except (KeyError, ValueError):
                value = MISSING
            out[f"param {key} ({rel})"] = _canonical(value)
        return out

    def snapshot(self, stage: Stage) -> dict[str, str]:
        snap = {dep: self.dep(dep) for dep in stage.deps}
        for rel, keys in stage.params.items():
            snap.update(self.params(rel, keys))
        return snap

    def definition_files(self) -> tuple[str, ...]:
        """The digests of the files DVC builds stage definitions from: dvc.yaml (and templating
        values: params.yaml and dvc.yaml's top-level `vars` files)."""
        names = ["dvc.yaml", "params.yaml"]
        try:
            doc = yaml.safe_load((self.root / "dvc.yaml").read_text())
            names += [v.split(":")[0] for v in (doc or {}).get("vars", []) if isinstance(v, str)]
        except (OSError, yaml.YAMLError, AttributeError):
            pass
        return tuple(self.dep(n) for n in names)

    def definition(self, name: str) -> tuple | None:
        """The stage's definition as DVC resolves it now (None: gone, or dvc.yaml does not load)."""
        files = self.definition_files()
        if files not in self.pipelines:
            try:
                self.pipelines[files] = load_pipeline(self.root)
            except Exception:  # noqa: BLE001 - mid-edit dvc.yaml: the stage cannot be recorded
                self.pipelines[files] = {}
        stage = self.pipelines[files].get(name)
        return stage.definition() if stage else None

    def changes(self, stage: Stage, before: dict[str, str]) -> list[str]:
        """What differs from ``before`` (a ``snapshot``): dep paths and params, in order."""
        now = self.snapshot(stage)
        changed = [k for k in before if now.get(k) != before[k]]
        if self.definition(stage.name) != stage.definition():
            changed.append(f"its definition in {stage.dvcfile}")
        return changed


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


# --- running ----------------------------------------------------------------------------------

# Each stage runs under this supervisor, the leader of its own process group: it passes the
# command to /bin/sh, as subprocess(shell=True) does, and returns its exit status (128 + N when
# killed by signal N). On SIGTERM it terminates its whole group. PR_SET_PDEATHSIG sends it that
# SIGTERM when the runner dies, even by SIGKILL (Linux; it is set in the supervisor rather than
# in a preexec_fn, which is unsafe with the runner's threads, and it reaches the whole group,
# where a death signal set on the shell would not reach the shell's children).
SUPERVISOR = r"""
import ctypes, os, signal, subprocess, sys
stopping = []
def stop(signum, frame):
    if not stopping:
        stopping.append(signum)
        os.killpg(0, signal.SIGTERM)
signal.signal(signal.SIGTERM, stop)
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):  # the runner died before the line above
    sys.exit(128 + signal.SIGTERM)
child = subprocess.Popen(sys.argv[2], shell=True)
if stopping:
    os.killpg(0, signal.SIGTERM)
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Finished:
    name: str
    code: int
    wall: float
    at: float  # time.monotonic() when it ended


class Runner:
    """Launches stage commands as process groups and streams their output, prefixed."""

    def __init__(self, root: Path):
        self.root, self.lock = root, threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.done: queue.Queue[Finished] = queue.Queue()

    def say(self, line: str, err: bool = False) -> None:
        with self.lock:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)

    def start(self, stage: Stage) -> None:
        """Run ``stage.cmd``; put a ``Finished`` on ``done`` when it ends. Called from the main
        thread: the death signal follows the thread that started the process."""
        proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(os.getpid()), stage.cmd],
                                cwd=self.root / stage.wdir, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[stage.name] = proc
        t0 = time.perf_counter()

        def pump():
            for line in proc.stdout:
                self.say(f"[{stage.name}] {line.rstrip()}")
            code = proc.wait()
            self.done.put(Finished(stage.name, code, time.perf_counter() - t0, time.monotonic()))

        threading.Thread(target=pump, daemon=True).start()

    def signal_all(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass


def dvc_commit(root: Path, name: str) -> str | None:
    """`dvc commit -f NAME`: record the stage's deps and outs as they are now in dvc.lock. In
    its own session, so a Ctrl-C in the terminal does not cut it off half way. Returns an
    error line, or None."""
    r = subprocess.run([*DVC, "commit", "-f", name], cwd=root, capture_output=True, text=True,
                       start_new_session=True)
    if r.returncode == 0:
        return None
    return (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or [f"exit {r.returncode}"])[-1]


def run(root: Path, jobs: int, patterns: list[str], dry: bool = False) -> int:
    """Run the out-of-date stages among ``patterns`` (and their upstream), ``jobs`` at a time,
    recording each in dvc.lock as it finishes. Returns the exit status."""
    t_all = time.perf_counter()
    stages = load_pipeline(root)
    wanted = select(stages, patterns)
    waiting = {n: stages[n].upstream & wanted for n in wanted}
    finished: set[str] = set()  # up to date: recorded, or skipped
    ran: list[str] = []         # ran and recorded
    running: set[str] = set()
    failed: list[str] = []      # failed, or its recording did
    unrecorded: list[str] = []  # ran, but an input changed meanwhile: left stale
    signalled: list[tuple[int, float]] = []
    runner = Runner(root)
    inputs = Inputs(root, stages)
    started: dict[str, dict[str, str]] = {}  # name: its inputs' snapshot at its start
    if warning := oversubscription_warning(root, jobs):
        runner.say(warning, err=True)
    stale_at_start = dvc_status(root)
    # longest first (by the last run's wall time): the long GAN runs do not end up last, alone
    expected = {n: last_wall_time(root, stages[n]) for n in wanted}

    def launch_ready() -> None:
        """Start (or skip, when up to date) every stage whose upstream is up to date."""
        progress = True
        while progress and not failed and not signalled:
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
                if dry:
                    ran.append(name)
                    runner.say(f"would run {name}: {stages[name].cmd}")
                    finished.add(name)
                    continue
                started[name] = inputs.snapshot(stages[name])
                remove_outputs(root, stages[name])
                running.add(name)
                runner.say(f"parallel: start {name} ({len(running)} running, {len(waiting)} waiting)")
                runner.start(stages[name])

    def record(name: str) -> None:
        """Record a stage that succeeded, unless its inputs changed since it started."""
        stage, before = stages[name], started.pop(name)
        changed = inputs.changes(stage, before)
        if not changed:
            lock = root / Path(stage.dvcfile).with_suffix(".lock")
            saved = lock.read_bytes() if lock.is_file() else None
            if error := dvc_commit(root, name):
                failed.append(name)
                runner.say(f"parallel: FAILED to record {name}: dvc commit: {error}", err=True)
                return
            # an edit during `dvc commit` itself: take back what it wrote
            if changed := inputs.changes(stage, before):
                if saved is None:
                    lock.unlink()
                else:
                    lock.write_bytes(saved)
        if changed:
            unrecorded.append(name)
            more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
            runner.say(f"parallel: not recording {name}: {', '.join(changed[:3])}{more} changed while it "
                       f"ran; it stays stale (run again)", err=True)
            return
        ran.append(name)
        finished.add(name)
        runner.say(f"parallel: recorded {name}")

    def collect(item: Finished) -> None:
        running.discard(item.name)
        if signalled and item.at >= signalled[0][1]:
            started.pop(item.name, None)
            runner.say(f"parallel: stopped {item.name} (exit {item.code}); not recorded")
        elif item.code == 0:
            runner.say(f"parallel: done {item.name} in {item.wall:.1f}s")
            record(item.name)
        else:
            failed.append(item.name)
            started.pop(item.name, None)
            runner.say(f"parallel: FAILED {item.name} (exit {item.code}) after {item.wall:.1f}s; "
                       f"waiting for {len(running)} running stage(s)", err=True)

    def on_signal(signum, frame) -> None:
        if not signalled:
            signalled.append((signum, time.monotonic()))
        else:  # a second one: do not wait for the stages to clean up
            runner.signal_all(signal.SIGKILL)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        launch_ready()
        while running and not signalled:
            try:
                collect(runner.done.get(timeout=0.2))
            except queue.Empty:
                continue
            launch_ready()
        if signalled:
            runner.say(f"parallel: {signal.Signals(signalled[0][0]).name}: stopping {len(running)} running stage(s)",
                       err=True)
            runner.signal_all(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while running:
                try:
                    collect(runner.done.get(timeout=max(0.1, deadline - time.monotonic())))
                except queue.Empty:  # they ignore SIGTERM
                    runner.signal_all(signal.SIGKILL)
                    deadline = time.monotonic() + 30
    finally:
        if running:  # an error of the runner itself: do not leave the stages behind
            runner.signal_all(signal.SIGTERM)
        for s, handler in old.items():
            signal.signal(s, handler)

    took = time.perf_counter() - t_all
    if signalled:
        signum = signalled[0][0]
        print(f"parallel: error: interrupted by {signal.Signals(signum).name}; the {len(ran)} stage(s) that "
              f"had finished were recorded, the stopped ones stay stale ({took:.1f}s). Rerun to continue.",
              file=sys.stderr)
        return 128 + signum
    if failed or unrecorded:
        problems = [f"{', '.join(failed)} failed"] if failed else []
        if unrecorded:
            problems.append(f"{', '.join(unrecorded)} not recorded (inputs changed while running)")
        if waiting:
            problems.append(f"{len(waiting)} stage(s) after that did not start")
        print(f"parallel: error: {'; '.join(problems)}; the {len(ran)} stage(s) that ran were recorded "
              f"({took:.1f}s). Rerun to finish: recorded stages do not run again.", file=sys.stderr)
        return 1
    if waiting:
        raise RuntimeError(f"stages wait on each other: {sorted(waiting)}")
    print(f"parallel: {len(ran)} stage(s) {'would run' if dry else 'ran'}, up to {jobs} at a time, "
          f"in {took:.1f}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistgan_tools.parallel", description=__doc__,
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
    try:
        return run(root, args.jobs, args.targets, args.dry)
    except KeyboardInterrupt:  # before any stage started (reading the pipeline)
        print("parallel: error: interrupted before any stage started", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
