import pytest

from mnistgan.pipeline import report, summary

SUMMARY = {
    "profile": "quick",
    "device": "cpu (2 cores)",
    "date": "2026-11-22",
    "lenet": {"test_acc": 0.9937, "test_is": 9.86, "fid_train_vs_test": 1.27},
    "hybrid": {"acc_real_0.0": 0.9, "acc_real_0.1": 0.95, "acc_real_1.0": 0.99,
               "real_fraction": {"0.0": 0.9, "0.1": 0.95, "1.0": 0.99}},
    "ccgan": {"best": {"config": "F1-D1-B64", "lenet_acc": 0.95, "is": 9.1, "fid": 3.0, "selected_by": "lenet_acc"},
              "runs": {"F1-D1-B64": {"fid": 3.0, "is": 9.1, "lenet_acc": 0.95, "epochs": 2},
                       "F2-D1-B64": {"fid": 2.0, "is": 9.0, "lenet_acc": 0.94, "epochs": 2}}},
}


def test_get_handles_keys_that_contain_dots():
    assert summary.get(SUMMARY, "hybrid.acc_real_0.1") == 0.95
    assert summary.get(SUMMARY, "hybrid.real_fraction.1.0") == 0.99
    assert summary.get(SUMMARY, "ccgan.best.config") == "F1-D1-B64"
    assert summary.get(SUMMARY, "cogan.edge.agreement") is None


def test_comparison_rows_show_difference_and_bar():
    text = report.comparison(SUMMARY, ["lenet.test_acc", "hybrid.acc_real_0.0"])
    lenet_row = next(line for line in text.splitlines() if "lenet.test_acc" in line)
    assert "| 0.9880 | 0.9937 | 0.0057 | 0.9920 | yes |" in lenet_row
    hybrid_row = next(line for line in text.splitlines() if "acc_real_0.0" in line)
    assert "| 0.9560 | 0.9000 | -0.0560 | 0.9560 | no |" in hybrid_row  # the quick profile's bar
    paper = report.comparison({**SUMMARY, "profile": "paper"}, ["hybrid.acc_real_0.0"])
    assert "| 0.9560 | 0.9000 | -0.0560 | 0.9700 | no |" in paper  # the paper profile's
    study = report.comparison({**SUMMARY, "profile": "study"}, ["hybrid.acc_real_0.0"])
    assert "| 0.9560 | 0.9000 | -0.0560 | 0.9560 | no |" in study  # no column of its own: the default's


def test_render_is_deterministic_and_ranks_runs_by_fid():
    text = report.render(SUMMARY)
    assert text == report.render(SUMMARY)
    assert "profile**: `quick`" in text and "cpu (2 cores)" in text
    assert text.index("`F2-D1-B64`") < text.index("`F1-D1-B64` |")
    assert "CoGAN" not in text  # sections without data are left out, not filled with dashes


@pytest.mark.parametrize("value, text", [(None, "-"), (0.5, "0.5000"), (True, "yes"), ("x", "x"), (3, "3")])
def test_fmt(value, text):
    assert report.fmt(value) == text


def test_scores_show_their_interval_and_cogan_its_chance_level():
    s = {**SUMMARY, "lenet": {**SUMMARY["lenet"], "test_acc_ci95": [0.9919, 0.9952]},
         "cogan": {"edge": {"agreement": 0.9, "agreement_ci95": [0.89, 0.91], "agreement_chance": 0.81,
                            "agreement_normalised": 0.4737, "label_agreement": 0.8, "label_agreement_ci95": [0.78, 0.82],
                            "label_agreement_chance": 0.1, "pairs": 2000}}}
    assert "| 0.9880 | 0.9937 [0.9919, 0.9952] |" in report.comparison(s, ["lenet.test_acc"])
    text = report.render(s)
    assert "| edge | 0.9520 | 0.9000 [0.8900, 0.9100] | 0.8100 | 0.474 | 0.800 [0.780, 0.820] | 0.100 |" in text
    assert "results/spread/quick.md" in text
