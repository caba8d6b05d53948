"""The private DVC APIs mnistgan_tools.shard relies on, checked against the installed DVC.

pyproject.toml holds DVC to the minor release these tests cover; before widening that range,
this file must pass on the new release (a rename there would otherwise surface as a failed
shard run on a cluster, not here).
"""

import inspect

import dvc
from dvc.repo import Repo
from dvc.stage.cache import StageCache
from dvc.stage.serialize import to_single_stage_lockfile


def test_dvc_is_the_release_the_project_pins():
    major, minor = (int(x) for x in dvc.__version__.split(".")[:2])
    assert (major, minor) == (3, 67), f"tests cover DVC 3.67; found {dvc.__version__}: run this file first"


def test_the_run_cache_private_methods_shard_calls_exist_with_their_signatures():
    assert list(inspect.signature(StageCache._create_stage).parameters)[:3] == ["self", "cache", "wdir"]
    assert list(inspect.signature(StageCache._load).parameters)[:2] == ["self", "stage"]
    assert callable(to_single_stage_lockfile)


def test_the_run_cache_round_trips_a_stage(tmp_path, monkeypatch):
    """`_create_stage` rebuilds a stage from its lock entry and `_load` finds a saved run: the two
    calls of shard.push_uncached_outputs and shard.missing_runs, on a one-stage repo."""
    import subprocess

    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["dvc", "init", "-q"], check=True)
    (tmp_path / "in.txt").write_text("x\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: cp in.txt out.txt\n    deps:\n      - in.txt\n"
                                       "    outs:\n      - out.txt\n")
    subprocess.run(["dvc", "repro", "-q"], check=True)
    with Repo(str(tmp_path)) as repo:
        (stage,) = repo.index.stages
        entry = repo.stage_cache._create_stage(to_single_stage_lockfile(stage), wdir=stage.wdir)
        assert [o.def_path for o in entry.outs] == ["out.txt"]
        stage.save_deps()
        assert repo.stage_cache._load(stage) is not None
