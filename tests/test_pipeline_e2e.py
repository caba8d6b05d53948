"""`dvc repro` of the real pipeline in a temporary Git+DVC repository on a tiny configuration.

Uses the genuine MNIST files (from $MNIST_MIRROR or ../shared/mnist): the download stage
checks the canonical md5s, so fake files cannot stand in for them here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, shared_mnist
from tiny import TINY_OVERRIDES, apply_overrides

pytestmark = pytest.mark.e2e

MNIST = shared_mnist()
needs_mnist = pytest.mark.skipif(MNIST is None, reason="genuine MNIST files not available offline "
                                 "(set MNIST_MIRROR to a directory holding the four .gz files)")


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def make_project(dest: Path, overrides: dict[str, object]) -> dict:
    """Copy the project's source files (not its outputs) into ``dest`` as a fresh Git+DVC repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    skip = ("dvc.lock", "metrics/", "plots/", "results/", "REPORT.md")
    for rel in files:
        if rel.startswith(skip) or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    params = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(dest / "src"),
        "MNIST_MIRROR": str(MNIST),
        "MNISTGAN_PUBLIC_MIRRORS": "",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
    }
    sh(["git", "init", "-q"], dest, env)
    assert (dest / ".dvc/config").is_file()  # the project's own DVC config came along
    sh(["git", "add", "-A"], dest, env)
    sh(["git", "commit", "-qm", "init"], dest, env)
    return env


@needs_mnist
def test_tiny_pipeline_end_to_end(tmp_path):
    env = make_project(tmp_path, TINY_OVERRIDES)
    sh(["dvc", "repro"], tmp_path, env)

    # Every declared output exists, and the numbers are sane for a tiny run.
    lenet = json.loads((tmp_path / "metrics/lenet/metrics.json").read_text())
    assert 0.5 < lenet["test_acc"] <= 1.0
    assert 1.0 <= lenet["test_is"] <= 10.0
    counts = (tmp_path / "plots/data/class_counts_train.csv").read_text().splitlines()
    assert counts[0] == "digit,count" and sum(int(r.split(",")[1]) for r in counts[1:]) == 1200
    for png in ("plots/data/tsne.png", "plots/data/domains.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in (tmp_path / "models/lenet").iterdir()} == {"lenet.pt", "config.json", "test_stats.npz"}

    # A second repro runs nothing, quickly.
    t0 = time.perf_counter()
    r = sh(["dvc", "repro"], tmp_path, env)
    elapsed = time.perf_counter() - t0
    assert "Running stage" not in r.stdout
    assert elapsed < 5.0, f"no-op dvc repro took {elapsed:.1f}s"

    # The metrics and plots a user asks DVC for.
    shown = sh(["dvc", "metrics", "show", "--json"], tmp_path, env).stdout
    assert "test_acc" in shown
    sh(["dvc", "plots", "show", "-o", "dvc_plots"], tmp_path, env)
    html = (tmp_path / "dvc_plots/index.html").read_text()
    for title in ("class counts, train", "LeNet confusion matrix", "LeNet accuracy per epoch"):
        assert title in html, title

    # Changing one stage's params reruns it and what depends on it, nothing upstream.
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["lenet"]["lr"] = params["lenet"]["lr"] / 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = sh(["dvc", "repro"], tmp_path, env)
    ran = [line.split("'")[1] for line in r.stdout.splitlines() if line.startswith("Running stage")]
    assert "train_lenet" in ran and "download" not in ran and "prepare" not in ran
