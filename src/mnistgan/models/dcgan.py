"""DCGAN and class-conditional DCGAN ("CCGAN") of report 000, sections 2 and 3.

Generator (F = width multiplier)::

    z (latent) [+ one-hot label] -> Dense 1024 -> BN -> ReLU -> Dense 128F*7*7 -> BN -> ReLU
    -> reshape 128F x 7 x 7 -> upsample x2 -> conv5 64F -> BN -> ReLU -> upsample x2 -> conv5 1
    -> tanh                                                                  (1 x 28 x 28)

Discriminator (F = width multiplier, D = depth; D = 1 is the report's network)::

    image [+ label -> Dense 784 -> 1 x 28 x 28, as a second channel]
    -> conv5 s2 64F -> BN -> ELU                                             (14 x 14)
    -> conv5 s2 192F -> BN -> ELU                                            (7 x 7)
    -> (D - 1) x [conv3 s1 192F -> BN -> ELU]                                (7 x 7)
    -> max-pool 2 -> flatten -> Dense 1                                      (3 x 3 -> a logit)

The report gives the layer order but not the widths; ours are chosen so that F = 1, D = 1
lands on the report's parameter counts (G ~6.8M of "~7M", D ~311k of "~310k"). The
discriminator returns a logit, not a probability: the sigmoid lives inside
``BCEWithLogitsLoss``, which is the numerically stable form of the same loss. Extra depth
is added at 7 x 7 with 3 x 3 convolutions so each block adds capacity without changing the
spatial size, which keeps every D valid for every F.

``vbn_ref > 0`` swaps every batch normalisation for :class:`VirtualBatchNorm` with a
reference batch of that many inputs, stored as buffers (so saved with the weights) and set
once with ``set_reference`` before training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

IMAGE = 28
LATENT = 100


class VirtualBatchNorm(nn.Module):
    """Batch normalisation with the statistics of a fixed reference batch (Salimans et al. 2016).

    The network runs the reference inputs and the real batch as one concatenated batch whose
    first ``n_ref`` rows are the reference: every VBN layer takes the mean and variance of
    those rows only and normalises all rows with them. The statistics are recomputed in
    every forward pass with the current weights (and gradients flow through them), but they
    never depend on the other examples in the batch, so one example's output is a function
    of that example alone: in training, evaluation and generation alike. We use the
    reference-only statistics, the cheaper of the paper's two variants (the other mixes in
    each example with weight 1 / (n_ref + 1)).
    """

    def __init__(self, num_features: int, n_ref: int, eps: float = 1e-5):
        super().__init__()
        if n_ref < 2:
            raise ValueError("virtual batch normalisation needs a reference batch of at least 2")
        self.n_ref = n_ref
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]  # all but the channel dimension
        ref = x[: self.n_ref]
        mean = ref.mean(dim=dims, keepdim=True)
        var = ref.var(dim=dims, unbiased=False, keepdim=True)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


def _norm(num_features: int, spatial: bool, vbn_ref: int) -> nn.Module:
    if vbn_ref:
        return VirtualBatchNorm(num_features, vbn_ref)
    return nn.BatchNorm2d(num_features) if spatial else nn.BatchNorm1d(num_features)


class _ReferenceBatch(nn.Module):
    """The VBN reference batch of either net; everything here is a no-op when ``vbn_ref == 0``.

    The reference inputs (and labels, for a conditional net) are buffers, so a saved
    state_dict carries them and a loaded network normalises exactly as it did in training.
    """

    def _init_reference(self, vbn_ref: int, input_shape: tuple[int, ...], n_classes: int) -> None:
        self.vbn_ref = vbn_ref
        if vbn_ref:
            self.register_buffer("ref_input", torch.zeros(vbn_ref, *input_shape))
            self.register_buffer("ref_labels", torch.zeros(vbn_ref, dtype=torch.long) if n_classes else None)

    def set_reference(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Fix the reference batch (once, before training)."""
        self.ref_input.copy_(inputs)
        if self.ref_labels is not None:
            self.ref_labels.copy_(labels)

    def _with_reference(self, x: torch.Tensor, labels: torch.Tensor | None):
        if not self.vbn_ref:
            return x, labels
        x = torch.cat([self.ref_input.to(x.dtype), x])
        return x, None if labels is None else torch.cat([self.ref_labels, labels])

    def _strip_reference(self, out: torch.Tensor) -> torch.Tensor:
        return out[self.vbn_ref :]  # without VBN: all of ``out`` (a view, no copy)


class Generator(_ReferenceBatch):
    """z (N, latent) and, if ``n_classes``, integer labels (N,) -> images (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, latent: int = LATENT, width: int = 1, n_classes: int = 0, vbn_ref: int = 0):
        super().__init__()
        self.latent, self.n_classes = latent, n_classes
        self.init_kwargs = {"latent": latent, "width": width, "n_classes": n_classes, "vbn_ref": vbn_ref}
        self._init_reference(vbn_ref, (latent,), n_classes)
        c1, c2 = 128 * width, 64 * width
        self.map_channels = c1
        self.dense = nn.Sequential(
            nn.Linear(latent + n_classes, 1024), _norm(1024, False, vbn_ref), nn.ReLU(),
            nn.Linear(1024, c1 * 7 * 7), _norm(c1 * 7 * 7, False, vbn_ref), nn.ReLU(),
        )
        self.conv = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c1, c2, 5, padding=2), _norm(c2, True, vbn_ref), nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c2, 1, 5, padding=2), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z, labels = self._with_reference(z, labels if self.n_classes else None)
        if self.n_classes:
            z = torch.cat([z, F.one_hot(labels, self.n_classes).to(z.dtype)], dim=1)
        return self._strip_reference(self.conv(self.dense(z).view(-1, self.map_channels, 7, 7)))


class Discriminator(_ReferenceBatch):
    """Images (N, 1, 28, 28) and, if ``n_classes``, labels (N,) -> real/fake logits (N,)."""

    def __init__(self, width: int = 1, depth: int = 1, n_classes: int = 0, vbn_ref: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self._init_reference(vbn_ref, (1, IMAGE, IMAGE), n_classes)
        c1, c2 = 64 * width, 192 * width
        layers = [
            nn.Conv2d(2 if n_classes else 1, c1, 5, stride=2, padding=2), _norm(c1, True, vbn_ref), nn.ELU(),
            nn.Conv2d(c1, c2, 5, stride=2, padding=2), _norm(c2, True, vbn_ref), nn.ELU(),
        ]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c2, c2, 3, padding=1), _norm(c2, True, vbn_ref), nn.ELU()]
        layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 3 * 3, 1)]
        self.net = nn.Sequential(*layers)
        # The label's own 28 x 28 "image": a learned map per class, as in the report.
        self.label_map = nn.Linear(n_classes, IMAGE * IMAGE) if n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x, labels = self._with_reference(x, labels if self.n_classes else None)
        if self.n_classes:
            onehot = F.one_hot(labels, self.n_classes).to(x.dtype)
            x = torch.cat([x, self.label_map(onehot).view(-1, 1, IMAGE, IMAGE)], dim=1)
        return self._strip_reference(self.net(x).squeeze(1))
