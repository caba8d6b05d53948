"""The fast paths give the same results as the plain paths, on tiny configs, within tolerance.

(a) The GAN loop with bfloat16 autocast (``TrainConfig(bf16=True)``), and compiled
    (``compile=True``), against the float32 eager loop: same seed, same data, same init;
    per-epoch statistics and the trained generator.
(b) The project's LeNet loop (``classifier.train_classifier``: on-device tensor, seeded
    permutation, summed loss / batch size, no DataLoader) against a plain PyTorch loop
    written here with the same batch order and init: the same weights.
(c) The benchmark's plain reference loops run, and ``main`` returns a positive ratio.

Everything runs on the CPU in float32 (bf16 autocast where asked), with tiny nets and data.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mnistgan import classifier
from mnistgan.gan import image, loop, sampling
from mnistgan.models.lenet import LeNet

from conftest import (
    ROOT,  # noqa: E402
    load_script,
)

BENCHMARK = ROOT / "benchmarks" / "train_step.py"
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- (a) bf16 vs float32
LATENT = 16
# 32 images, batch 8: 4 steps per epoch, 2 epochs. lr 5e-4 moves the generator's output by
# ~0.45 (mean |change| over pixels in [-1, 1]) in these 8 steps, far more than bf16 rounding does.
GAN_CONFIG = loop.TrainConfig(epochs=2, batch_size=8, lr=5e-4, betas=(0.5, 0.999), seed=0)
N_IMAGES = 32

# Tolerances. bfloat16 keeps 8 significand bits (relative rounding 2^-9 ~ 0.2%, about three
# significant digits); autocast runs the linear/conv layers in bf16 with float32 accumulation,
# and the losses are taken in float32 (BinaryLoss casts the logits). Step 1 therefore differs
# only by forward-pass rounding: ~0.5% of a loss of ~2-4, i.e. ~0.01. After that the two
# runs' weights drift apart (Adam's first steps are ~lr * sign(grad), so a gradient entry
# whose sign bf16 flips moves a weight by 2 * lr), and a GAN amplifies differences; over
# these 8 steps the observed epoch-mean differences are <= 0.02 on the losses and
# <= 1/32 on the accuracies (the means of 32 hard decisions: one flip = 0.03125).
LOSS_TOL = 0.05           # absolute, per epoch mean; ~1-2% of the losses' values
ACC_TOL = 3 / N_IMAGES    # at most three real/fake decisions of an epoch may flip
OUTPUT_TOL = 0.05         # mean |bf16 - fp32| of generated pixels: 2.5% of the [-1, 1] range
DRIFT_RATIO = 0.15        # ... and < 15% of how far training moved the output (observed ~5%)


def structured_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 28x28 images in [-1, 1]: a soft blob whose position depends on the label, plus noise.

    Learnable structure (unlike uniform noise), so D and G get consistent gradients.
    """
    labels = torch.arange(n) % 10
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cx = (8 + labels.float()).view(-1, 1, 1)
    cy = (10 + (labels % 3).float() * 3).view(-1, 1, 1)
    blob = torch.tanh(3 - ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt() / 2)
    noise = 0.05 * torch.randn(n, 28, 28, generator=torch.Generator().manual_seed(1))
    return (blob + noise).clamp(-1, 1).unsqueeze(1), labels


def train_tiny_gan(family: str, bf16: bool, compile: bool = False):
    """A seeded tiny DCGAN/CCGAN trained for GAN_CONFIG; its history, fixed-noise outputs before
    and after training, and the trained model."""
    x, labels = structured_images(N_IMAGES)
    data = (x, labels) if family == "ccgan" else (x,)
    torch.manual_seed(0)  # same init for both paths
    model = image.image_gan(data, conditional=family == "ccgan", width=1, depth=1, latent=LATENT, vbn_batch=0,
                               real_target=1.0, seed=0)
    z = sampling.latent_noise(20, LATENT, seed=5)
    cls = sampling.balanced_labels(20) if family == "ccgan" else None
    before = sampling.generate(model.generator, z, cls)
    history = loop.train(model, data, replace(GAN_CONFIG, bf16=bf16, compile=compile),
                             name=f"{family} bf16={bf16}").history
    return history, before, sampling.generate(model.generator, z, cls), model


@pytest.fixture(scope="module", params=["dcgan", "ccgan"])
def bf16_vs_fp32(request):
    family = request.param
    return family, train_tiny_gan(family, bf16=False), train_tiny_gan(family, bf16=True)


def test_bf16_epoch_statistics_match_float32(bf16_vs_fp32):
    family, (h32, *_), (h16, *_) = bf16_vs_fp32
    assert [r["epoch"] for r in h16] == [r["epoch"] for r in h32] == [1, 2]
    for r32, r16 in zip(h32, h16):
        for key in ("d_loss", "g_loss"):
            assert math.isfinite(r16[key])
            assert abs(r16[key] - r32[key]) < LOSS_TOL, (family, r32["epoch"], key, r32[key], r16[key])
        for key in ("d_acc_real", "d_acc_fake"):
            assert abs(r16[key] - r32[key]) <= ACC_TOL + 1e-9, (family, r32["epoch"], key, r32[key], r16[key])


def test_bf16_trained_generator_stays_close_to_float32(bf16_vs_fp32):
    family, (_, before, out32, _), (_, before16, out16, _) = bf16_vs_fp32
    assert torch.equal(before, before16)  # same init: any difference below comes from training
    moved = (out32 - before).abs().mean().item()
    drift = (out16 - out32).abs().mean().item()
    assert moved > 0.2, f"{family}: training barely moved the generator ({moved:.3f}); the check below is vacuous"
    assert drift < OUTPUT_TOL, f"{family}: bf16 output differs by {drift:.4f} on average"
    assert drift < DRIFT_RATIO * moved, f"{family}: bf16 drift {drift:.4f} vs training's change {moved:.4f}"
    assert out16.min() >= -1 and out16.max() <= 1 and torch.isfinite(out16).all()


def test_bf16_path_really_runs_in_bf16_and_keeps_float32_weights(bf16_vs_fp32):
    """The bf16 flag is not a no-op (else the comparison above proves nothing), and only the
    forward passes are low precision: weights stay float32."""
    family, (h32, _, out32, _), (h16, _, out16, model16) = bf16_vs_fp32
    assert not torch.equal(out16, out32), f"{family}: bf16=True trained bit-identically to float32"
    assert any(h16[0][k] != h32[0][k] for k in ("d_loss", "g_loss"))
    for net in (model16.generator, model16.discriminator):
        assert {p.dtype for p in net.parameters()} == {torch.float32}
        assert all(b.dtype in (torch.float32, torch.long) for b in net.buffers())


def test_bf16_is_deterministic_on_the_cpu():
    """Same seed, same bf16 run: bit-identical (one epoch of the CCGAN)."""
    runs = []
    for _ in range(2):
        x, labels = structured_images(16)
        torch.manual_seed(0)
        model = image.image_gan((x, labels), conditional=True, width=1, depth=1, latent=LATENT, vbn_batch=0,
                                   real_target=1.0, seed=0)
        runs.append(loop.train(model, (x, labels), replace(GAN_CONFIG, epochs=1, bf16=True), name="t").history)
    assert runs[0] == runs[1]


def test_compiled_loop_matches_the_eager_loop():
    """``compile=True`` (torch.compile of G and D, float32) trains like the eager loop: fused
    kernels only reorder float32 rounding, so the statistics and the generator agree to far
    tighter tolerances than bf16's, and the state_dict keys (checkpoints, saved generators)
    are unchanged."""
    h_eager, before, out_eager, eager = train_tiny_gan("ccgan", bf16=False)
    h_comp, before_c, out_comp, compiled = train_tiny_gan("ccgan", bf16=False, compile=True)
    assert compiled.generator._compiled_call_impl is not None  # the switch is not a no-op
    assert torch.equal(before, before_c)
    for r_e, r_c in zip(h_eager, h_comp):
        for key in ("d_loss", "g_loss"):  # observed differences <= 0.003
            assert abs(r_c[key] - r_e[key]) < 0.01, (r_e["epoch"], key, r_e[key], r_c[key])
        for key in ("d_acc_real", "d_acc_fake"):
            assert abs(r_c[key] - r_e[key]) <= 1 / N_IMAGES + 1e-9, (r_e["epoch"], key, r_e[key], r_c[key])
    moved = (out_eager - before).abs().mean().item()  # observed ~0.43
    drift = (out_comp - out_eager).abs().mean().item()  # observed ~0.0014
    assert moved > 0.2 and drift < 0.02 * moved, (moved, drift)
    for a, b in ((eager.generator, compiled.generator), (eager.discriminator, compiled.discriminator)):
        assert list(a.state_dict()) == list(b.state_dict())


# ----------------------------------------------------------------------------- (b) LeNet vs a plain loop
LENET = dict(channels=(4, 8), hidden=(16, 12))


def plain_lenet_loop(x_u8, y, *, epochs, batch_size, lr, lr_decay, seed, channels, hidden):
    """Textbook PyTorch: mean cross-entropy, Adam, lr *= decay after each epoch.

    Batch order and init reproduce train_classifier's seeding: torch.manual_seed(seed) right
    before building the model (its init draws from the global RNG), and a separate CPU
    generator seeded with ``seed`` giving one torch.randperm per epoch; the last, smaller
    batch is kept.
    """
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    model = LeNet(channels, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.from_numpy(x_u8).float().div(127.5).sub(1).unsqueeze(1)
    y = torch.from_numpy(y).long()
    losses = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=order)
        total = 0.0
        for i in range(0, len(y), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
        for group in opt.param_groups:
            group["lr"] *= lr_decay
    return model, losses


def test_lenet_loop_matches_a_plain_loop_with_the_same_batch_order():
    rng = np.random.default_rng(0)
    n = 50  # batch 16: three full batches and a last one of 2 (the loss must be a per-batch mean)
    x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.int64)
    x_test, y_test = x[:20], y[:20]
    settings = dict(epochs=2, batch_size=16, lr=3e-3, lr_decay=0.5, seed=7, **LENET)

    ours = classifier.train_classifier(x, y, x_test, y_test, **settings)
    plain, plain_losses = plain_lenet_loop(x, y, **settings)

    a, b = ours.model.state_dict(), plain.state_dict()
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, f"weights differ by up to {worst:.3g}"
    # and the weights did move (a loop that never stepped would "match" a plain one that never did)
    torch.manual_seed(settings["seed"])
    init = LeNet(LENET["channels"], LENET["hidden"]).state_dict()
    assert max((a[k] - init[k]).abs().max().item() for k in a) > 1e-3
    for stats, loss in zip(ours.history, plain_losses, strict=True):
        assert stats.train_loss == pytest.approx(loss, rel=1e-5)
    test_loss, test_acc = classifier.evaluate(plain, x_test, y_test)
    assert ours.history[-1].test_acc == test_acc
    assert ours.history[-1].test_loss == pytest.approx(test_loss, rel=1e-5)


def test_lenet_seed_changes_the_result():
    """Guard for the test above: the batch order and init really depend on the seed."""
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10
    kw = dict(epochs=1, batch_size=8, lr=1e-3, **LENET)
    a = classifier.train_classifier(x, y, x, y, seed=0, **kw).model.state_dict()
    b = classifier.train_classifier(x, y, x, y, seed=1, **kw).model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- (c) the benchmark script
@pytest.fixture(scope="module")
def bench():
    return load_script(BENCHMARK, "mnistgan_benchmark_train_step")


def test_benchmark_reference_and_project_loops_run_on_random_pixels(bench):
    x, y, source = bench.load_images(Path("/nonexistent/train.npz"), 24, seed=0)
    assert "random pixels" in source
    assert x.shape == (24, 1, 28, 28) and x.dtype == torch.float32 and -1 <= x.min() < x.max() <= 1
    assert y.dtype == torch.long and y.shape == (24,)
    for name, (project, reference) in bench.LOOPS.items():
        for fn in (project, reference):
            fn(x, y, 2, 8, CPU, 0)  # 2 steps of batch 8; raises on any error


def test_benchmark_dcgan_reference_trains_the_same_model_from_the_same_seed(bench):
    g1, d1 = bench.dcgan_models(3, CPU)
    g2, d2 = bench.dcgan_models(3, CPU)
    assert all(torch.equal(p, q) for p, q in zip(g1.parameters(), g2.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(d1.parameters(), d2.parameters()))


@pytest.mark.parametrize("model", ["dcgan", "lenet"])
def test_benchmark_main_returns_a_positive_ratio(bench, monkeypatch, capsys, model):
    monkeypatch.delenv("MNISTGAN_DEVICE", raising=False)
    ratio = bench.main(["--model", model, "--steps", "2", "--rounds", "1", "--batch-size", "8",
                        "--data", "/nonexistent", "--device", "cpu"])
    out = capsys.readouterr().out
    assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0
    assert "random pixels" in out and out.rstrip().splitlines()[-1] == f"ratio={ratio:.3f}"
