"""benchmarks/cost.py: the projection on hand-made numbers, and one real tiny measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from mnistgan_tools import plan

from conftest import ROOT, load_script
from tiny import TINY_OVERRIDES, apply_overrides

SCRIPT = ROOT / "benchmarks" / "cost.py"


@pytest.fixture(scope="module")
def cost():
    return load_script(SCRIPT, "mnistgan_benchmark_cost")


A, B, L = plan.Config("dcgan", 32), plan.Config("ccgan", 64, 2, 2), plan.Config("lenet", 64)
WORKS = [
    plan.StageWork("train_lenet", (plan.Part(L, 2, 1000),), 1000),
    plan.StageWork("train_dcgan@a", (plan.Part(A, 2, 100, scored=50),), 1000),
    plan.StageWork("train_ccgan@b", (plan.Part(B, 1, 640, scored=100),), 1000),
    plan.StageWork("train_ccgan@c", (plan.Part(B, 1, 320, scored=100),), 1000),
    plan.StageWork("train_hybrid", (plan.Part(L, 1, 500), plan.Part(plan.Config("lenet", 32), 1, 500)), 1000),
]
MEASURED = {A.name: {"images_per_s": 10, "scored_per_s": 5}, B.name: {"images_per_s": 32, "scored_per_s": 10},
            L.name: {"images_per_s": 100}, "lenet/32x64-256x84-B32": {"images_per_s": 50}}


def test_a_stage_is_startup_plus_training_plus_scoring(cost):
    assert cost.stage_seconds(WORKS[1], MEASURED, 3.0) == {"train_s": 20.0, "score_s": 10.0, "wall_s": 33.0}
    assert cost.stage_seconds(WORKS[4], MEASURED, 3.0)["wall_s"] == 3.0 + 5.0 + 10.0  # two LeNets in one stage
    assert cost.stage_seconds(WORKS[1], {}, 3.0) is None


def test_projection_serial_and_with_slots(cost):
    # walls: lenet 3+20 = 23; a 33; b 3+20+10 = 33; c 3+10+10 = 23; hybrid 18
    one = cost.project(WORKS, MEASURED, 3.0, 1)
    assert one["serial_s"] == pytest.approx(23 + 33 + 33 + 23 + 18)
    assert one["total_s"] == pytest.approx(one["serial_s"])
    two = cost.project(WORKS, MEASURED, 3.0, 2)
    # lenet first, then {a, b, c} over 2 slots longest first: a | b, then c after a: 56; then hybrid
    assert two["gan_makespan_s"] == pytest.approx(56) and two["total_s"] == pytest.approx(23 + 56 + 18)
    assert two["slot_stages"] == [["train_ccgan@b", "train_ccgan@c"], ["train_dcgan@a"]] or \
        two["slot_stages"] == [["train_dcgan@a", "train_ccgan@c"], ["train_ccgan@b"]]
    partial = cost.project(WORKS, {A.name: MEASURED[A.name]}, 3.0, 2)
    assert set(partial["stages"]) == {"train_dcgan@a"} and len(partial["not_measured"]) == 4


def test_hours(cost):
    assert cost.hours(90) == "1.5 min" and cost.hours(5400) == "1.5 h"


def test_a_tiny_measurement_writes_the_json_and_the_table(tmp_path):
    """The tool itself, once: one config, two timed steps, on this machine."""
    params = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()),
                             {**TINY_OVERRIDES, "dcgan.runs": ["F1-D1-B32"]})
    profile = tmp_path / "tiny.yaml"
    profile.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "MNISTGAN_DEVICE": "cpu"}
    r = subprocess.run([sys.executable, str(SCRIPT), "--profile", str(profile), "--only", "train_dcgan@*",
                        "--steps", "2", "--warmup", "1", "--score-samples", "100", "--threads", "1",
                        "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "cost")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (json_file,) = (tmp_path / "cost").glob("cpu-*cores.json")
    result = json.loads(json_file.read_text())
    (name,) = result["configs"]
    assert name == "dcgan/F1-D1-B32"
    m = result["configs"][name]
    assert m["images_per_s"] > 0 and m["scored_per_s"] > 0 and m["peak_bytes"] > 100 * 2**20
    assert 0.25 < m["estimated_bytes"] / m["peak_bytes"] < 4  # the plan's estimate is the right size
    stages = result["projection"]["stages"]
    assert list(stages) == ["train_dcgan@F1-D1-B32"] and stages["train_dcgan@F1-D1-B32"]["wall_s"] > 0
    table = json_file.with_suffix(".md").read_text()
    assert "| `dcgan/F1-D1-B32` | 1 |" in table and "**Total, one stage at a time:" in table
