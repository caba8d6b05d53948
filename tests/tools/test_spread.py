"""The seed-spread aggregation over `dvc exp show --json` (shape of DVC 3's JSON, hand-made)."""

import json
import math
import subprocess

import pytest

from mnistgan_tools import spread


def state(rev, name, seed, acc, fid, lr=0.1, experiments=None):
    params = {"profile": "quick", "seed": seed, "ccgan": {"lr": lr}}
    summary = {"ccgan": {"best": {"lenet_acc": acc, "fid": fid}}, "hybrid": {"acc_real_0.0": acc - 0.1}}
    return {"rev": rev, "name": name, "error": None, "experiments": experiments,
            "data": {"rev": rev, "params": {"params.yaml": {"data": params}},
                     "metrics": {"metrics/summary.json": {"data": summary}}}}


def exp_show():
    exps = [{"name": "seed1", "revs": [state("b1", "seed1", 1, 0.97, 12.0)]},
            {"name": "seed2", "revs": [state("b2", "seed2", 2, 0.95, 15.0)]},
            {"name": "lr", "revs": [state("b3", "lr", 1, 0.50, 99.0, lr=0.5)]},  # other params: left out
            # still running: DVC shows the baseline's metrics under the new params; left out
            {"name": "seed3", "executor": {"state": "running", "local": None},
             "revs": [state("b4", "seed3", 3, 0.96, 10.0)]}]
    return [state("workspace", None, 0, 0.96, 10.0), state("a0", "main", 0, 0.96, 10.0, experiments=exps)]


def test_rows_keep_the_workspace_params_and_one_run_per_seed():
    rows = spread.rows_from_exp_show(exp_show())
    runs = spread.same_but_seed(rows, rows[0]["params"])
    assert [r["name"] for r in runs] == ["workspace", "seed1", "seed2"]


def test_aggregate_gives_mean_std_and_the_worst_seed():
    rows = spread.rows_from_exp_show(exp_show())
    result = spread.aggregate(spread.same_but_seed(rows, rows[0]["params"]))
    acc, fid = result["metrics"]["ccgan.best.lenet_acc"], result["metrics"]["ccgan.best.fid"]
    assert acc["values"] == {"0": 0.96, "1": 0.97, "2": 0.95}
    assert acc["mean"] == pytest.approx(0.96) and acc["std"] == pytest.approx(0.01) and acc["worst"] == 0.95
    assert fid["worst"] == 15.0  # lower is better: the worst seed is the highest FID
    assert result["metrics"]["hybrid.acc_real_0.0"]["min"] == pytest.approx(0.85)  # keys with dots
    assert "dcgan.best.fid" not in result["metrics"]  # absent from every run: left out
    assert "| `ccgan.best.lenet_acc` | 0.96 | 0.97 | 0.95 | 0.96 | 0.01 | 0.95 |" in spread.markdown(result, "quick")


def test_command_writes_json_and_markdown_and_refuses_too_few_seeds(tmp_path, capsys):
    shown = tmp_path / "show.json"
    shown.write_text(json.dumps(exp_show()))
    assert spread.main(["--json", str(shown), "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out/quick.json").read_text())
    assert data["seeds"] == [0, 1, 2] and (tmp_path / "out/quick.md").read_text().startswith("Spread over seeds 0, 1, 2")
    with pytest.raises(SystemExit):
        spread.main(["--json", str(shown), "--out", str(tmp_path / "o2"), "--min-seeds", "4"])
    assert "found 3 seed(s)" in capsys.readouterr().err
    assert math.isnan(spread.aggregate(spread.rows_from_exp_show(exp_show())[:1])["metrics"]["ccgan.best.fid"]["std"])


def test_rev_is_accepted_only_when_its_lock_equals_heads(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {a: {cmd: x}}\n")
    git("add", "dvc.lock")
    git("commit", "-qm", "run")
    (tmp_path / "README.md").write_text("docs only\n")
    git("add", "README.md")
    git("commit", "-qm", "docs")
    monkeypatch.chdir(tmp_path)
    assert spread.same_lock("HEAD~1")  # only the README changed: the same pipeline
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {a: {cmd: y}}\n")
    git("commit", "-qam", "rerun")
    assert not spread.same_lock("HEAD~1")
    assert not spread.same_lock("no-such-rev")
    with pytest.raises(SystemExit):
        spread.main(["--rev", "HEAD~1"])
