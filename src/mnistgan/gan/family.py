"""What a GAN family is to the training loop (:class:`Family`), and the losses every family shares.

A *family* wraps its two networks and says what a loss is (:class:`Family`); the training loop
(mnistgan.gan.loop) owns everything else. The objective is the minimax game of both reports with the
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


class BinaryLoss:
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
