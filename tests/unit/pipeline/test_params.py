"""params.yaml is validated in one place; every bad value is one line naming the key."""

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from mnistgan.pipeline import params
from mnistgan.pipeline.params import ParamsError

from conftest import ROOT  # noqa: E402


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


def test_validated_params_are_plain_values(good):
    p = params.validate(good)
    assert type(p) is dict and type(p["lenet"]) is dict and type(p["gan"]["betas"]) is list
    assert type(p["data"]["tsne_perplexity"]) is float  # written 30 in params.yaml: a float field
    assert p["hybrid"]["mixes"]["class0_40"] == {"default": 0.1, "per_class": {0: 0.4}}
    assert p["hybrid"]["mixes"]["uniform_10"]["per_class"] == {}  # per_class is optional
    assert params.validate(p) == p  # validated params validate again unchanged (smoke.with_budget)


def test_json_schema_lists_every_section_and_both_profiles_validate(good):
    schema = params.json_schema()
    assert set(schema["properties"]) == set(good) == set(schema["required"])
    assert schema["additionalProperties"] is False
    for profile in (ROOT / "params.yaml", ROOT / "profiles" / "paper.yaml"):
        params.load(profile)


def test_json_schema_accepts_both_profiles_and_rejects_a_bad_value(good):
    jsonschema = pytest.importorskip("jsonschema")
    schema = params.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for profile in (ROOT / "params.yaml", ROOT / "profiles" / "paper.yaml"):
        jsonschema.validate(yaml.safe_load(profile.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_set(good, "lenet.lr", 0), schema)


def test_schema_is_printed_by_the_module():
    r = subprocess.run([sys.executable, "-m", "mnistgan.pipeline.params", "--schema"], capture_output=True,
                       text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert json.loads(r.stdout) == params.json_schema()
