"""The stage graph of mnistgan_tools.parallel, the inputs it compares before recording a stage,
its thread warning (runs of a toy project: tests/tools/test_parallel_runs.py; of the real pipeline:
tests/e2e/test_pipeline.py)."""

import pytest
import yaml

from mnistgan_tools import parallel
from mnistgan_tools.parallel import Inputs, Stage, closure, last_wall_time, link, oversubscription_warning, select


def pipeline():
    return link([
        Stage("prepare", "p", ["data/raw"], ["data/prepared"]),
        Stage("lenet", "l", ["data/prepared/train.npz"], ["models/lenet", "metrics/lenet"]),
        Stage("gan@a", "a", ["data/prepared/train.npz", "models/lenet"], ["models/gan/a"]),
        Stage("gan@b", "b", ["data/prepared", "models/lenet/lenet.pt"], ["models/gan/b"]),
        Stage("pca", "c", ["data/prepared/test.npz"], ["metrics/pca.json"]),
        Stage("evaluate", "e", ["metrics", "models/gan"], ["REPORT.md"]),
    ])


def test_upstream_follows_paths_in_both_directions():
    s = pipeline()
    assert s["prepare"].upstream == set()
    assert s["lenet"].upstream == {"prepare"}  # a file inside an output directory
    assert s["gan@b"].upstream == {"prepare", "lenet"}
    assert s["evaluate"].upstream == {"lenet", "pca", "gan@a", "gan@b"}  # outputs inside a dep directory
    assert not {"gan@a", "gan@b"} & s["pca"].upstream


def test_closure_and_select():
    s = pipeline()
    assert closure(s, ["gan@a"]) == {"gan@a", "lenet", "prepare"}
    assert select(s, ["gan@*"]) == {"gan@a", "gan@b", "lenet", "prepare"}
    assert select(s, []) == set(s)
    with pytest.raises(SystemExit, match="no stage matches 'nope'"):
        select(s, ["nope"])


def test_last_wall_time_reads_the_stage_timing_output(tmp_path):
    stage = Stage("gan@a", "a", [], ["models/gan/a", "metrics/timings/gan@a.json"])
    assert last_wall_time(tmp_path, stage) == float("inf")  # never ran: start it first
    (tmp_path / "metrics/timings").mkdir(parents=True)
    (tmp_path / "metrics/timings/gan@a.json").write_text('{"wall_s": 41.5, "peak_rss_mb": 10}')
    assert last_wall_time(tmp_path, stage) == 41.5
    (tmp_path / "metrics/timings/gan@a.json").write_text("not json")
    assert last_wall_time(tmp_path, stage) == float("inf")


def test_inputs_snapshot_sees_content_directories_missing_deps_and_param_values(tmp_path):
    (tmp_path / ".dvcignore").write_text(".*.tmp\n")
    (tmp_path / "f.py").write_text("x = 1\n")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "a.txt").write_text("a")
    params = {"seed": 1, "gan": {"lr": 0.1, "runs": ["A", "B"]}, "other": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage = Stage("s", "c", ["f.py", "d", "later.npz"], ["o"],
                  params={"params.yaml": ("seed", "gan.runs")})
    whole = Stage("w", "c", [], ["o"], params={"params.yaml": ("gan",)})
    inputs = Inputs(tmp_path, {})
    snap = inputs.snapshot(stage)
    assert set(snap) == {"f.py", "d", "later.npz", "param seed (params.yaml)", "param gan.runs (params.yaml)"}
    assert snap["later.npz"] == parallel.MISSING

    def changed(edit, s=stage, before=None):
        before = before or inputs.snapshot(s)
        edit()
        return sorted(k for k, v in inputs.snapshot(s).items() if before[k] != v)

    assert changed(lambda: (tmp_path / "f.py").write_text("x = 2\n")) == ["f.py"]
    assert changed(lambda: (tmp_path / "f.py").touch()) == []  # touched, same content
    assert changed(lambda: (tmp_path / "d" / "sub" / ".x.tmp").write_text("t")) == []  # .dvcignore'd
    assert changed(lambda: (tmp_path / "d" / "sub" / "a.txt").write_text("b")) == ["d"]
    assert changed(lambda: (tmp_path / "d" / "sub" / "a.txt").rename(tmp_path / "d" / "a.txt")) == ["d"]
    assert changed(lambda: (tmp_path / "later.npz").write_bytes(b"")) == ["later.npz"]  # appeared

    def set_params(**changes):
        def edit():
            p = yaml.safe_load((tmp_path / "params.yaml").read_text())
            for key, value in changes.items():
                section, _, sub = key.partition("__")
                if sub:
                    p[section][sub] = value
                else:
                    p[section] = value
            (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        return edit

    assert changed(set_params(other=2, gan__lr=0.2)) == []  # keys the stage does not declare
    assert changed(set_params(gan__runs=["A"])) == ["param gan.runs (params.yaml)"]
    assert changed(set_params(seed=2, gan__runs=["A"])) == ["param seed (params.yaml)"]  # runs as it was
    assert changed(set_params(gan__lr=0.3), whole) == ["param gan (params.yaml)"]  # a whole section
    everything = Stage("e", "c", [], ["o"], params={"params.yaml": ()})
    assert changed(set_params(other=3), everything) == ["params.yaml (all its params)"]


@pytest.mark.parametrize("cpu_threads, jobs, cores, warns, fix", [
    (None, 1, 4, False, None),            # missing: all cores, one stage
    (0, 2, 4, True, "cpu_threads to 2"),  # all cores in each of 2 stages
    (2, 2, 4, False, None),
    (1, 4, 4, False, None),
    (3, 2, 4, True, "cpu_threads to 2"),
    (1, 6, 4, True, "at most -j 4"),
    ("x", 8, 4, False, None),             # not a number: no warning
])
def test_oversubscription_warning(tmp_path, monkeypatch, cpu_threads, jobs, cores, warns, fix):
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: cores)
    params = {"seed": 0} if cpu_threads is None else {"seed": 0, "cpu_threads": cpu_threads}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    line = oversubscription_warning(tmp_path, jobs)
    assert (line is not None) == warns, line
    if warns:
        assert line.startswith("parallel: warning: ") and "\n" not in line and fix in line


def test_threads_are_a_param_not_an_option(capsys):
    with pytest.raises(SystemExit):
        parallel.main(["--threads", "2", "--dry"])
    assert "unrecognized arguments: --threads" in capsys.readouterr().err
