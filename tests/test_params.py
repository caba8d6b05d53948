"""params.yaml is validated in one place; every bad value is one line naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from mnistgan import params
from mnistgan.params import ParamsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def good():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repository_params_are_valid(good):
    p = params.validate(good)
    assert p["lenet"]["epochs"] >= 1


def test_paper_profile_is_valid(good):
    paper = ROOT / "profiles" / "paper.yaml"
    if paper.exists():  # the paper profile is a full params file of its own
        params.load(paper)


def _set(d, dotted, value):
    d = copy.deepcopy(d)
    node = d
    *path, last = dotted.split(".")
    for k in path:
        node = node[k]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return d


_DELETE = object()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("lenet.lr", 0, "lenet.lr must be > 0.0"),
        ("lenet.lr", -1e-3, "lenet.lr must be > 0.0"),
        ("lenet.lr", "fast", "lenet.lr must be a number"),
        ("lenet.epochs", 0, "lenet.epochs must be >= 1"),
        ("lenet.epochs", 2.5, "lenet.epochs must be an integer"),
        ("lenet.epochs", True, "lenet.epochs must be an integer"),
        ("lenet.channels", [], "lenet.channels must have at least 2"),
        ("lenet.channels", [8, 0], r"lenet.channels\[1\] must be >= 1"),
        ("device", "tpu", "device must be one of"),
        ("data.train_limit", 70000, "data.train_limit must be <= 60000"),
        ("lenet.bogus", 1, "unknown key lenet.bogus"),
        ("lenet.lr", _DELETE, "missing key lenet.lr"),
        ("lenet", [1, 2], "lenet must be a mapping"),
    ],
)
def test_bad_values_name_the_key(good, key, value, message):
    with pytest.raises(ParamsError, match=message) as err:
        params.validate(_set(good, key, value))
    assert "\n" not in str(err.value)


def test_unknown_top_level_key(good):
    with pytest.raises(ParamsError, match="unknown key learning_rate"):
        params.validate({**good, "learning_rate": 1})


def test_cross_field_rule(good):
    bad = _set(_set(good, "data.train_limit", 100), "data.tsne_samples", 500)
    with pytest.raises(ParamsError, match="data.tsne_samples"):
        params.validate(bad)


def test_load_reports_file_and_yaml_errors(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        params.load(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML at line"):
        params.load(broken)
    dangerous = tmp_path / "dangerous.yaml"
    dangerous.write_text("seed: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params.load(dangerous)
