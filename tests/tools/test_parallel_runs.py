"""mnistgan_tools.parallel running a toy DVC project: what it records in dvc.lock, and when not.

The toy's stages are one small script, `step.py NAME`, which writes its pid and process group
to $TOY_CTL/NAME.pid, then, if $TOY_CTL/NAME.hold exists, waits for $TOY_CTL/NAME.go (so a
test can edit inputs while the stage runs), fails if $TOY_CTL/NAME.fail exists, and writes
out/NAME.txt. Pipeline: a -> b; c (a file, a directory and a params section as deps); d.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

STEP = """\
import json, os, sys, time
from pathlib import Path
name, ctl = sys.argv[1], Path(os.environ["TOY_CTL"])
info = {"pid": os.getpid(), "pgid": os.getpgid(0), "omp": os.environ.get("OMP_NUM_THREADS")}
(ctl / f"{name}.tmp").write_text(json.dumps(info))
os.replace(ctl / f"{name}.tmp", ctl / f"{name}.pid")
if (ctl / f"{name}.hold").exists():
    while not (ctl / f"{name}.go").exists():
        time.sleep(0.02)
if (ctl / f"{name}.fail").exists():
    sys.exit(3)
Path("out").mkdir(exist_ok=True)
Path("out", f"{name}.txt").write_text(name + "".join(Path(p).read_text() for p in sys.argv[2:]))
"""

DVC_YAML = """\
stages:
  a:
    cmd: python step.py a
    deps: [step.py]
    params: [a.n]
    outs: [out/a.txt]
  b:
    cmd: python step.py b out/a.txt
    deps: [step.py, out/a.txt]
    outs: [out/b.txt]
  c:
    cmd: python step.py c cfile.txt
    deps: [step.py, cfile.txt, cdata]
    params: [c]
    outs: [out/c.txt]
  d:
    cmd: python step.py d
    deps: [step.py]
    outs: [out/d.txt]
"""

PARAMS = {"a": {"n": 1}, "c": {"k": 1, "j": [1, 2]}, "other": 1, "cpu_threads": 1}


def sh(cmd, cwd, env=None):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    return r


@pytest.fixture(scope="module")
def toy_template(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("toy") / "repo"
    repo.mkdir()
    (repo / "step.py").write_text(STEP)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (repo / "cfile.txt").write_text("c input\n")
    (repo / "cdata").mkdir()
    (repo / "cdata" / "one.txt").write_text("1\n")
    sh(["git", "init", "-q"], repo)
    sh([sys.executable, "-m", "dvc", "init", "-q"], repo)
    (repo / ".dvcignore").write_text(".*.tmp\n")
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], repo)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"], repo)
    return repo


class Toy:
    def __init__(self, template: Path, tmp: Path):
        self.repo, self.ctl = tmp / "repo", tmp / "ctl"
        shutil.copytree(template, self.repo, symlinks=True)
        self.ctl.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        self.env = {**env, "TOY_CTL": str(self.ctl), "DVC_NO_ANALYTICS": "1",
                    "PYTHONPATH": str(ROOT / "src"),
                    "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")}
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []

    def hold(self, *names: str) -> None:
        for n in names:
            (self.ctl / f"{n}.hold").touch()

    def go(self, name: str) -> None:
        (self.ctl / f"{name}.go").touch()

    def info(self, name: str, timeout: float = 20) -> dict:
        """The pid file of a stage that started."""
        path, end = self.ctl / f"{name}.pid", time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < end, f"{name} did not start:\n" + "\n".join(self.out)
            time.sleep(0.02)
        return json.loads(path.read_text())

    def start(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mnistgan_tools.parallel", *args], cwd=self.repo,
                                     env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def read():
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        threading.Thread(target=read, daemon=True).start()

    def expect(self, pattern: str, timeout: float = 30) -> str:
        """Wait for a line of the runner's output matching ``pattern`` (a regex)."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.out)) from None
            self.out.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.05)
        while not self.lines.empty():
            self.out.append(self.lines.get())
        return code, "\n".join(self.out)

    def stale(self) -> set[str]:
        r = sh([sys.executable, "-m", "dvc", "status", "--json"], self.repo, self.env)
        return set(json.loads(r.stdout or "{}"))

    def started(self) -> list[str]:
        return [line.split()[2] for line in self.out if line.startswith("parallel: start")]


@pytest.fixture
def toy(toy_template, tmp_path):
    t = Toy(toy_template, tmp_path)
    yield t
    if getattr(t, "proc", None) and t.proc.poll() is None:
        t.proc.kill()
        t.proc.wait()


def alive_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            pids.append(int(stat.parent.name))
    return pids


def wait_gone(pgid: int, timeout: float = 10) -> list[int]:
    end = time.monotonic() + timeout
    while (left := alive_in_group(pgid)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


@pytest.mark.parametrize("edit", ["file", "dir", "dvc.yaml"])
def test_a_dep_edited_while_the_stage_runs_is_not_recorded(toy, edit):
    toy.hold("c")
    toy.start("-j", "2")
    toy.info("c")  # c has started: its inputs are snapshotted
    toy.expect(r"^parallel: recorded b$")  # a and b ran meanwhile, and were recorded at once
    if edit == "file":
        (toy.repo / "cfile.txt").write_text("c input, edited\n")
        dep = "cfile.txt"
    elif edit == "dir":
        (toy.repo / "cdata" / ".ignored.tmp").write_text("x")  # .dvcignore'd: not a change
        (toy.repo / "cdata" / "two.txt").write_text("2\n")
        dep = "cdata"
    else:
        yaml_text = (toy.repo / "dvc.yaml").read_text()
        (toy.repo / "dvc.yaml").write_text(yaml_text.replace("python step.py c cfile.txt", "python step.py c"))
        dep = "its definition in dvc.yaml"
    toy.go("c")
    line = toy.expect(r"^parallel: not recording c")
    assert line == f"parallel: not recording c: {dep} changed while it ran; it stays stale (run again)"
    code, out = toy.finish()
    assert code == 1, out
    assert "parallel: recorded d" in out
    assert toy.stale() == {"c"}, out
    assert (toy.repo / "out/c.txt").exists()  # made, just not recorded
    assert toy.info("a")["omp"] is None  # the runner leaves the thread count to the stages' param


def test_a_param_edited_while_the_stage_runs_is_not_recorded_other_keys_do_not_matter(toy):
    toy.hold("a", "c")
    toy.start("-j", "3")
    toy.info("a"), toy.info("c")
    toy.expect(r"^parallel: recorded d$")
    params = yaml.safe_load((toy.repo / "params.yaml").read_text())
    params["c"]["j"] = [1, 3]  # in c's section, which c depends on
    params["other"] = 2        # a key neither a nor c depends on
    (toy.repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    toy.go("a")
    toy.expect(r"^parallel: recorded a$")
    toy.expect(r"^parallel: recorded b$")  # started once a was recorded
    toy.go("c")
    line = toy.expect(r"^parallel: not recording c")
    assert line == "parallel: not recording c: param c (params.yaml) changed while it ran; it stays stale (run again)"
    code, out = toy.finish()
    assert code == 1 and "parallel: error: c not recorded (inputs changed while running); the 3 stage(s)" in out, out
    assert toy.stale() == {"c"}, out


def test_an_edit_during_dvc_commit_takes_the_record_back(toy, monkeypatch, capsys):
    """The window between the check and `dvc commit` reading the deps: checked again after."""
    from mnistgan_tools import parallel

    real = parallel.dvc_commit

    def commit_while_editing(root, name):
        (root / "step.py").write_text(STEP + "# edited\n")
        return real(root, name)

    monkeypatch.setattr(parallel, "dvc_commit", commit_while_editing)
    for k, v in toy.env.items():
        monkeypatch.setenv(k, v)
    assert parallel.run(toy.repo, 1, ["d"]) == 1
    assert "parallel: not recording d: step.py changed while it ran" in capsys.readouterr().err
    assert not (toy.repo / "dvc.lock").exists()  # `dvc commit` wrote it; the runner took it back
    assert "d" in toy.stale()


def test_a_failing_stage_stops_its_dependants_and_the_others_are_recorded(toy):
    toy.hold("a", "c", "d")
    (toy.ctl / "a.fail").touch()
    toy.start("-j", "3")
    for n in "acd":
        toy.info(n)
    toy.go("c")
    toy.expect(r"^parallel: recorded c$")  # finished before the failure
    toy.go("a")
    toy.expect(r"^parallel: FAILED a \(exit 3\)")
    toy.go("d")
    toy.expect(r"^parallel: recorded d$")  # running when a failed: finishes, recorded
    code, out = toy.finish()
    assert code == 1, out
    assert "parallel: error: a failed; 1 stage(s) after that did not start; the 2 stage(s) that ran were " \
        "recorded" in out
    assert "b" not in toy.started()  # a's dependant never started
    assert toy.stale() == {"a", "b"}, out


@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_runner_stops_its_stages_and_records_only_finished_ones(toy, sig):
    toy.hold("c")
    toy.start("-j", "3")
    c = toy.info("c")
    assert alive_in_group(c["pgid"])
    toy.expect(r"^parallel: recorded b$")
    if "parallel: recorded d" not in toy.out:
        toy.expect(r"^parallel: recorded d$")
    toy.proc.send_signal(sig)
    code, out = toy.finish(timeout=30)
    assert code == 128 + sig, out
    assert f"parallel: error: interrupted by {sig.name}; the 3 stage(s) that had finished were recorded" in out
    assert not wait_gone(c["pgid"]), out  # the held stage and its whole process group are gone
    assert toy.stale() == {"c"}, out
    assert not (toy.repo / "out/c.txt").exists()


@needs_proc
def test_stages_die_with_a_killed_runner(toy):
    """SIGKILL cannot be handled: the death signal of each stage's supervisor stops them."""
    toy.hold("a", "c")
    toy.start("-j", "2")
    groups = [toy.info("a")["pgid"], toy.info("c")["pgid"]]
    toy.proc.kill()
    toy.proc.wait()
    assert not [pid for g in groups for pid in wait_gone(g)]
    assert "c" in toy.stale()


def test_dry_run_warns_when_the_stages_threads_exceed_the_cores(toy):
    params = yaml.safe_load((toy.repo / "params.yaml").read_text())
    params["cpu_threads"] = 0  # all cores, in each of 2 stages
    (toy.repo / "params.yaml").write_text(yaml.safe_dump(params))
    r = subprocess.run([sys.executable, "-m", "mnistgan_tools.parallel", "-j", "2", "--dry"], cwd=toy.repo,
                       env=toy.env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "cpu_threads" in warning[0], r.stderr
    assert "would run a: python step.py a" in r.stdout
    assert not (toy.ctl / "a.pid").exists()
