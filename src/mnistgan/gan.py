"""One adversarial training loop for every GAN of the study: DCGAN, CCGAN and CoGAN.

A *family* wraps its two networks and says what a loss is (:class:`Family`); the loop in
:func:`train` owns everything else: optimisers, the data order and the noise (one seeded
``torch.Generator``), epochs, per-epoch statistics, NaN/inf detection and checkpoints.

The objective is the minimax game of both reports with the usual non-saturating generator
loss: D minimises ``BCE(D(x), t) + BCE(D(G(z)), 0)``, G minimises ``BCE(D(G(z)), 1)``, i.e.
-log D(G(z)) instead of log(1 - D(G(z))), which has the same fixed point and does not
vanish while D wins. ``t`` is 1, or the one-sided smoothed real target (Salimans et al.
2016). Each step updates D once, then G once, on the same fake batch.

Speed: the training set is one tensor on the device, indexed by a seeded permutation (no
DataLoader, no worker processes, no per-step host copies); per-step statistics stay on the
device and are read back once per epoch; G's update skips D's weight gradients; Adam is
fused; ``bf16`` autocasts the forward passes; ``compile`` runs both networks through
torch.compile. Progress within an epoch (a bar on a terminal, a line every 30 s in a log) only
counts steps; see progress.py.

Checkpoints and resumption: after every completed epoch the loop atomically writes the
weights, both optimisers, the state of the RNG, the epoch and the history. A
rerun with the same *identity* (everything that determines the run but the number of
epochs) resumes from it and ends bit-identical to an uninterrupted run on the CPU; a
checkpoint of another identity is ignored. Leaving ``epochs`` out of the identity means
raising it continues a finished run instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import agreement, progress, scoring
from .errors import PipelineError, first_line
from .files import atomic_path, save_json
from .models import cogan, dcgan

STATS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")
N_CLASSES = 10
Batch = tuple[torch.Tensor, ...]
# Offsets added to a run's seed, one per noise stream, so the sample grid, the scored samples
# and the VBN reference never share noise with training (which uses the seed itself).
GRID_SEED, EVAL_SEED, REFERENCE_SEED = 1, 2, 3


# ----------------------------------------------------------------------------- families
class Family(Protocol):
    """What the loop needs from a GAN family.

    ``noise`` draws the generator's inputs (latent vectors, plus labels for a conditional
    family) from the loop's RNG; ``fake`` runs the generator on them; ``d_loss`` returns the
    discriminator loss and its accuracy on the real and the fake batch (0-dim tensors);
    ``g_loss`` the generator loss. ``real`` is one batch of the training tensors.
    """

    generator: nn.Module
    discriminator: nn.Module

    def noise(self, n: int, rng: torch.Generator) -> Batch: ...
    def fake(self, noise: Batch) -> torch.Tensor: ...
    def d_loss(self, real: Batch, fake: torch.Tensor, noise: Batch) -> tuple[torch.Tensor, ...]: ...
    def g_loss(self, fake: torch.Tensor, noise: Batch) -> torch.Tensor: ...


class _Binary:
    """The real/fake cross-entropies shared by every family (D outputs logits)."""

    def __init__(self, real_target: float):
        self.real_target = real_target

    def _d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor):
        real_logits, fake_logits = real_logits.float(), fake_logits.float()  # bf16 autocast: loss in float32
        loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_target))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        return loss, (real_logits > 0).float().mean(), (fake_logits < 0).float().mean()

    @staticmethod
    def _g_term(fake_logits: torch.Tensor) -> torch.Tensor:
        fake_logits = fake_logits.float()
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class ImageGAN(_Binary):
    """DCGAN (``n_classes == 0``; data ``(images,)``) or CCGAN (data ``(images, labels)``).

    CCGAN fakes are conditioned on labels drawn uniformly, as in report 000's objective.
    """

    def __init__(self, generator: dcgan.Generator, discriminator: dcgan.Discriminator, real_target: float = 1.0):
        super().__init__(real_target)
        self.generator, self.discriminator = generator, discriminator

    def noise(self, n: int, rng: torch.Generator) -> Batch:
        z = torch.randn(n, self.generator.latent, generator=rng, device=rng.device)
        if not self.generator.n_classes:
            return (z,)
        return z, torch.randint(self.generator.n_classes, (n,), generator=rng, device=rng.device)

    def fake(self, noise: Batch) -> torch.Tensor:
        return self.generator(*noise)

    def d_loss(self, real: Batch, fake: torch.Tensor, noise: Batch):
        return self._d_terms(self.discriminator(*real), self.discriminator(fake, *noise[1:]))

    def g_loss(self, fake: torch.Tensor, noise: Batch) -> torch.Tensor:
        return self._g_term(self.discriminator(fake, *noise[1:]))


def image_gan(data: Batch, *, conditional: bool, width: int, depth: int, latent: int, vbn_batch: int,
              real_target: float, seed: int) -> ImageGAN:
    """A DCGAN (or, ``conditional``, a CCGAN) on the device of ``data``.

    ``vbn_batch > 0`` switches on virtual batch normalisation with reference batches of that
    size, drawn here once: real images (and labels) of ``data`` for D, fixed noise (and
    balanced labels) for G.
    """
    n_classes = N_CLASSES if conditional else 0
    device = data[0].device
    generator = dcgan.Generator(latent, width, n_classes, vbn_batch).to(device)
    discriminator = dcgan.Discriminator(width, depth, n_classes, vbn_batch).to(device)
    if vbn_batch:
        pick = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(seed + REFERENCE_SEED))
        discriminator.set_reference(*(t[pick[:vbn_batch].to(device)] for t in data))
        generator.set_reference(latent_noise(vbn_batch, latent, seed + REFERENCE_SEED), balanced_labels(vbn_batch))
    return ImageGAN(generator, discriminator, real_target)


class CoupledGAN(_Binary):
    """CoGAN: data ``(domain-1 images, domain-2 images)``; fakes stacked as (N, 2, 1, 28, 28).

    The loss is the sum of the two domains' GAN losses (report 004, eq. 4); the shared
    layers get gradients from both.
    """

    def __init__(self, generator: cogan.CoupledGenerator, discriminator: cogan.CoupledDiscriminator):
        super().__init__(real_target=1.0)
        self.generator, self.discriminator = generator, discriminator

    def noise(self, n: int, rng: torch.Generator) -> Batch:
        return (torch.randn(n, self.generator.latent, generator=rng, device=rng.device),)

    def fake(self, noise: Batch) -> torch.Tensor:
        return torch.stack(self.generator(*noise), dim=1)

    def d_loss(self, real: Batch, fake: torch.Tensor, noise: Batch):
        terms = [self._d_terms(r, f) for r, f in zip(self.discriminator(*real), self.discriminator(*fake.unbind(1)))]
        loss, acc_real, acc_fake = (torch.stack(t) for t in zip(*terms))
        return loss.sum(), acc_real.mean(), acc_fake.mean()

    def g_loss(self, fake: torch.Tensor, noise: Batch) -> torch.Tensor:
        return sum(self._g_term(logits) for logits in self.discriminator(*fake.unbind(1)))


# ----------------------------------------------------------------------------- the loop
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


def train(
    family: Family,
    data: Batch,
    config: TrainConfig,
    *,
    name: str,
    identity: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``family`` on ``data`` (tensors of equal length, on the training device).

    Returns the history: one record per epoch with ``epoch``, :data:`STATS` (means over the
    epoch's steps) and, every ``eval_every`` epochs, whatever ``evaluate()`` returns.
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
    digest = run_digest(config, identity)
    history = _resume(checkpoint, digest, config.epochs, family, g_opt, d_opt, rng, device, name)
    for record in history:
        if on_epoch:
            on_epoch(record)

    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16)
    if config.compile:  # compiles on the first step (~30 s on a CPU), and again for eval-mode sampling
        family.generator.compile()
        family.discriminator.compile()
    family.generator.train()
    family.discriminator.train()
    for epoch in range(len(history) + 1, config.epochs + 1):
        totals = torch.zeros(len(STATS), device=device)
        order = torch.randperm(n, generator=rng, device=device)[: steps * config.batch_size]
        with progress.steps(steps, f"{name}: epoch {epoch}/{config.epochs}") as bar:
            for idx in order.view(steps, config.batch_size):
                totals += _step(family, tuple(t[idx] for t in data), rng, g_opt, d_opt, amp)
                bar.update()  # a count: the statistics stay on the device until the epoch ends
        record = {"epoch": epoch, **dict(zip(STATS, (totals / steps).tolist()))}
        bad = [k for k in STATS if not math.isfinite(record[k])]
        if bad:
            raise PipelineError(f"{name}: {bad[0]} is {record[bad[0]]} at epoch {epoch}; training diverged "
                                f"(try a lower learning rate)")
        if evaluate and epoch % config.eval_every == 0:
            record.update(evaluate())
        history.append(record)
        if checkpoint:
            _save_checkpoint(checkpoint, digest, family, g_opt, d_opt, rng, history)
        if on_epoch:
            on_epoch(record)
    return history


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


# ----------------------------------------------------------------------------- checkpoints
def run_digest(config: TrainConfig, identity: dict[str, Any] | None) -> str:
    """sha256 of the run's identity and every training setting but the number of epochs."""
    settings = {k: v for k, v in asdict(config).items() if k != "epochs"}
    blob = json.dumps({"settings": settings, "identity": identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


CHECKPOINT_KEYS = {"digest", "epoch", "generator", "discriminator", "g_opt", "d_opt", "rng", "history"}


def _save_checkpoint(path, digest, family, g_opt, d_opt, rng, history) -> None:
    state = {
        "digest": digest,
        "epoch": len(history),
        "generator": family.generator.state_dict(),
        "discriminator": family.discriminator.state_dict(),
        "g_opt": g_opt.state_dict(),
        "d_opt": d_opt.state_dict(),
        "rng": rng.get_state(),
        "history": history,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path, digest, epochs, family, g_opt, d_opt, rng, device, name) -> list[dict[str, float]]:
    """Restore everything from ``path`` if it holds a usable checkpoint; return its history."""
    if not path or not Path(path).is_file():
        return []
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        print(f"{name}: ignoring unreadable checkpoint {path} ({exc}); starting fresh", file=sys.stderr)
        return []
    if not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state):
        print(f"{name}: ignoring checkpoint {path} that is not one of this loop's; starting fresh", file=sys.stderr)
        return []
    if state.get("digest") != digest:
        print(f"{name}: checkpoint {path} belongs to another configuration; starting fresh", file=sys.stderr)
        return []
    if state["epoch"] > epochs:
        print(f"{name}: checkpoint {path} is past epoch {epochs}; starting fresh", file=sys.stderr)
        return []
    family.generator.load_state_dict(state["generator"])
    family.discriminator.load_state_dict(state["discriminator"])
    g_opt.load_state_dict(state["g_opt"])
    d_opt.load_state_dict(state["d_opt"])
    rng.set_state(state["rng"].cpu())
    print(f"{name}: resuming after epoch {state['epoch']} from {path}", file=sys.stderr)
    return list(state["history"])


def file_digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the names and bytes of files (a directory: every file below it, sorted).

    Names are taken relative to the path given (a file: its name), so the digest does not
    change when the repository is moved or copied, e.g. into a DVC experiment's temp dir.
    """
    h = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update((f.relative_to(root).as_posix() if root.is_dir() else f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def code_digest() -> str:
    """Digest of the source of every mnistgan module loaded in this process.

    Put into a run's identity, it makes a checkpoint resumable only by the code that wrote
    it: a rerun after a fix in the model or the loop starts fresh instead of silently
    continuing stale weights.
    """
    package = __name__.partition(".")[0]
    files = sorted({m.__file__ for name, m in list(sys.modules.items())
                    if name.partition(".")[0] == package and getattr(m, "__file__", None)})
    return file_digest(files)


# ----------------------------------------------------------------------------- sampling
def latent_noise(n: int, latent: int, seed: int) -> torch.Tensor:
    """Fixed (N, latent) standard-normal noise from its own seed (CPU), for grids and scores."""
    return torch.randn(n, latent, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def generate(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
             batch_size: int = 1000) -> torch.Tensor:
    """Images from ``z`` (and class ``labels``) in eval mode: CPU float in [-1, 1].

    (N, 28, 28) for DCGAN/CCGAN; (N, 2, 28, 28) for a CoGAN (domain 1, domain 2). Eval mode
    makes each image a function of its own noise only, whatever the batch.
    """
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    parts = []
    for i in range(0, len(z), batch_size):
        args = [z[i : i + batch_size].to(device)]
        if labels is not None:
            args.append(labels[i : i + batch_size].to(device))
        out = generator(*args)
        parts.append((torch.stack(out, 1) if isinstance(out, tuple) else out).squeeze(-3).cpu())
    generator.train(was_training)
    return torch.cat(parts)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] floats -> uint8 [0, 255], the format of the prepared MNIST arrays."""
    return images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def balanced_labels(n: int) -> torch.Tensor:
    """0, 1, ..., 9, 0, 1, ...: every class equally often (exactly, when 10 divides n)."""
    return torch.arange(n) % N_CLASSES


def lenet_scores(generator: nn.Module, scorer: nn.Module, ref_stats, n: int, seed: int,
                 batch_size: int = 1000) -> dict[str, float]:
    """IS and LeNet-FID of ``n`` samples (and, if conditional, LeNet accuracy on the intended class)."""
    labels = balanced_labels(n) if generator.n_classes else None
    images = generate(generator, latent_noise(n, generator.latent, seed), labels, batch_size)
    device = next(scorer.parameters()).device
    return scoring.score_samples(scorer, images, None if labels is None else labels.numpy(),
                                 ref_stats, batch_size, device)


def agreement_scores(generator: cogan.CoupledGenerator, domain: str, n: int, seed: int,
                     batch_size: int = 1000) -> dict[str, float]:
    """The CoGAN pixel agreement ratio over ``n`` pairs from fixed noise (see agreement.py)."""
    pairs = to_uint8(generate(generator, latent_noise(n, generator.latent, seed), batch_size=batch_size))
    return {"agreement": agreement.pixel_agreement(pairs[:, 0], pairs[:, 1], domain)}


# ----------------------------------------------------------------------------- saved generators
GENERATORS: dict[str, type[nn.Module]] = {
    "dcgan": dcgan.Generator,
    "ccgan": dcgan.Generator,
    "cogan": cogan.CoupledGenerator,
}


def save_generator(directory: str | Path, generator: nn.Module, family: str, info: dict[str, Any]) -> None:
    """Write ``generator.pt`` (state_dict) and ``config.json`` (constructor kwargs + ``info``) atomically."""
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        torch.save(generator.state_dict(), tmp / "generator.pt")
        save_json(tmp / "config.json", {"family": family, "kwargs": generator.init_kwargs, **info})


def load_generator(directory: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator saved in ``directory`` by a train stage, in eval mode, and its config.

    Sample with ``generate(g, latent_noise(n, g.latent, seed), labels)``; for the CCGAN
    ``labels`` is a LongTensor of classes (``g.n_classes`` > 0).
    """
    directory = Path(directory)
    try:
        config = json.loads((directory / "config.json").read_text())
        generator = GENERATORS[config["family"]](**config["kwargs"])
        state = torch.load(directory / "generator.pt", map_location="cpu", weights_only=True)
        generator.load_state_dict(state)
    except (OSError, KeyError, ValueError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise PipelineError(f"{directory}: not a saved generator ({first_line(exc)})") from None
    return generator.to(device).eval(), config
