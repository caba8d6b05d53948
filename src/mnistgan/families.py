"""The GAN families of the study and their losses: DCGAN, CCGAN (:class:`ImageGAN`) and CoGAN.

A *family* wraps its two networks and says what a loss is (:class:`Family`); the training loop
(training.py) owns everything else. The objective is the minimax game of both reports with the
usual non-saturating generator loss: D minimises ``BCE(D(x), t) + BCE(D(G(z)), 0)``, G minimises
``BCE(D(G(z)), 1)``, i.e. -log D(G(z)) instead of log(1 - D(G(z))), which has the same fixed
point and does not vanish while D wins. ``t`` is 1, or the one-sided smoothed real target
(Salimans et al. 2016).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from .models import cogan, dcgan
from .sampling import N_CLASSES, REFERENCE_SEED, balanced_labels, latent_noise

Batch = tuple[torch.Tensor, ...]


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
