"""The claims ledger: each verdict is computed from numbers by its stated rule, flips when the
numbers do, and a grid verdict waits for three seeds of the study profile."""

import copy
import json

import pytest

from mnistgan.pipeline import claims, report, summary as schema

from conftest import ROOT

SUMMARY = json.loads((ROOT / "metrics/summary.json").read_text())


def verdicts(summary, spread=None, study=None):
    return {k: v["verdict"] for k, v in claims.judge(summary, spread, study).items()}


def test_every_claim_has_a_source_a_rule_and_one_of_the_verdicts():
    ledger = claims.judge(SUMMARY)
    assert list(ledger) == [f"c{i:02d}" for i in range(1, 24)]
    for entry in ledger.values():
        assert entry["source"] and entry["rule"] and entry["evidence"] and entry["claim"]
        assert entry["verdict"] in (claims.HOLDS, claims.PARTLY, claims.FAILS, claims.UNTESTED, claims.PENDING)
        assert ("holds" in entry) == (entry["verdict"] in claims.SCORE)


def test_the_worst_digits_verdict_follows_the_per_class_accuracies():
    s = copy.deepcopy(SUMMARY)
    acc = [0.99] * 10
    s["ccgan"]["best"].update(lenet_acc_by_class=acc, samples_by_class=[500] * 10)
    acc[2], acc[4] = 0.90, 0.91
    assert verdicts(s)["c10"] == claims.HOLDS
    acc[4], acc[7] = 0.99, 0.91
    assert verdicts(s)["c10"] == claims.PARTLY
    acc[2] = 0.99
    assert verdicts(s)["c10"] == claims.FAILS


def test_the_class0_verdict_needs_a_drop_beyond_both_intervals():
    s = copy.deepcopy(SUMMARY)
    as_ = lambda k2: [0, 1, k2, 1, 1, 1, 1, 1, 1, 1]  # noqa: E731
    s["hybrid"]["class0_errors"] = {"uniform_10": {"n": 980, "as": as_(60)}, "class0_40": {"n": 980, "as": as_(10)}}
    assert verdicts(s)["c14"] == claims.HOLDS
    s["hybrid"]["class0_errors"]["class0_40"]["as"] = as_(55)  # within the noise: only the first half holds
    assert verdicts(s)["c14"] == claims.PARTLY


def test_a_grid_claim_is_pending_until_three_study_seeds_and_then_decided_on_all():
    def seed(k, best_fid):
        runs = {"F1-D1-B32": {"fid": best_fid}, "F2-D1-B32": {"fid": 100.0}, "F1-D2-B32": {"fid": 90.0}}
        return {"seed": k, "dcgan": {"runs": runs}}
    assert verdicts(SUMMARY)["c02"] == claims.UNTESTED
    assert verdicts(SUMMARY, study=[seed(0, 50.0)])["c02"] == claims.PENDING
    assert verdicts(SUMMARY, study=[seed(k, 50.0) for k in range(3)])["c02"] == claims.HOLDS
    assert verdicts(SUMMARY, study=[seed(0, 50.0), seed(1, 95.0), seed(2, 50.0)])["c02"] == claims.PARTLY
    assert verdicts(SUMMARY, study=[seed(k, 95.0) for k in range(3)])["c02"] == claims.FAILS


def test_the_grid_rules_compare_against_the_reports_best_config_whatever_the_runs_order():
    """The study profile's runs sort with F1-D1-B128 first; every grid rule must still centre on
    the report's best config (DCGAN F1-D1-B32), find its -vbn and -ls runs, and decide."""
    fids = {"F1-D1-B128": 300.0, "F1-D1-B32": 100.0, "F1-D1-B32-ls": 120.0, "F1-D1-B32-vbn": 80.0,
            "F1-D1-B64": 150.0, "F1-D2-B32": 200.0, "F1-D3-B32": 90.0, "F2-D1-B32": 110.0, "F3-D1-B32": 130.0}
    study = [{"seed": k, "dcgan": {"runs": {n: {"fid": f} for n, f in sorted(fids.items())}}} for k in range(3)]
    got = claims.judge(SUMMARY, None, study)
    assert got["c02"]["verdict"] == claims.FAILS  # F1-D3-B32 (90) beats F1-D1-B32 (100)
    assert got["c04"]["verdict"] == claims.PARTLY and "worse in 3 of 4" in got["c04"]["evidence"]
    assert got["c05"]["verdict"] == claims.FAILS  # the -vbn run is 20% below the plain one
    assert "F1-D1-B32 100.000, F1-D1-B32-vbn 80.000" in got["c05"]["evidence"]


def test_an_accuracy_grid_rule_decides_by_the_intervals_it_shows():
    """CCGAN -ls "adds about 3 points": a gain only when the intervals part, and the evidence
    carries both intervals so a reader can check the rule."""
    def run(acc, half):
        return {"lenet_acc": acc, "lenet_acc_ci95": [acc - half, acc + half]}
    overlapping = {"F1-D1-B64": run(0.70, 0.02), "F1-D1-B64-ls": run(0.73, 0.02)}
    apart = {"F1-D1-B64": run(0.70, 0.01), "F1-D1-B64-ls": run(0.73, 0.01)}
    study = [{"seed": k, "ccgan": {"runs": overlapping if k == 0 else apart}} for k in range(3)]
    got = claims.judge(SUMMARY, None, study)["c09"]
    assert got["verdict"] == claims.PARTLY  # seed 0's +3 points lie within the noise
    assert "seed 0: F1-D1-B64 0.700 [0.680, 0.720], F1-D1-B64-ls 0.730 [0.710, 0.750] (does not hold)" in got["evidence"]


def test_a_verdict_uses_the_worst_seed_of_the_spread():
    spread = {"metrics": {"lenet.test_acc": {"worst": 0.985, "n": 3}}}
    assert verdicts(SUMMARY)["c01"] == claims.HOLDS
    assert verdicts(SUMMARY, spread)["c01"] == claims.FAILS


def test_verdicts_reach_the_headlines_file_and_open_the_report():
    s = {**SUMMARY, "claims": claims.judge(SUMMARY)}
    params = {"cogan": {"pairs": list(SUMMARY["cogan"])}}
    heads = schema.headline_values(s, params)
    assert heads["claims"]["c01"] == {"verdict": claims.HOLDS, "holds": 1.0}
    assert "holds" not in heads["claims"]["c02"]  # undecided: no number to diff
    text = report.render(s, {})
    assert text.index("## Claims ledger") < text.index("## Data")
    assert "| 10 | 2 and 4 are the digits the CCGAN gets most wrong |" in text


@pytest.mark.parametrize("cid", [c.id for c in claims.CLAIMS])
def test_no_rule_crashes_on_a_summary_missing_its_inputs(cid):
    bare = {"profile": "quick", "lenet": SUMMARY["lenet"], "data": {"class_counts": SUMMARY["data"]["class_counts"]}}
    assert claims.judge(bare)[cid]["verdict"]


def test_the_ledger_states_the_study_profiles_budget():
    """The grid verdicts name the budget they were tested at; it must be the profile's own."""
    import yaml

    study = yaml.safe_load((ROOT / "profiles" / "study.yaml").read_text())
    for family in ("dcgan", "ccgan"):
        budget = f"{study[family]['epochs']} epochs x {study[family]['train_limit']:,} images per run"
        assert budget in claims.STUDY_NOTE, (family, budget)
    seeds = [{"seed": k, "dcgan": {"runs": {"F1-D1-B32": {"fid": 100.0}}}} for k in range(claims.STUDY_SEEDS)]
    text = report.render({**SUMMARY, "claims": claims.judge(SUMMARY, None, seeds)}, {})
    assert claims.STUDY_NOTE in text  # once every seed is in, the budget still stands beside the verdicts
