"""mnistgan_tools.smoke without running the graph: the budget touches budget keys only, the summary
check, and the one-line failures before any work (a bad run id, a grid that does not fit).

The run itself is the slow test tests/e2e/test_paper_smoke.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from mnistgan.errors import PipelineError
from mnistgan.pipeline import params as params_mod, summary as schema
from mnistgan_tools import smoke

from conftest import ROOT

PAPER = params_mod.load(ROOT / "profiles/paper.yaml")
GRID = ("dcgan.runs", "ccgan.runs", "cogan.pairs", "cogan.width", "cogan.shared_layers", "cogan.batch_size",
        "hybrid.real_fractions", "hybrid.sweep.lrs", "hybrid.sweep.batch_sizes", "hybrid.mixes.uniform_10.default",
        "hybrid.mixes.class0_40.per_class.0", "pca.components", "lenet.channels", "lenet.hidden", "gan.bf16")


def test_the_smoke_budget_changes_budget_keys_only_and_keeps_the_papers_grid():
    tiny = smoke.with_budget(PAPER)
    before, after = schema.flatten(PAPER), schema.flatten(tiny)
    assert before.keys() == after.keys()
    changed = {k for k in before if before[k] != after[k]}
    assert changed and changed <= smoke.BUDGET_KEYS, changed - smoke.BUDGET_KEYS
    for key in GRID:
        assert after[key] == before[key], key
    assert len(tiny["dcgan"]["runs"]) == 28 and len(tiny["ccgan"]["runs"]) == 29
    assert tiny["cogan"]["width"] == 1.0 and tiny["pca"]["components"][-1] == 256


def test_the_budget_trains_one_batch_of_the_largest_batch_in_the_grid():
    raw = params_mod.apply_overrides(PAPER, {"dcgan.runs": ["F1-D1-B32", "F1-D1-B256"], "cogan.batch_size": 100})
    budget = smoke.smoke_budget(raw)
    assert budget["dcgan.train_limit"] == 256 and budget["ccgan.train_limit"] == 128
    assert budget["cogan.train_limit"] == 100 and budget["data.train_limit"] == 2000
    tiny = smoke.with_budget(params_mod.validate(raw))
    assert tiny["dcgan"]["runs"] == ["F1-D1-B32", "F1-D1-B256"]


def test_budget_keys_are_all_real_params_and_no_grid_key_is_one():
    flat = schema.flatten(PAPER)
    assert smoke.BUDGET_KEYS <= flat.keys()
    assert not {k for k in smoke.BUDGET_KEYS if k.endswith((".runs", ".pairs", ".components", ".width"))}
    with pytest.raises(PipelineError, match="^dcgan.lr is not a budget key"):
        smoke.with_budget(PAPER, {"dcgan.lr": 0.1})
    with pytest.raises(PipelineError, match="^the smoke budget does not fit this profile: "):
        smoke.with_budget(PAPER, {"scoring.samples": 10})


def test_expected_keys_are_what_evaluate_wrote_for_the_committed_quick_run():
    """The committed metrics/summary.json and run_info.json of the quick profile have every key the
    summary schema lists."""
    summary = json.loads((ROOT / "metrics/summary.json").read_text())
    info = json.loads((ROOT / "metrics/run_info.json").read_text())
    quick = params_mod.load(ROOT / "params.yaml")
    assert schema.problems(summary, quick, info) == []
    keys = schema.expected_keys(quick)
    assert "dcgan.runs.F1-D1-B32.fid" in keys and "hybrid.real_fraction_ci95.0.1" in keys
    assert "pca.ppca.curve.256.fid" in keys and "timings.train_cogan@edge.wall_s" in schema.run_info_keys(quick)


def test_expected_keys_follow_the_profile():
    keys = schema.expected_keys(PAPER)
    assert sum(k.startswith("ccgan.runs.") and k.endswith(".lenet_acc") for k in keys) == 29
    info = schema.run_info_keys(PAPER)
    assert sum(k.startswith("timings.train_dcgan@") and k.endswith(".wall_s") for k in info) == 28


def test_summary_problems_names_a_missing_key_and_a_value_out_of_range():
    summary = json.loads((ROOT / "metrics/summary.json").read_text())
    quick = params_mod.load(ROOT / "params.yaml")
    run = quick["ccgan"]["runs"][0]
    del summary["ccgan"]["runs"][run]["lenet_acc"]
    summary["dcgan"]["best"]["is"] = 11.0
    summary["lenet"]["test_acc_ci95"] = [0.2, 0.3]
    assert schema.problems(summary, quick) == [
        f"metrics/summary.json has no ccgan.runs.{run}.lenet_acc",
        "metrics/summary.json: lenet.test_acc_ci95 = [0.2, 0.3] is not a 95% interval around lenet.test_acc",
        "metrics/summary.json: dcgan.best.is = 11.0 is out of range (1, 10)"]


def test_stages_run_reads_dvc_repro_and_parallel_logs():
    log = "Running stage 'prepare':\n> python x\nStage 'a' didn't change, skipping\nparallel: start train_lenet (1 running)\n"
    assert smoke.stages_run(log) == ["prepare", "train_lenet"]


def _smoke(tmp_path, profile: dict, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return subprocess.run([sys.executable, "-m", "mnistgan_tools.smoke", "--profile", str(path),
                           "--workdir", str(tmp_path / "work"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_bad_run_id_fails_with_one_line_before_any_work(tmp_path):
    raw = yaml.safe_load((ROOT / "profiles/paper.yaml").read_text())
    raw["dcgan"]["runs"] = ["F1-D1-B32", "F9-D1-B32"]
    r = _smoke(tmp_path, raw)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"smoke: error: {tmp_path / 'profile.yaml'}: dcgan.runs[1]: F must be in 1..8 (got F9 in 'F9-D1-B32')"]
    assert not (tmp_path / "work").exists()


def test_a_grid_that_does_not_fit_in_memory_fails_with_one_line_before_any_work(tmp_path):
    raw = yaml.safe_load((ROOT / "profiles/paper.yaml").read_text())
    r = _smoke(tmp_path, raw, "--memory", "1")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smoke: error: the grid does not fit in memory: "), r.stderr
    assert "alone needs about" in lines[0] and "the planned --memory has 1.0 GiB free" in lines[0]
    assert not (tmp_path / "work").exists()
