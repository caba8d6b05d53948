"""The stages downstream of the GANs on tiny generated data: generate_synthetic, train_hybrid, pca_sweep.

No MNIST files: the prepared arrays, the LeNet scorer and two fake CCGAN runs are made here
(seconds). Each stage's ``main(args, params)`` runs in-process on them; bad params are checked
to fail in validation with one line naming the key.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mnistgan import classifier, hybrid
from mnistgan.data.mnist import allocate
from mnistgan.errors import PipelineError
from mnistgan.files import load_npz, save_json, save_npz
from mnistgan.gan import store
from mnistgan.metrics import scores
from mnistgan.models import dcgan
from mnistgan.pipeline import params as params_mod
from mnistgan.pipeline.params import ParamsError

from conftest import ROOT, load_script
from tiny import TINY_OVERRIDES, apply_overrides

N_TRAIN, N_TEST = 300, 100
SYNTHETIC_MARK = 255  # pixel (0, 0) of every fake synthetic digit; real digits have 0 there

OVERRIDES = {
    **TINY_OVERRIDES,
    "device": "cpu",
    "ccgan.runs": ["F1-D1-B32", "F1-D1-B64"],  # the world's two fake CCGAN runs
    "lenet.channels": [4, 8],
    "lenet.hidden": [16, 12],
    "hybrid.total": 200,
    "hybrid.test_images": 0,
    "hybrid.epochs": 1,
    "hybrid.curve_total": 0,  # one budget: the headline r = 0 and r = 1 are the curve's classifiers
    "hybrid.curve_epochs": 0,
    "hybrid.real_fractions": [0.0, 0.1, 0.25, 1.0],
    "hybrid.sweep.real_fraction": 0.5,
    "hybrid.sweep.lrs": [0.001, 0.01],
    "hybrid.sweep.batch_sizes": [16, 64],
    "pca.components": [1, 4, 16],
    "scoring.samples": 100,  # all N_TEST test digits rebuilt, 100 PPCA samples
}


def load_stage(name: str):
    """Import stages/<name>.py in-process, with stages/ on sys.path as when run as a script
    (each stage imports stages/src_path.py first)."""
    if str(ROOT / "stages") not in sys.path:
        sys.path.insert(0, str(ROOT / "stages"))
    return load_script(ROOT / "stages" / f"{name}.py", f"stage_{name}")


def tiny_params(**extra) -> dict:
    raw = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), {**OVERRIDES, **extra})
    return params_mod.validate(raw)


def tiny_digits(counts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose class is a bright bar at a class-dependent row, in random order."""
    y = rng.permutation(np.repeat(np.arange(10), counts)).astype(np.uint8)
    x = rng.integers(0, 60, size=(len(y), 28, 28)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 4 + 2 * c : 6 + 2 * c, 4:24] = 255
    x[:, 0, 0] = 0
    return x, y


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """data/prepared (unequal class counts), models/lenet, and two fake CCGAN runs."""
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    train_counts = allocate(np.array(hybrid.MNIST_TRAIN_CLASS_COUNTS), N_TRAIN)
    (xtr, ytr), (xte, yte) = tiny_digits(train_counts, rng), tiny_digits(allocate(np.ones(10), N_TEST), rng)
    save_npz(root / "data/prepared/train.npz", x=xtr, y=ytr)
    save_npz(root / "data/prepared/test.npz", x=xte, y=yte)

    p = tiny_params()
    channels, hidden = p["lenet"]["channels"], p["lenet"]["hidden"]
    model = classifier.train_classifier(xtr, ytr, xte, yte, epochs=1, batch_size=32, lr=1e-2,
                                        channels=channels, hidden=hidden).model
    classifier.save_scorer(root / "models/lenet", model, channels, hidden, scores.lenet_outputs(model, xte)[0])

    for seed, (run, run_scores) in enumerate({"F1-D1-B32": {"lenet_acc": 0.5, "fid": 10.0},
                                          "F1-D1-B64": {"lenet_acc": 0.9, "fid": 20.0}}.items()):
        torch.manual_seed(seed)
        store.save_generator(root / "models/ccgan" / run, dcgan.Generator(latent=8, width=1, n_classes=10), "ccgan",
                           {"run": run})
        save_json(root / "metrics/ccgan" / run / "metrics.json", {**run_scores, "score": {"is": 5.0 + seed}})
    return root


def synthetic_args(world: Path, out: Path) -> argparse.Namespace:
    return argparse.Namespace(family="ccgan", models=str(world / "models/ccgan"), metrics=str(world / "metrics/ccgan"),
                              data=str(world / "data/prepared"), scorer=str(world / "models/lenet"),
                              out=str(out / "data/synthetic/train.npz"), summary=str(out / "metrics/synthetic.json"),
                              plots=str(out / "plots/synthetic"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- generate_synthetic
@pytest.mark.parametrize("select_by, mode, expected", [
    ("lenet_acc", "max", "F1-D1-B64"),
    ("fid", "min", "F1-D1-B32"),
    ("score.is", "max", "F1-D1-B64"),  # a nested (dvclive-style) metric
])
def test_generate_synthetic_picks_by_metric_with_exact_class_counts(world, tmp_path, select_by, mode, expected):
    stage = load_stage("generate_synthetic")
    stage.main(synthetic_args(world, tmp_path), tiny_params(**{"synthetic.select_by": select_by, "synthetic.mode": mode}))

    out = load_npz(tmp_path / "data/synthetic/train.npz")
    train_y = load_npz(world / "data/prepared/train.npz")["y"]
    assert set(out) == {"x", "y"}
    assert out["x"].dtype == np.uint8 and out["x"].shape == (N_TRAIN, 28, 28)
    assert out["y"].dtype == np.uint8 and out["y"].shape == (N_TRAIN,)
    np.testing.assert_array_equal(np.bincount(out["y"], minlength=10), np.bincount(train_y, minlength=10))

    summary = json.loads((tmp_path / "metrics/synthetic.json").read_text())
    assert summary["run"] == expected
    assert set(summary["candidates"]) == {"F1-D1-B32", "F1-D1-B64"}
    assert summary["class_counts"] == np.bincount(train_y, minlength=10).tolist()
    assert 0.0 <= summary["lenet_acc"] <= 1.0 and 1.0 <= summary["is"] <= 10.0 and summary["fid"] >= 0.0
    assert (tmp_path / "plots/synthetic/samples.png").read_bytes()[:4] == b"\x89PNG"


def test_generate_synthetic_is_deterministic(world, tmp_path):
    stage, p = load_stage("generate_synthetic"), tiny_params()
    stage.main(synthetic_args(world, tmp_path / "a"), p)
    stage.main(synthetic_args(world, tmp_path / "b"), p)
    a, b = load_npz(tmp_path / "a/data/synthetic/train.npz"), load_npz(tmp_path / "b/data/synthetic/train.npz")
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["y"], b["y"])


def test_generate_synthetic_picks_only_among_the_runs_of_the_params(world, tmp_path):
    # F1-D1-B64 is the better run by lenet_acc, but a run removed from ccgan.runs leaves its
    # files in the workspace (DVC does not delete them): it must not be picked
    stage = load_stage("generate_synthetic")
    stage.main(synthetic_args(world, tmp_path), tiny_params(**{"ccgan.runs": ["F1-D1-B32"]}))
    summary = json.loads((tmp_path / "metrics/synthetic.json").read_text())
    assert summary["run"] == "F1-D1-B32" and set(summary["candidates"]) == {"F1-D1-B32"}


def test_generate_synthetic_names_a_missing_metric_and_missing_runs(world, tmp_path):
    stage = load_stage("generate_synthetic")
    with pytest.raises(PipelineError, match="no metric 'acc'.*top-level metrics: fid, lenet_acc"):
        stage.main(synthetic_args(world, tmp_path), tiny_params(**{"synthetic.select_by": "acc"}))
    args = synthetic_args(world, tmp_path)
    args.metrics = str(tmp_path / "nothing")
    with pytest.raises(PipelineError, match="no CCGAN metrics for run.s. F1-D1-B32, F1-D1-B64 of ccgan.runs"):
        stage.main(args, tiny_params())
    with pytest.raises(PipelineError, match="run.s. F2-D1-B64 of ccgan.runs"):
        stage.main(synthetic_args(world, tmp_path), tiny_params(**{"ccgan.runs": ["F1-D1-B64", "F2-D1-B64"]}))
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------- train_hybrid
@pytest.fixture
def hybrid_world(world, tmp_path) -> Path:
    """A synthetic pool with the prepared train's class counts, each image marked at pixel (0, 0)."""
    train = load_npz(world / "data/prepared/train.npz")
    x, y = tiny_digits(np.bincount(train["y"], minlength=10), np.random.default_rng(1))
    x[:, 0, 0] = SYNTHETIC_MARK
    save_npz(tmp_path / "synthetic.npz", x=x, y=y)
    return tmp_path


def test_train_hybrid_outputs_and_per_class_fractions(world, hybrid_world, monkeypatch, capsys):
    out = hybrid_world
    p = tiny_params(**{"hybrid.mixes": {"uniform_10": {"default": 0.1},
                                        "class0_40": {"default": 0.1, "per_class": {0: 0.4}}}})
    seen = []
    real_train = classifier.train_classifier

    def spy(x, y, *args, **kwargs):
        seen.append((np.asarray(x).copy(), np.asarray(y).copy(), kwargs["lr"], kwargs["batch_size"]))
        return real_train(x, y, *args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", spy)
    args = argparse.Namespace(data=str(world / "data/prepared"), synthetic=str(out / "synthetic.npz"),
                              plots=str(out / "plots/hybrid"), metrics=str(out / "metrics/hybrid.json"))
    load_stage("train_hybrid").main(args, p)

    h = p["hybrid"]
    fractions = h["real_fractions"]
    sweep = [(lr, bs) for lr in h["sweep"]["lrs"] for bs in h["sweep"]["batch_sizes"]]
    jobs = ([(hybrid.fractions_by_class(r), h["lr"], h["batch_size"]) for r in fractions]
            + [(hybrid.fractions_by_class(h["sweep"]["real_fraction"]), lr, bs) for lr, bs in sweep]
            + [(hybrid.fractions_by_class(m["default"], m["per_class"]), h["lr"], h["batch_size"])
               for m in h["mixes"].values()]
            + [(hybrid.fractions_by_class(r), h["lr"], h["batch_size"]) for r in hybrid.HEADLINE_FRACTIONS])
    # uniform_10 is the r = 0.1 classifier again, and at one budget the headline r = 0 and r = 1
    # are the curve's: trained once, reported twice.
    distinct = [job for i, job in enumerate(jobs) if job not in jobs[:i]]
    assert len(distinct) == len(jobs) - 3
    progress = [l for l in capsys.readouterr().out.splitlines() if l.startswith("train_hybrid: [")]
    assert len(progress) == len(jobs)  # one progress line per classifier
    assert "mix uniform_10" in progress[len(fractions) + len(sweep)] and "not retrained" in progress[len(fractions) + len(sweep)]

    train_y = load_npz(world / "data/prepared/train.npz")["y"]
    counts = allocate(np.bincount(train_y, minlength=10), h["total"])
    assert len(seen) == len(distinct)
    for (x, y, lr, bs), (r, want_lr, want_bs) in zip(seen, distinct):
        assert (lr, bs) == (want_lr, want_bs)
        assert len(y) == h["total"]
        np.testing.assert_array_equal(np.bincount(y, minlength=10), counts)  # class proportions kept
        real_per_class = np.bincount(y[x[:, 0, 0] != SYNTHETIC_MARK], minlength=10)
        np.testing.assert_array_equal(real_per_class, hybrid.real_counts(counts, r))

    curve = read_csv(out / "plots/hybrid/real_fraction.csv")
    assert [float(row["r"]) for row in curve] == fractions
    grid = read_csv(out / "plots/hybrid/lr_batch.csv")
    assert [(float(row["lr"]), int(row["batch_size"])) for row in grid] == sweep
    test_y = load_npz(world / "data/prepared/test.npz")["y"]
    for name in h["mixes"]:
        confusion = read_csv(out / f"plots/hybrid/confusion/{name}.csv")
        assert len(confusion) == len(test_y) and set(confusion[0]) == {"actual", "predicted"}
        assert [int(row["actual"]) for row in confusion] == test_y.tolist()

    metrics = json.loads((out / "metrics/hybrid.json").read_text())
    for key in ("acc_real_0.0", "acc_real_0.1", "acc_real_0.25", "acc_real_1.0"):
        assert 0.0 <= metrics["curve"][key] <= 1.0, key
    for key in ("acc_real_0.0", "acc_real_1.0"):  # one budget: the headline is the curve's end points
        assert metrics[key] == metrics["curve"][key]
    assert (metrics["total"], metrics["curve_total"]) == (h["total"], h["total"])
    near = {float(row["r"]): float(row["test_acc"]) for row in curve}
    assert metrics["fig9_smallest_r"] == min(r for r, acc in near.items() if acc >= near[1.0] - 0.005)
    best = metrics["sweep"]["best"]
    assert (best["lr"], best["batch_size"]) in sweep
    assert best["test_acc"] == pytest.approx(max(float(row["test_acc"]) for row in grid), abs=1e-6)
    assert set(metrics["mixes"]) == set(h["mixes"]) and metrics["classifiers_trained"] == len(distinct)
    assert metrics["mixes"]["uniform_10"]["test_acc"] == metrics["curve"]["acc_real_0.1"]
    assert metrics["mixes"]["class0_40"]["real_share"] > metrics["mixes"]["uniform_10"]["real_share"]


def test_train_hybrid_headline_has_its_own_budget(world, hybrid_world, monkeypatch):
    """r = 0 and r = 1 train on hybrid.total images for hybrid.epochs; the rest on the curve's budget."""
    out = hybrid_world
    p = tiny_params(**{"hybrid.total": 240, "hybrid.epochs": 2, "hybrid.curve_total": 100, "hybrid.curve_epochs": 1,
                       "hybrid.sweep.lrs": [0.001], "hybrid.sweep.batch_sizes": [32]})
    seen = []
    real_train = classifier.train_classifier

    def spy(x, y, *args, **kwargs):
        seen.append((len(y), kwargs["epochs"], float((np.asarray(x)[:, 0, 0] != SYNTHETIC_MARK).mean())))
        return real_train(x, y, *args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", spy)
    args = argparse.Namespace(data=str(world / "data/prepared"), synthetic=str(out / "synthetic.npz"),
                              plots=str(out / "plots/hybrid"), metrics=str(out / "metrics/hybrid.json"))
    load_stage("train_hybrid").main(args, p)
    headline = [s for s in seen if s[:2] == (240, 2)]
    assert [share for _, _, share in headline] == [0.0, 1.0]  # r = 0 all synthetic, r = 1 all real
    assert len(headline) + sum(s[:2] == (100, 1) for s in seen) == len(seen)
    metrics = json.loads((out / "metrics/hybrid.json").read_text())
    assert (metrics["total"], metrics["epochs"], metrics["curve_total"], metrics["curve_epochs"]) == (240, 2, 100, 1)
    assert set(metrics["curve"]) == {f"acc_real_{r}{ci}" for r in ("0.0", "0.1", "0.25", "1.0") for ci in ("", "_ci95")}
    assert metrics["fig9_smallest_r"] in (0.0, 0.1, 0.25, 1.0)


def test_fraction_keys_have_one_decimal():
    key = load_stage("train_hybrid").fraction_key
    assert [key(r) for r in (0.0, 0.1, 1.0, 0.25)] == ["acc_real_0.0", "acc_real_0.1", "acc_real_1.0", "acc_real_0.25"]


# ----------------------------------------------------------------------------- pca_sweep
def test_pca_sweep_outputs(world, tmp_path):
    p = tiny_params()
    args = argparse.Namespace(data=str(world / "data/prepared"), scorer=str(world / "models/lenet"),
                              plots=str(tmp_path / "plots/pca"), metrics=str(tmp_path / "metrics/pca.json"))
    load_stage("pca_sweep").main(args, p)

    ns = p["pca"]["components"]
    methods = ("global", "per_class", "ppca")
    curve = read_csv(tmp_path / "plots/pca/curve.csv")
    assert list(curve[0]) == ["n", "method", "lenet_acc", "is", "fid"]
    assert [(int(r["n"]), r["method"]) for r in curve] == [(n, m) for m in methods for n in ns]
    for name in ("reconstruction", "global", "ppca"):
        assert (tmp_path / f"plots/pca/{name}.png").read_bytes()[:4] == b"\x89PNG"

    metrics = json.loads((tmp_path / "metrics/pca.json").read_text())
    for method in methods:
        m = metrics[method]
        assert m["saturation_components"] in ns and m["fid_saturation_components"] in ns
        assert m["best"]["n"] in ns and 0.0 <= m["best"]["lenet_acc"] <= 1.0
        for n in ns:
            assert set(m[f"n{n}"]) == {"lenet_acc", "is", "fid", "samples", "lenet_acc_ci95"}
            assert m[f"n{n}"]["samples"] == 100  # every set scored on scoring.samples digits
        acc = {int(r["n"]): float(r["lenet_acc"]) for r in curve if r["method"] == method}
        assert m["best"]["lenet_acc"] == pytest.approx(max(acc.values()), abs=1e-6)
        fid = {int(r["n"]): float(r["fid"]) for r in curve if r["method"] == method}
        assert fid[m["fid_saturation_components"]] <= min(fid.values()) + p["pca"]["fid_saturation_tolerance"]
    # the global basis ignores the label, so it can only lose accuracy against the per-class one at n = 1
    assert metrics["global"]["n1"]["lenet_acc"] <= metrics["per_class"]["n1"]["lenet_acc"]
    assert metrics["real_test"]["samples"] == 100


# ----------------------------------------------------------------------------- params
@pytest.mark.parametrize("key, value, message", [
    ("hybrid.real_fractions", [0.0, 1.5], r"hybrid.real_fractions\[1\] must be <= 1.0"),
    ("hybrid.real_fractions", [-0.1], r"hybrid.real_fractions\[0\] must be >= 0.0"),
    ("hybrid.real_fractions", [], "hybrid.real_fractions must have at least 1"),
    ("hybrid.real_fractions", [0.1, 0.1], "hybrid.real_fractions repeats 0.1"),
    ("hybrid.real_fractions", [0.0, 0.5], "hybrid.real_fractions must contain 1.0"),
    ("hybrid.curve_total", 5000, r"hybrid.curve_total \(5000\) exceeds the 1200 images"),
    ("cogan.epochs_by_pair", {"edges": 2}, "cogan.epochs_by_pair name must be one of rotate, negative, edge"),
    ("cogan.epochs_by_pair", {"edge": 0}, "cogan.epochs_by_pair.edge must be >= 1"),
    ("cogan.train_limit_by_pair", {"blur": 100}, "cogan.train_limit_by_pair name must be one of rotate, negative, edge"),
    ("cogan.train_limit_by_pair", {"rotate": -1}, "cogan.train_limit_by_pair.rotate must be >= 0"),
    ("hybrid.sweep.real_fraction", 1.1, "hybrid.sweep.real_fraction must be <= 1.0"),
    ("hybrid.sweep.lrs", [], "hybrid.sweep.lrs must have at least 1"),
    ("hybrid.sweep.batch_sizes", [0], r"hybrid.sweep.batch_sizes\[0\] must be >= 1"),
    ("hybrid.mixes", {}, "hybrid.mixes must have at least 1"),
    ("hybrid.mixes", {"m": {"default": 2}}, "hybrid.mixes.m.default must be <= 1.0"),
    ("hybrid.mixes", {"m": {"default": 0.1, "per_class": {0: -0.4}}}, "hybrid.mixes.m.per_class.0 must be >= 0.0"),
    ("hybrid.mixes", {"m": {"default": 0.1, "per_class": {10: 0.4}}}, "hybrid.mixes.m.per_class: class 10 is not"),
    ("hybrid.mixes", {"m": {"per_class": {0: 0.4}}}, "missing key hybrid.mixes.m.default"),
    ("hybrid.mixes", {"m": {"default": 0.1, "extra": 1}}, "unknown key hybrid.mixes.m.extra"),
    ("hybrid.mixes", {"a b": {"default": 0.1}}, "hybrid.mixes name must be a short name"),
    ("hybrid.total", 5000, r"hybrid.total \(5000\) exceeds the 1200 images kept by data.train_limit"),
    ("hybrid.epochs", 0, "hybrid.epochs must be >= 1"),
    ("pca.components", [1, 784], r"pca.components\[1\] must be <= 783"),
    ("pca.components", [0], r"pca.components\[0\] must be >= 1"),
    ("pca.components", [], "pca.components must have at least 1"),
    ("scoring.samples", 600, r"scoring.samples \(600\) exceeds the 500 images kept by data.test_limit"),
    ("scoring.samples", 12, r"scoring.samples \(12\) must exceed lenet.hidden\[1\] \(12\)"),
    ("pca.saturation_tolerance", -0.1, "pca.saturation_tolerance must be >= 0.0"),
    ("synthetic.mode", "best", "synthetic.mode must be one of max, min"),
    ("synthetic.select_by", "", "synthetic.select_by must be a short name"),
])
def test_bad_downstream_params_fail_in_validation_naming_the_key(key, value, message):
    with pytest.raises(ParamsError, match=message) as info:
        tiny_params(**{key: value})
    assert "\n" not in str(info.value)


def test_mix_classes_may_be_digit_strings():
    p = tiny_params(**{"hybrid.mixes": {"m": {"default": 0.1, "per_class": {"0": 0.4}}}})
    assert p["hybrid"]["mixes"]["m"]["per_class"] == {0: 0.4}


def test_stage_stops_on_bad_params_with_one_line_and_no_output(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad = copy.deepcopy(raw)
    bad["hybrid"]["mixes"]["class0_40"]["per_class"] = {0: 1.4}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    r = subprocess.run([sys.executable, str(ROOT / "stages/train_hybrid.py"), "--params", str(tmp_path / "params.yaml"),
                        "--plots", str(tmp_path / "plots"), "--metrics", str(tmp_path / "hybrid.json")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"train_hybrid: error: {tmp_path / 'params.yaml'}: hybrid.mixes.class0_40.per_class.0 must be <= 1.0 (got 1.4)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
