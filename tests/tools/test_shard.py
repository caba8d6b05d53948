"""mnistgan_tools.shard: splitting, and the DVC mechanics of a shard on a toy project (no Ray).

The toy's stages are `step.py NAME [INPUT...]`: it writes out/NAME.txt (cached) from its
inputs and m/NAME.json (``cache: false``, like the project's metrics, grids and timings), and
waits while $TOY_CTL/NAME.hold exists (so a test can kill a worker mid-stage). Pipeline: up ->
g1, g2 -> down. A shard runs in-process here (mnistgan_tools.shard.run_stages, what each Ray task
runs); tests/e2e/test_shard_ray.py drives the real pipeline through Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistgan.errors import PipelineError
from mnistgan_tools import shard

from conftest import ROOT

STEP = """\
import json, os, sys, time
from pathlib import Path
name, ctl = sys.argv[1], Path(os.environ["TOY_CTL"])
(ctl / f"{name}.started").write_text(str(os.getpid()))
while (ctl / f"{name}.hold").exists():
    time.sleep(0.05)
Path("out").mkdir(exist_ok=True); Path("m").mkdir(exist_ok=True)
text = name + "".join(Path(p).read_text() for p in sys.argv[2:])
Path("out", f"{name}.txt").write_text(text)
Path("m", f"{name}.json").write_text(json.dumps({"name": name, "chars": len(text)}))
with open(ctl / "runs.log", "a") as f:
    f.write(name + "\\n")
"""

DVC_YAML = """\
stages:
  up:
    cmd: python step.py up
    deps: [step.py]
    outs: [out/up.txt, m/up.json: {cache: false}]
  g1:
    cmd: python step.py g1 out/up.txt
    deps: [step.py, out/up.txt]
    outs: [out/g1.txt, m/g1.json: {cache: false}]
  g2:
    cmd: python step.py g2 out/up.txt
    deps: [step.py, out/up.txt]
    outs: [out/g2.txt, m/g2.json: {cache: false}]
  down:
    cmd: python step.py down out/g1.txt out/g2.txt
    deps: [step.py, out/g1.txt, out/g2.txt]
    outs: [out/down.txt, m/down.json: {cache: false}]
"""

IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@t"]


def git(cwd, *args):
    return subprocess.run(["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def toy_origin(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("toy") / "origin"
    repo.mkdir()
    (repo / "step.py").write_text(STEP)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    git(repo, "init", "-q", "-b", "main")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "toy")
    return repo


class Toy:
    def __init__(self, origin: Path, tmp: Path):
        self.origin, self.tmp = origin, tmp
        self.ctl, self.remote, self.workdir = tmp / "ctl", tmp / "remote", tmp / "work"
        self.ctl.mkdir()
        self.agg = tmp / "aggregator"
        git(tmp, "clone", "-q", str(origin), str(self.agg))
        self.commit = git(origin, "rev-parse", "HEAD").strip()
        os.environ["TOY_CTL"] = str(self.ctl)  # the in-process shards' stages inherit it

    def spec(self, name: str, stages: list[str]) -> dict:
        return {"name": name, "stages": stages, "repo": str(self.origin), "commit": self.commit,
                "remote": str(self.remote), "workdir": str(self.workdir), "env": {"TOY_CTL": str(self.ctl)}}

    def runs(self) -> list[str]:
        log = self.ctl / "runs.log"
        return log.read_text().split() if log.exists() else []


@pytest.fixture
def toy(toy_origin, tmp_path):
    yield Toy(toy_origin, tmp_path)
    os.environ.pop("TOY_CTL", None)


def test_select_split_and_parse_repro():
    names = ["download", "train_ccgan@F1-D1-B32", "train_cogan@edge", "train_dcgan@F2-D1-B64", "evaluate"]
    assert shard.select(names, list(shard.DEFAULT_STAGES)) == names[1:4]
    assert shard.split({"a": 5, "b": 4, "c": 3, "d": 3, "e": 3}, 2) == [["a", "d"], ["b", "c", "e"]]
    assert shard.split({"a": 1}, 3) == [["a"]]  # no empty shards
    log = ("Stage 'up' is cached - skipping run, checking out outputs\nRunning stage 'g1':\n> python step.py g1\n"
           "Stage 'g2' didn't change, skipping\n")
    assert shard.parse_repro(log) == {"up": "restored", "g1": "ran", "g2": "unchanged"}


def test_a_failed_stage_is_reported_with_its_own_last_line():
    # what `dvc repro` printed when a disk filled up under a stage (CI, 2026-11-24)
    log = ("Running stage 'train_dcgan@F1-D1-B32':\n> python stages/train_gan.py --run F1-D1-B32\n"
           "Traceback (most recent call last):\n  File \"stages/train_gan.py\", line 9, in <module>\n"
           "OSError: [Errno 28] No space left on device\n"
           "WARNING: some warning\nERROR: failed to reproduce 'train_dcgan@F1-D1-B32': failed to run: python "
           "stages/train_gan.py --run F1-D1-B32, exited with 1\n")
    assert shard.failure(log, 1) == ("ERROR: failed to reproduce 'train_dcgan@F1-D1-B32': failed to run: python "
                                     "stages/train_gan.py --run F1-D1-B32, exited with 1; its last line: "
                                     "OSError: [Errno 28] No space left on device")
    assert shard.failure("Running stage 'g':\n> python g.py\nERROR: failed to reproduce 'g': exited with 1\n", 1) \
        == "ERROR: failed to reproduce 'g': exited with 1"  # a stage that printed nothing
    assert shard.failure("fatal: bad object abc\n", 128) == "fatal: bad object abc"
    assert shard.failure("", 9) == "exit 9"


def test_paper_stage_weights_put_the_big_configs_first():
    from mnistgan.pipeline import params as params_mod

    paper = params_mod.load(ROOT / "profiles/paper.yaml")
    stages = ["train_dcgan@F1-D1-B32", "train_dcgan@F3-D3-B32", "train_cogan@edge", "pca_sweep"]
    w = shard.stage_weights(paper, stages)
    assert w["train_dcgan@F3-D3-B32"] > w["train_dcgan@F1-D1-B32"] > 0
    assert w["pca_sweep"] == max(w.values())  # not modelled: spread first


def test_shards_push_to_the_run_cache_and_the_aggregator_restores_them_without_rerunning(toy):
    up = shard.run_stages(toy.spec("upstream", ["up"]))
    assert up["stages"] == {"up": "ran"}
    s0 = shard.run_stages(toy.spec("shard-0", ["g1"]))
    s1 = shard.run_stages(toy.spec("shard-1", ["g2"]))
    assert s0["stages"] == {"g1": "ran"} and s1["stages"] == {"g2": "ran"}
    assert toy.runs() == ["up", "g1", "g2"]  # `up` ran once: the shards restored it from the run cache
    assert "Stage 'up' is cached - skipping run" in (toy.workdir / "shard-0.log").read_text()

    did = shard.aggregate(toy.agg, str(toy.remote), ["g1", "g2"], ["up"], toy.workdir / "aggregator.log")
    assert did == {"up": "restored", "g1": "restored", "g2": "restored", "down": "ran"}
    assert toy.runs() == ["up", "g1", "g2", "down"]
    for name, worker in (("g1", "shard-0"), ("g2", "shard-1")):  # the workers' results, byte for byte
        for rel in (f"out/{name}.txt", f"m/{name}.json"):
            assert (toy.agg / rel).read_bytes() == (toy.workdir / worker / rel).read_bytes(), rel
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=toy.agg, capture_output=True,
                            text=True, check=True)
    assert json.loads(status.stdout) == {}


def test_the_aggregator_trains_nothing_when_a_shard_is_missing(toy):
    shard.run_stages(toy.spec("upstream", ["up"]))
    shard.run_stages(toy.spec("shard-0", ["g1"]))
    with pytest.raises(PipelineError, match=r"^1 sharded stage\(s\) have no run-cache entry on the remote, e.g. g2"):
        shard.aggregate(toy.agg, str(toy.remote), ["g1", "g2"], ["up"], toy.workdir / "aggregator.log")
    assert toy.runs() == ["up", "g1"]


def in_group(pgid: int) -> list[int]:
    """Processes (zombies too: DVC's lock counts them as alive) whose process group is ``pgid``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_worker_killed_mid_stage_loses_only_that_stage_and_a_rerun_finishes_it(toy):
    shard.run_stages(toy.spec("upstream", ["up"]))
    (toy.ctl / "g2.hold").touch()
    spec = toy.spec("shard-0", ["g1", "g2"])
    worker = subprocess.Popen([sys.executable, "-c", "import json, sys; from mnistgan_tools.shard import run_stages; "
                               "run_stages(json.loads(sys.argv[1]))", json.dumps(spec)],
                              env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    deadline = time.time() + 600
    while not (toy.ctl / "g2.started").exists():
        assert worker.poll() is None and time.time() < deadline, "g2 never started"
        time.sleep(0.1)
    stage_pid = int((toy.ctl / "g2.started").read_text())
    state = json.loads((toy.workdir / "shard-0.json").read_text())
    assert state["stage"] == "g2" and state["done"] == ["g1"] and state["pid"] == worker.pid
    worker.send_signal(signal.SIGKILL)  # the worker dies mid-stage; its stage dies with it
    worker.wait()
    deadline = time.time() + 60
    while (Path(f"/proc/{stage_pid}").exists() or in_group(state["pgid"])) and time.time() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{stage_pid}").exists(), "the stage outlived its worker"
    assert not in_group(state["pgid"]), "`dvc repro` outlived its worker"
    assert toy.runs() == ["up", "g1"]

    (toy.ctl / "g2.hold").unlink()
    again = shard.run_stages(spec)  # the same shard, same clone
    assert again["stages"]["g1"] in ("unchanged", "restored") and again["stages"]["g2"] == "ran"  # only g2 runs
    assert toy.runs() == ["up", "g1", "g2"]
    shutil.rmtree(toy.workdir / "shard-0" / "out")
    did = shard.aggregate(toy.agg, str(toy.remote), ["g1", "g2"], ["up"], toy.workdir / "aggregator.log")
    assert did["g1"] == did["g2"] == "restored"


def test_the_commit_must_hold_what_would_run(toy):
    assert shard.check_committed(toy.agg) == toy.commit
    (toy.agg / "dvc.yaml").write_text(DVC_YAML + "\n")
    with pytest.raises(PipelineError, match="^dvc.yaml differs from HEAD"):
        shard.check_committed(toy.agg)


def test_a_bad_run_id_fails_with_one_line_before_any_work(tmp_path):
    from mnistgan_tools.smoke import project_files

    repo = tmp_path / "repo"
    for rel in project_files(ROOT):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    params = (repo / "params.yaml").read_text().replace("runs: [F1-D1-B32]     # the report's best; paper: all 27 of F",
                                                        "runs: [F1-D1-B0]     # the report's best; paper: all 27 of F", 1)
    (repo / "params.yaml").write_text(params)
    r = subprocess.run([sys.executable, "-m", "mnistgan_tools.shard", "--remote", str(tmp_path / "remote"),
                        "--workdir", str(tmp_path / "work")], cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "shard: error: params.yaml: dcgan.runs[0]: B must be in 1..4096 (got B0 in 'F1-D1-B0')"], r.stderr
    assert not (tmp_path / "work").exists()
