"""The one GAN training loop: steps of every family, NaN stop, checkpoints, exact resumption,
saved generators, the GAN params and the stage scripts, all on tiny random data."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from dvclive import Live

from mnistgan import classifier
from mnistgan.errors import PipelineError
from mnistgan.files import save_npz
from mnistgan.gan import checkpoints, coupled, image, loop, sampling, store
from mnistgan.models import cogan
from mnistgan.models.lenet import LeNet
from mnistgan.pipeline import params

from conftest import ROOT
from tiny import apply_overrides

CONFIG = loop.TrainConfig(epochs=1, batch_size=8, lr=1e-3, betas=(0.5, 0.999), seed=0)


@pytest.fixture(autouse=True)
def _small_bn_estimate(monkeypatch):
    """The averaged generator's batch-norm statistics from 512 noise vectors, not 4,096: the
    same code path, an eighth of the forward passes through a full-size generator."""
    monkeypatch.setattr(loop, "BN_SAMPLES", 2 * loop.BN_BATCH)


def make(family: str, n: int = 8, vbn: bool = False):
    """A freshly initialised (seeded) family and tiny random training tensors for it."""
    torch.manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    if family == "cogan":
        return coupled.CoupledGAN(cogan.CoupledGenerator(width=0.0625), cogan.CoupledDiscriminator()), (x, -x)
    data = (x, torch.arange(n) % 10) if family == "ccgan" else (x,)
    model = image.image_gan(data, conditional=family == "ccgan", width=1, depth=1, latent=100,
                          vbn_batch=4 if vbn else 0, real_target=0.9, seed=0)
    return model, data


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("family,vbn,bf16", [
    ("dcgan", False, False), ("ccgan", False, False), ("cogan", False, False),
    ("dcgan", True, False), ("ccgan", False, True),
])
def test_one_step_changes_both_nets(family, vbn, bf16):
    model, data = make(family, vbn=vbn)
    before = [snapshot(model.generator), snapshot(model.discriminator)]
    history = loop.train(model, data, replace(CONFIG, bf16=bf16), name="t").history
    assert [r["epoch"] for r in history] == [1]
    assert all(np.isfinite(history[0][k]) for k in loop.STATS)
    for net, old in zip((model.generator, model.discriminator), before):
        assert any(not torch.equal(v, old[k]) for k, v in net.state_dict().items() if v.is_floating_point())


def test_scores_every_k_epochs_and_epochs_use_train_limit_images():
    model, data = make("cogan", n=32)
    steps = []
    model.g_loss = lambda fake, noise, f=model.g_loss: steps.append(1) or f(fake, noise)
    history = loop.train(model, data, replace(CONFIG, epochs=4, eval_every=2, train_limit=16), name="t",
                             evaluate=lambda g: {"score": 1.0}).history
    assert ["score" in r for r in history] == [False, True, False, True]
    assert len(steps) == 4 * 16 // 8


def test_non_finite_loss_stops_with_config_and_epoch():
    model, (x,) = make("dcgan")
    with pytest.raises(PipelineError, match=r"dcgan F1-D1-B8: d_loss is nan at epoch 1"):
        loop.train(model, (torch.full_like(x, float("nan")),), CONFIG, name="dcgan F1-D1-B8")


class Killed(Exception):
    pass


def run(tmp: Path, tag: str, epochs: int, kill_at_step: int | None = None, identity=None, **settings):
    """A tiny CCGAN with a checkpoint and a dvclive dir; optionally "killed" inside a step.
    ``settings``: TrainConfig fields (lr_decay, ema); the model's ``sampled`` is the generator
    train() returned."""
    model, data = make("ccgan", n=24)
    if kill_at_step is not None:
        calls = iter(range(kill_at_step))
        def g_loss(fake, noise, f=model.g_loss):
            if next(calls, None) is None:
                raise Killed()
            return f(fake, noise)
        model.g_loss = g_loss
    with Live(str(tmp / f"live_{tag}"), dvcyaml=False, save_dvc_exp=False) as live:
        trained = loop.train(model, data, replace(CONFIG, epochs=epochs, **settings), name="t",
                                 identity=identity or {"run": 1}, checkpoint=tmp / f"{tag}.pt",
                                 evaluate=lambda g: {"score": g.dense[0].weight.detach().sum().item()},
                                 on_epoch=loop.dvclive_logger(live, "t", epochs))
    model.sampled = trained.generator
    return trained.history, model


def files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("settings", [{}, {"lr_decay": 0.5, "ema": 0.9}], ids=["plain", "lr_decay+ema"])
@pytest.mark.parametrize("interruption", ["killed mid-epoch", "ran fewer epochs first"])
def test_resumed_run_ends_identical_to_an_uninterrupted_one(tmp_path, interruption, settings):
    straight, model_a = run(tmp_path, "a", epochs=3, **settings)
    if interruption == "killed mid-epoch":  # 3 steps per epoch: dies in the 2nd step of epoch 2
        with pytest.raises(Killed):
            run(tmp_path, "b", epochs=3, kill_at_step=4, **settings)
    else:
        run(tmp_path, "b", epochs=1, **settings)
    resumed, model_b = run(tmp_path, "b", epochs=3, **settings)
    assert resumed == straight
    for net in ("generator", "discriminator", "sampled"):
        a, b = getattr(model_a, net).state_dict(), getattr(model_b, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert files(tmp_path / "live_b") == files(tmp_path / "live_a")


def test_lr_decay_keeps_the_first_epoch_and_changes_the_later_ones(tmp_path):
    plain, _ = run(tmp_path, "a", epochs=2)
    decayed, _ = run(tmp_path, "b", epochs=2, lr_decay=0.1)
    assert decayed[0] == plain[0]  # epoch 1 at lr itself
    assert decayed[1] != plain[1]  # epoch 2 at lr x 0.1


def test_without_ema_the_trained_generator_is_g_itself(tmp_path):
    _, model = run(tmp_path, "a", epochs=1)
    assert model.sampled is model.generator


def test_ema_samples_the_average_with_batch_norm_statistics_of_its_own(tmp_path):
    _, model = run(tmp_path, "a", epochs=2, ema=0.5)
    g, avg = model.generator, model.sampled
    assert avg is not g and not avg.training
    weights = [k for k, v in g.state_dict().items() if k.endswith("weight") and v.is_floating_point()]
    assert any(not torch.equal(g.state_dict()[k], avg.state_dict()[k]) for k in weights)  # an average, not G
    # the averaged generator's batch-norm statistics are re-estimated on its own outputs, so
    # re-estimating them again on the same noise gives the same numbers, and differs from G's
    norms = {k: v.clone() for k, v in avg.state_dict().items() if "running" in k}
    assert norms and any(not torch.equal(v, g.state_dict()[k]) for k, v in norms.items())
    rng = torch.Generator().manual_seed(CONFIG.seed + loop.BN_SEED)
    family = image.ImageGAN(avg, model.discriminator)
    loop.recalibrate_bn(avg, [family.noise(loop.BN_BATCH, rng)
                                  for _ in range(loop.BN_SAMPLES // loop.BN_BATCH)])
    assert all(torch.allclose(avg.state_dict()[k], v) for k, v in norms.items())


def test_the_last_evaluation_s_average_is_returned_without_a_second_bn_estimate(monkeypatch):
    calls = []
    recalibrate = loop.recalibrate_bn
    monkeypatch.setattr(loop, "recalibrate_bn", lambda g, b: calls.append(1) or recalibrate(g, b))
    config = replace(CONFIG, epochs=2, ema=0.5)
    scored = []
    model, data = make("ccgan", n=24)
    evaluated = loop.train(model, data, config, name="t", evaluate=lambda g: scored.append(g) or {})
    assert len(calls) == 2 and evaluated.generator is scored[-1]  # one estimate per evaluation, none after
    model, data = make("ccgan", n=24)
    plain = loop.train(model, data, config, name="t")  # no evaluation: estimated once, at the end
    assert len(calls) == 3
    assert snapshot(evaluated.generator).keys() == snapshot(plain.generator).keys()
    assert all(torch.equal(v, snapshot(plain.generator)[k]) for k, v in snapshot(evaluated.generator).items())


def test_recalibrate_bn_is_the_plain_average_over_batches():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, momentum=0.3))
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [(torch.randn(16, 3, generator=torch.Generator().manual_seed(i)),) for i in range(5)]
    loop.recalibrate_bn(net, batches)
    with torch.no_grad():
        outs = [net[0](x) for (x,) in batches]
    bn = net[1]
    torch.testing.assert_close(bn.running_mean, torch.stack([o.mean(0) for o in outs]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([o.var(0) for o in outs]).mean(0))
    assert bn.momentum == 0.3 and not net.training
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())


def test_checkpoint_of_another_configuration_is_ignored(tmp_path, capsys):
    run(tmp_path, "a", epochs=1, identity={"run": 1})
    fresh, _ = run(tmp_path, "b", epochs=2, identity={"run": 2})
    (tmp_path / "a.pt").replace(tmp_path / "b.pt")
    ignored, _ = run(tmp_path, "b", epochs=2, identity={"run": 2})
    assert ignored == fresh
    assert "belongs to another configuration; starting fresh" in capsys.readouterr().err
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    assert state["epoch"] == 2 and state["digest"] == checkpoints.run_digest(replace(CONFIG, epochs=2), {"run": 2})


@pytest.mark.parametrize("family", ["ccgan", "cogan"])
def test_saved_generator_loads_and_samples(tmp_path, family):
    model, _ = make(family)
    store.save_generator(tmp_path / "g", model.generator, family, {"run": "x"})
    loaded, config = store.load_generator(tmp_path / "g")
    assert config["family"] == family and config["run"] == "x" and not loaded.training
    z = sampling.latent_noise(20, loaded.latent, seed=0)
    labels = sampling.balanced_labels(20) if family == "ccgan" else None
    images = sampling.generate(loaded, z, labels, batch_size=7)
    assert images.shape == ((20, 28, 28) if family == "ccgan" else (20, 2, 28, 28))
    torch.testing.assert_close(images, sampling.generate(model.generator, z, labels))
    assert sampling.to_uint8(images).dtype == np.uint8


def test_loading_something_else_is_one_error(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "config.json").write_text('{"family": "xgan", "kwargs": {}}')
    with pytest.raises(PipelineError, match="not a saved generator"):
        store.load_generator(tmp_path / "g")


# ----------------------------------------------------------------------------- params
@pytest.fixture(scope="module")
def good() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("override,message", [
    ({"dcgan.runs": ["F0-D1-B32"]}, r"dcgan\.runs\[0\]: F must be in 1\.\.8 \(got F0"),
    ({"ccgan.runs": ["F1-D1-B64", "F1-D0-B64"]}, r"ccgan\.runs\[1\]: D must be"),
    ({"ccgan.runs": ["F1-D1-B0"]}, r"ccgan\.runs\[0\]: B must be"),
    ({"ccgan.runs": ["F1-D1"]}, r"ccgan\.runs\[0\]: 'F1-D1' is not a run id"),
    ({"ccgan.runs": []}, r"ccgan\.runs must have at least 1"),
    ({"dcgan.runs": ["F1-D1-B32", "F1-D1-B32"]}, r"dcgan\.runs repeats 'F1-D1-B32'"),
    ({"dcgan.lr": 0}, r"dcgan\.lr must be > 0"),
    ({"ccgan.label_smoothing": 0.0}, r"ccgan\.label_smoothing must be > 0"),
    ({"ccgan.label_smoothing": 1.5}, r"ccgan\.label_smoothing must be <= 1"),
    ({"cogan.pairs": ["rotate", "blur"]}, r"cogan\.pairs\[1\] must be one of rotate, negative, edge"),
    ({"cogan.shared_layers": 5}, r"cogan\.shared_layers must be <= 4"),
    ({"cogan.shared_layers": -1}, r"cogan\.shared_layers must be >= 0"),
    ({"gan.betas": [0.5, 1.0]}, r"gan\.betas\[1\] must be <= 0\.9999"),
    ({"ccgan.epochs": 5, "ccgan.eval_every": 2}, r"ccgan\.eval_every \(2\) must divide ccgan\.epochs \(5\)"),
    ({"dcgan.train_limit": 16}, r"dcgan\.runs\[0\]: the batch of F1-D1-B\d+ exceeds the 16 images"),
    ({"cogan.epochs": 2, "cogan.eval_every": 2, "cogan.epochs_by_pair": {"edge": 3}},
     r"cogan\.eval_every \(2\) must divide cogan\.epochs_by_pair\.edge \(3\)"),
    ({"cogan.train_limit": 8}, r"cogan\.batch_size \(32\) exceeds the 8 image pairs"),
    ({"cogan.train_limit_by_pair": {"edge": 8}},
     r"cogan\.batch_size \(32\) exceeds the 8 image pairs per epoch \(cogan\.train_limit_by_pair\.edge"),
    ({"gan.eval_samples": 50}, r"gan\.eval_samples \(50\) must exceed lenet\.hidden\[1\]"),
])
def test_bad_gan_params_fail_with_one_line_naming_the_key(good, override, message):
    with pytest.raises(params.ParamsError, match=message) as exc:
        params.validate(apply_overrides(good, override))
    assert "\n" not in str(exc.value)


def test_run_ids_parse_into_the_report_notation():
    assert params.parse_run_id("F2-D3-B128-vbn-ls") == params.RunSpec(2, 3, 128, vbn=True, smoothing=True)
    assert params.parse_run_id("F1-D1-B64") == params.RunSpec(1, 1, 64, vbn=False, smoothing=False)


# ----------------------------------------------------------------------------- the stage scripts
@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A tiny prepared dir (train.npz, domains.npz) and an untrained LeNet scorer, all random."""
    root = tmp_path_factory.mktemp("prepared")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), np.arange(64, dtype=np.uint8) % 10
    save_npz(root / "data" / "train.npz", x=x, y=y)
    save_npz(root / "data" / "domains.npz", half_a=np.arange(32), half_b=np.arange(32, 64),
             rotate=np.rot90(x[32:], 1, (1, 2)), negative=255 - x[32:], edge=x[32:])
    torch.manual_seed(0)
    lenet = LeNet((4, 8), (16, 12))
    classifier.save_scorer(root / "lenet", lenet, (4, 8), (16, 12), rng.normal(size=(50, 12)))
    small = {"gan.eval_samples": 20, "lenet.hidden": [16, 12], "dcgan.train_limit": 0, "ccgan.train_limit": 0,
             "ccgan.epochs": 2, "ccgan.eval_every": 1, "cogan.width": 0.0625, "cogan.train_limit": 0,
             "cogan.epochs": 1, "cogan.eval_every": 1, "cogan.eval_samples": 10, "gan.bf16": False, "cogan.bf16": False,
             "scoring.samples": 40}
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(apply_overrides(base, small)))
    return root


def stage(script: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "stages" / script), "--params", str(root / "params.yaml"), "--data",
           str(root / "data"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def outputs(root: Path, family: str, run: str) -> list[str]:
    return ["--out", str(root / "models" / family / run), "--live", str(root / "metrics" / family / run),
            "--grid", str(root / "plots" / family / f"{run}.png"),
            "--checkpoint", str(root / "checkpoints" / family / f"{run}.pt")]


def test_train_gan_stage_writes_every_output(prepared):
    r = stage("train_gan.py", prepared, "--family", "ccgan", "--run", "F1-D1-B32-ls", "--scorer",
              str(prepared / "lenet"), *outputs(prepared, "ccgan", "F1-D1-B32-ls"))
    assert r.returncode == 0, r.stderr
    metrics = yaml.safe_load((prepared / "metrics/ccgan/F1-D1-B32-ls/metrics.json").read_text())
    assert {"d_loss", "g_loss", "d_acc_real", "d_acc_fake", "is", "fid", "lenet_acc"} <= metrics.keys()
    assert metrics["epochs"] == 2 and (prepared / "plots/ccgan/F1-D1-B32-ls.png").stat().st_size > 0
    assert metrics["samples"] == 40  # the final scores use scoring.samples, the curves gan.eval_samples
    assert metrics["lenet_acc_ci95"][0] <= metrics["lenet_acc"] <= metrics["lenet_acc_ci95"][1]
    generator, config = store.load_generator(prepared / "models/ccgan/F1-D1-B32-ls")
    assert generator.n_classes == 10 and config["run"] == "F1-D1-B32-ls"


def test_train_cogan_stage_writes_every_output(prepared):
    r = stage("train_cogan.py", prepared, "--family", "cogan", "--pair", "negative", "--scorer", str(prepared / "lenet"),
              *outputs(prepared, "cogan", "negative"))
    assert r.returncode == 0, r.stderr
    metrics = yaml.safe_load((prepared / "metrics/cogan/negative/metrics.json").read_text())
    assert 0 <= metrics["agreement"] <= 1 and 0 <= metrics["label_agreement"] <= 1
    assert metrics["agreement_normalised"] == pytest.approx(
        (metrics["agreement"] - metrics["agreement_chance"]) / (1 - metrics["agreement_chance"]))
    assert metrics["pairs"] == 10 and len(metrics["label_agreement_ci95"]) == 2
    assert store.load_generator(prepared / "models/cogan/negative")[1]["pair"] == "negative"


def test_unknown_family_is_one_line(prepared):
    r = stage("train_gan.py", prepared, "--family", "xgan", "--run", "F1-D1-B32", *outputs(prepared, "x", "y"))
    assert r.returncode == 2 and "invalid choice: 'xgan'" in r.stderr
