"""Coupled GAN (Liu & Tuzel 2016) for two digit domains, as in report 004, Table 2.

Generator, per domain (transposed convolutions; sizes for a 1 x 1 input)::

    z -> FCONV 1024 k4 s1 p0 -> BN -> PReLU      4 x 4     layer 1 \
      -> FCONV  512 k3 s2 p1 -> BN -> PReLU      7 x 7     layer 2  | shared: the first
      -> FCONV  256 k3 s2 p1 -> BN -> PReLU     13 x 13    layer 3  | ``shared_layers``
      -> FCONV  128 k3 s2 p1 -> BN -> PReLU     25 x 25    layer 4 /  (paper: all four)
      -> FCONV    1 k6 s1 p1 -> tanh            28 x 28    per domain

The report says "padding 1 where needed": of paddings 0 or 1, padding 1 on layers 2 to 5 is
the only choice that lands on 28 x 28, and the constructor asserts it. Sharing the first (high-level)
generator layers makes both domains decode the same semantics from one z.

Discriminator, per domain::

    x -> CONV 20 k5 -> max-pool 2                              per domain
      -> CONV 50 k5 -> max-pool 2 -> FC 500 -> PReLU -> FC 1   shared (the LAST layers)

``output_layer="linear"`` replaces each domain's 6 x 6 output convolution by a fully connected
layer from the whole 25 x 25 map to the 28 x 28 image (then tanh): each output pixel can draw
on any position, so the two domains may place their strokes differently, e.g. rotated. This
tests the hypothesis that the report's sharing cannot couple a rotation because its only
unshared layer is local (this project's own variant; the paper has none).

Shared layers are the same module objects in both branches, so their tensors are literally
the same; a shared generator trunk is also evaluated once per batch. ``width`` scales the
generator's four hidden widths (1.0 is the paper's 1024/512/256/128; the quick profile uses
less, since the full generator costs ~0.2 GMAC per sample).
"""

from __future__ import annotations

import torch
from torch import nn

LATENT = 100
HIDDEN = (1024, 512, 256, 128)
# (kernel, stride, padding) of the five generator layers.
G_LAYERS = ((4, 1, 0), (3, 2, 1), (3, 2, 1), (3, 2, 1), (6, 1, 1))
MAX_SHARED = len(HIDDEN)


OUTPUT_LAYERS = ("conv", "linear")
HIDDEN_SIZE = 25  # side of the last hidden map (layer 4)


def _generator_blocks(latent: int, widths: tuple[int, ...], output_layer: str = "conv") -> list[nn.Module]:
    """The four hidden blocks and the output layer of one generator branch."""
    blocks: list[nn.Module] = []
    c_in = latent
    for c_out, (k, s, p) in zip(widths, G_LAYERS):
        blocks.append(nn.Sequential(nn.ConvTranspose2d(c_in, c_out, k, s, p), nn.BatchNorm2d(c_out), nn.PReLU()))
        c_in = c_out
    if output_layer == "linear":  # (N, c, 25, 25) -> (N, 784) -> (N, 1, 28, 28)
        blocks.append(nn.Sequential(nn.Flatten(), nn.Linear(c_in * HIDDEN_SIZE ** 2, 28 * 28), nn.Tanh(),
                                    nn.Unflatten(1, (1, 28, 28))))
    else:
        k, s, p = G_LAYERS[-1]
        blocks.append(nn.Sequential(nn.ConvTranspose2d(c_in, 1, k, s, p), nn.Tanh()))
    return blocks


class CoupledGenerator(nn.Module):
    """z (N, latent) -> (x1, x2), two (N, 1, 28, 28) images in [-1, 1] from the same z."""

    def __init__(self, latent: int = LATENT, shared_layers: int = MAX_SHARED, width: float = 1.0,
                 output_layer: str = "conv"):
        super().__init__()
        if not 0 <= shared_layers <= MAX_SHARED:
            raise ValueError(f"shared_layers must be in 0..{MAX_SHARED} (got {shared_layers})")
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(f"output_layer must be one of {', '.join(OUTPUT_LAYERS)} (got {output_layer!r})")
        self.latent, self.shared_layers = latent, shared_layers
        self.init_kwargs = {"latent": latent, "shared_layers": shared_layers, "width": width,
                            "output_layer": output_layer}
        widths = tuple(max(1, round(c * width)) for c in HIDDEN)
        first, second = (_generator_blocks(latent, widths, output_layer) for _ in range(2))
        self.shared = nn.Sequential(*first[:shared_layers])
        self.private = nn.ModuleList([nn.Sequential(*first[shared_layers:]), nn.Sequential(*second[shared_layers:])])
        size = self.branch(0)(torch.zeros(2, latent, 1, 1)).shape[-2:]
        assert tuple(size) == (28, 28), f"generator lands on {tuple(size)}, not 28 x 28"

    def branch(self, domain: int) -> nn.Sequential:
        """The whole generator of one domain (0 or 1): shared layers first, then its own."""
        return nn.Sequential(*self.shared, *self.private[domain])

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(z.view(len(z), self.latent, 1, 1))
        return self.private[0](h), self.private[1](h)


class CoupledDiscriminator(nn.Module):
    """(x1, x2) images of the two domains -> (logits1, logits2), each (N,)."""

    def __init__(self):
        super().__init__()
        self.private = nn.ModuleList([nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2)) for _ in range(2)])
        self.shared = nn.Sequential(
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),   # 12 x 12 -> 8 x 8 -> 4 x 4
            nn.Linear(50 * 4 * 4, 500), nn.PReLU(),
            nn.Linear(500, 1),
        )

    def branch(self, domain: int) -> nn.Sequential:
        """The whole discriminator of one domain: its own first layer, then the shared ones."""
        return nn.Sequential(*self.private[domain], *self.shared)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.branch(0)(x1).squeeze(1), self.branch(1)(x2).squeeze(1)
