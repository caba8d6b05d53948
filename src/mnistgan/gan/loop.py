"""One adversarial training loop for every GAN of the study (mnistgan.gan.registry): DCGAN, CCGAN, CoGAN.

:func:`train` owns optimisers, the data order and the noise (one seeded ``torch.Generator``),
epochs, per-epoch statistics, NaN/inf detection and checkpoints (checkpoints.py). Each step
updates D once, then G once, on the same fake batch.

Speed: the training set is one tensor on the device, indexed by a seeded permutation (no
DataLoader, no worker processes, no per-step host copies); per-step statistics stay on the
device and are read back once per epoch; G's update skips D's weight gradients; Adam is
fused; ``bf16`` autocasts the forward passes; ``compile`` runs both networks through
torch.compile. Progress within an epoch (a bar on a terminal, a line every 30 s in a log) only
counts steps; see progress.py.

Two switches, both off by default (the reports' plain loop):

- ``lr_decay``: both learning rates are multiplied by it after every epoch (lr_e = lr x
  decay^(e-1)), a function of the epoch only, so a resumed or continued run follows the same
  schedule.
- ``ema``: an exponential moving average of G's weights, updated after every G step with this
  decay (torch.optim.swa_utils.AveragedModel), is what gets scored, sampled and saved. Batch
  normalisation needs care: the averaged weights never ran with G's running statistics, and
  sampling in eval mode with them is worse than G itself. So before every use the averaged
  generator's batch-norm statistics are re-estimated from scratch on its own outputs (fixed
  noise, :data:`BN_SAMPLES` of it in train mode, cumulative averages: :func:`recalibrate_bn`).
  Written here because torch's ``update_bn`` feeds one tensor per batch, and a conditional
  generator takes two (noise and labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mnistgan import progress
from mnistgan.errors import PipelineError
from mnistgan.gan import checkpoints
from mnistgan.gan.family import Batch, Family

STATS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")
BN_SAMPLES, BN_BATCH = 4096, 256  # noise behind the averaged generator's batch-norm statistics
BN_SEED = 4  # offset of that noise from the run's seed (sampling.py has 1-3)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    seed: int
    train_limit: int = 0  # images per epoch (a fresh random subset each epoch); 0 = all
    eval_every: int = 1   # call ``evaluate`` after every k-th epoch
    bf16: bool = False    # bfloat16 autocast of the forward passes (weights, grads, Adam: float32)
    compile: bool = False  # torch.compile both networks (in place: state_dicts keep their keys)
    lr_decay: float = 1.0  # both learning rates x this after every epoch
    ema: float = 0.0      # decay of the moving average of G's weights per step; 0 = off (sample G itself)


@dataclass
class Trained:
    """What :func:`train` returns: the per-epoch history, and the generator to sample, score and
    save (G itself, or with ``ema`` its moving average, batch-norm statistics re-estimated)."""
    history: list[dict[str, float]] = field(default_factory=list)
    generator: nn.Module | None = None


def train(
    family: Family,
    data: Batch,
    config: TrainConfig,
    *,
    name: str,
    identity: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> Trained:
    """Train ``family`` on ``data`` (tensors of equal length, on the training device).

    Returns :class:`Trained`: the history, one record per epoch with ``epoch``, :data:`STATS`
    (means over the epoch's steps) and, every ``eval_every`` epochs, whatever
    ``evaluate(generator)`` returns for the generator to sample; and that generator.
    ``on_epoch(record)`` is called once per epoch in order, replaying the epochs restored
    from ``checkpoint`` first, so a logger fed by it ends the same whether or not the run
    was resumed. ``identity`` (JSON-able) names everything else the run depends on: data,
    scorer, code; ``name`` is used in messages. Raises PipelineError (naming ``name`` and the
    epoch) as soon as an epoch's losses are not finite.
    """
    device = data[0].device
    n = len(data[0])
    per_epoch = min(n, config.train_limit or n)
    steps = per_epoch // config.batch_size
    if steps == 0:
        raise PipelineError(f"{name}: {per_epoch} training images do not fill one batch of {config.batch_size}")

    # fused: one kernel updates all of a net's tensors (CPU, CUDA and MPS alike)
    g_opt, d_opt = (torch.optim.Adam(net.parameters(), lr=config.lr, betas=config.betas, fused=True)
                    for net in (family.generator, family.discriminator))
    rng = torch.Generator(device).manual_seed(config.seed)
    averaged = (AveragedModel(family.generator, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=False)
                if config.ema else None)
    digest = checkpoints.run_digest(config, identity)
    history = checkpoints.resume(checkpoint, digest, config.epochs, family, g_opt, d_opt, rng, device, name, averaged)
    for record in history:
        if on_epoch:
            on_epoch(record)

    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16)
    if config.compile:  # compiles on the first step (a one-off cost: docs/performance.md), again for eval-mode sampling
        family.generator.compile()
        family.discriminator.compile()
    family.generator.train()
    family.discriminator.train()
    sampler = _sampler(family, averaged, config.seed)
    scored = None  # the generator the last epoch's evaluation sampled, if that was the last step
    for epoch in range(len(history) + 1, config.epochs + 1):
        for opt in (g_opt, d_opt):
            for group in opt.param_groups:
                group["lr"] = config.lr * config.lr_decay ** (epoch - 1)
        totals = torch.zeros(len(STATS), device=device)
        order = torch.randperm(n, generator=rng, device=device)[: steps * config.batch_size]
        with progress.steps(steps, f"{name}: epoch {epoch}/{config.epochs}") as bar:
            for idx in order.view(steps, config.batch_size):
                totals += _step(family, tuple(t[idx] for t in data), rng, g_opt, d_opt, amp)
                if averaged is not None:
                    averaged.update_parameters(family.generator)
                bar.update()  # a count: the statistics stay on the device until the epoch ends
        record = {"epoch": epoch, **dict(zip(STATS, (totals / steps).tolist()))}
        bad = [k for k in STATS if not math.isfinite(record[k])]
        if bad:
            raise PipelineError(f"{name}: {bad[0]} is {record[bad[0]]} at epoch {epoch}; training diverged "
                                f"(try a lower learning rate)")
        scored = None
        if evaluate and epoch % config.eval_every == 0:
            scored = sampler()
            record.update(evaluate(scored))
        history.append(record)
        if checkpoint:
            checkpoints.save(checkpoint, digest, family, g_opt, d_opt, rng, history, averaged)
        if on_epoch:
            on_epoch(record)
    # Unchanged since the last evaluation (when it was the last epoch's): no second BN re-estimate
    return Trained(history, scored if scored is not None else sampler())


def _sampler(family: Family, averaged: AveragedModel | None, seed: int) -> Callable[[], nn.Module]:
    """A function giving the generator to sample now: G, or the average with fresh BN statistics."""
    if averaged is None:
        return lambda: family.generator

    def ready() -> nn.Module:
        rng = torch.Generator(next(averaged.module.parameters()).device).manual_seed(seed + BN_SEED)
        batches = [family.noise(BN_BATCH, rng) for _ in range(BN_SAMPLES // BN_BATCH)]
        recalibrate_bn(averaged.module, batches)
        return averaged.module
    return ready


@torch.no_grad()
def recalibrate_bn(generator: nn.Module, batches: list[tuple[torch.Tensor, ...]]) -> None:
    """Re-estimate every batch-norm layer's running mean and variance from scratch: the
    cumulative average over ``batches`` (inputs of ``generator``) in train mode. Leaves the
    generator in eval mode and its weights untouched."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    generator.train()
    for inputs in batches:
        generator(*inputs)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


def _step(family: Family, real: Batch, rng: torch.Generator, g_opt, d_opt, amp) -> torch.Tensor:
    """One D update, then one G update on the same fakes; the statistics as one device tensor."""
    noise = family.noise(len(real[0]), rng)
    with amp:
        fake = family.fake(noise)
        d_loss, acc_real, acc_fake = family.d_loss(real, fake.detach(), noise)
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    family.discriminator.requires_grad_(False)  # G's update needs D's input gradients, not its weight gradients
    with amp:
        g_loss = family.g_loss(fake, noise)
    g_loss.backward()
    family.discriminator.requires_grad_(True)
    g_opt.step()
    return torch.stack([d_loss.detach(), g_loss.detach(), acc_real, acc_fake])


def dvclive_logger(live, name: str, epochs: int) -> Callable[[dict[str, float]], None]:
    """An ``on_epoch`` callback: every value of the record as a dvclive metric, one step per
    epoch (step = epoch - 1), and one progress line on stdout."""
    def log(record: dict[str, float]) -> None:
        values = {k: v for k, v in record.items() if k != "epoch"}
        for key, value in values.items():
            live.log_metric(key, value)
        live.next_step()
        print(f"{name}: epoch {record['epoch']}/{epochs} " + " ".join(f"{k} {v:.4g}" for k, v in values.items()),
              flush=True)
    return log


