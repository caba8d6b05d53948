"""The GAN stages of the tiny pipeline sharded over two Ray workers on this machine.

A local Ray cluster, a local directory as the DVC remote, `python -m mnistgan_tools.shard --workers 2`
in a fresh Git+DVC repository of the project on tests/tiny.py's configuration (the CCGAN a
little longer, so it can be killed mid-run). One run covers both promises of the sharding tool:

* a worker killed mid-stage loses only that stage: the command fails naming its shard, the
  other shard's stages are pushed, and rerunning the command resumes the killed stage from its
  checkpoint and reruns nothing else;
* the aggregating clone then restores every sharded stage from the run cache, reruns none of
  them, and its metrics are the workers', byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from mnistgan_tools import smoke

from conftest import ROOT, shared_mnist
from tiny import TINY_OVERRIDES, apply_overrides

pytestmark = pytest.mark.e2e

pytest.importorskip("ray", reason="Ray is not installed (it comes with pip install -e '.[test]')")
MNIST = shared_mnist()
if MNIST is None:
    pytest.skip("genuine MNIST files not available offline (set MNIST_MIRROR to a directory "
                "holding the four .gz files)", allow_module_level=True)

RUN = "F1-D1-B32"
OVERRIDES = {**TINY_OVERRIDES, "ccgan.runs": [RUN], "ccgan.epochs": 4, "ccgan.train_limit": 640, "ccgan.eval_every": 1,
             "dcgan.runs": ["F1-D1-B32", "F1-D2-B32"]}
SHARDED = [f"train_ccgan@{RUN}", "train_dcgan@F1-D1-B32", "train_dcgan@F1-D2-B32",
           "train_cogan@rotate", "train_cogan@negative", "train_cogan@edge"]


def wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 1800):
    deadline = time.time() + timeout
    while not (value := predicate()):
        assert proc.poll() is None, f"shard ended before {what}: {proc.communicate()}"
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)
    return value


def print_logs(work, lines: int = 40) -> None:
    """The tail of every clone's log, shown by pytest if an assertion below fails (a failed CI run
    said only "exited with 1"; the disk had filled up under the stage)."""
    for log in sorted(work.glob("*.log")):
        print(f"--- {log.name} (last {lines} lines)", *log.read_text().splitlines()[-lines:], sep="\n")


def test_two_ray_workers_a_killed_one_resumes_and_the_aggregator_reruns_nothing(tmp_path):
    repo, remote, work = tmp_path / "repo", tmp_path / "remote", tmp_path / "work"
    repo.mkdir()
    params = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), OVERRIDES)
    smoke.make_repo(ROOT, repo, params, "# tests/e2e/test_shard_ray.py\n")
    env = {**smoke.environment(), "MNIST_MIRROR": str(MNIST), "MNISTGAN_PUBLIC_MIRRORS": "",
           "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    cmd = [sys.executable, "-m", "mnistgan_tools.shard", "--workers", "2", "--remote", str(remote), "--workdir", str(work)]

    # 1. Kill the worker of the CCGAN shard once the run has written its first checkpoint.
    first = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = wait_for(lambda: next(work.glob(f"shard-*/checkpoints/ccgan/{RUN}.pt"), None),
                          "CCGAN checkpoint", first)
    name = checkpoint.relative_to(work).parts[0]
    state = json.loads((work / f"{name}.json").read_text())
    assert state["stage"] == f"train_ccgan@{RUN}"
    os.kill(state["pid"], signal.SIGKILL)
    out, err = first.communicate(timeout=1800)
    print(out, err)
    print_logs(work)
    assert first.returncode == 1
    assert f"shard: error: {name} failed; the stages they finished are pushed." in err
    other = "shard-1" if name == "shard-0" else "shard-0"
    assert f"shard: {other} done" in out  # the other shard finished and pushed its stages
    assert not (repo / "metrics/summary.json").exists()  # no aggregation after a failure

    # 2. The same command again: the killed stage resumes, nothing else reruns, the aggregator restores.
    second = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=3600)
    print(second.stdout, second.stderr)
    print_logs(work)
    assert second.returncode == 0, second.stderr
    log = (work / f"{name}.log").read_text()
    assert "resuming after epoch" in log
    assert f"shard: {other} done" in second.stdout and ": ran 0," in second.stdout.split(f"shard: {other} done")[1]
    last = second.stdout.strip().splitlines()[-1]
    assert "none rerun" in last and "ran here: " in last
    for s in ("train_lenet", "prepare"):  # upstream ran once, in its own clone; the shards restored it
        assert f"Running stage '{s}'" in (work / "upstream.log").read_text()
        assert f"Running stage '{s}'" not in log and f"Stage '{s}' is cached - skipping run" in log
    agg = (work / "aggregator.log").read_text()
    for stage in SHARDED:
        assert f"Stage '{stage}' is cached - skipping run" in agg and f"Running stage '{stage}'" not in agg

    # 3. The aggregator's results are the workers', and it is up to date.
    clones = {s: c for c in ("shard-0", "shard-1")
              for s in json.loads((work / f"{c}.json").read_text())["done"]}
    assert sorted(clones) == sorted(SHARDED)
    for stage, clone in clones.items():
        family, run = stage.removeprefix("train_").split("@")
        for rel in (f"metrics/{family}/{run}/metrics.json", f"metrics/{family}/{run}/plots/metrics/d_loss.tsv",
                    f"plots/{family}/{run}.png"):
            assert (repo / rel).read_bytes() == (work / clone / rel).read_bytes(), rel
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) == {"evaluate": ["always changed"]}  # by design (dvc.yaml)
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert set(summary["dcgan"]["runs"]) == {"F1-D1-B32", "F1-D2-B32"} and summary["ccgan"]["runs"][RUN]["epochs"] == 4
