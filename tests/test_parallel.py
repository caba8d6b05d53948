"""The stage graph of mnistgan.parallel (its end-to-end run is in test_pipeline_e2e.py)."""

import pytest
import yaml

from mnistgan import parallel
from mnistgan.parallel import Stage, closure, last_wall_time, link, oversubscription_warning, select


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
