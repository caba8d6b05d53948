"""The whole paper graph runs: every stage of profiles/paper.yaml, budgets tiny (slow).

    python -m pytest -m slow tests/e2e/test_paper_smoke.py

Runs the user's command, `python -m mnistgan_tools.smoke --profile profiles/paper.yaml`, in a
temporary directory: about seventy stages (28 DCGAN and 29 CCGAN runs of the full grids,
full-width CoGANs, the full hybrid and PCA lists) with only budget keys turned down. Deselected
by default (`-m "not slow"` in pyproject.toml): it takes longer than the rest of the suite.
Needs the genuine MNIST files, like the end-to-end test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from mnistgan.pipeline import params as params_mod, summary as schema
from mnistgan_tools import smoke

from conftest import ROOT, shared_mnist

pytestmark = pytest.mark.slow

MNIST = shared_mnist()
if MNIST is None:
    pytest.skip("genuine MNIST files not available offline (set MNIST_MIRROR to a directory "
                "holding the four .gz files)", allow_module_level=True)


@pytest.mark.timeout(4 * 3600)
def test_every_stage_of_the_paper_profile_runs_on_tiny_budgets(tmp_path):
    work = tmp_path / "work"
    env = {**os.environ, "MNIST_MIRROR": str(MNIST), "MNISTGAN_PUBLIC_MIRRORS": "", "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run([sys.executable, "-m", "mnistgan_tools.smoke", "--profile", "profiles/paper.yaml",
                        "--workdir", str(work)], cwd=ROOT, env=env, capture_output=True, text=True)
    print(r.stdout[-3000:], r.stderr[-3000:])
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("smoke: all ") and "dvc status is clean" in last, last

    # independently of the tool's own checks: the paper's grid ran, budgets only were changed
    repo = work / "repo"
    paper = params_mod.load(ROOT / "profiles/paper.yaml")
    ran = params_mod.load(repo / "params.yaml")
    before, after = schema.flatten(paper), schema.flatten(ran)
    assert {k for k in before if before[k] != after[k]} <= smoke.BUDGET_KEYS
    log = (work / "smoke.log").read_text()
    stages = smoke.stage_names(repo)
    assert len(stages) == 69 and sorted(smoke.stages_run(log)) == stages
    for run in paper["dcgan"]["runs"] + paper["ccgan"]["runs"]:
        family = "dcgan" if f"train_dcgan@{run}" in stages and run in paper["dcgan"]["runs"] else "ccgan"
        assert (repo / f"models/{family}/{run}/generator.pt").is_file()
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert summary["profile"] == "paper" and schema.problems(summary, ran) == []
    assert set(summary["ccgan"]["runs"]) == set(paper["ccgan"]["runs"])
    assert yaml.safe_load((repo / "params.yaml").read_text())["cogan"]["width"] == 1.0
