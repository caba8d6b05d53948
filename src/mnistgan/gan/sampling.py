"""Sampling a generator from fixed noise: the noise streams, the images, their uint8 form.

Every noise stream has its own seed offset, so the sample grid, the scored samples and the VBN
reference never share noise with training (which uses the run's seed itself).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

N_CLASSES = 10
# Offsets added to a run's seed, one per noise stream, so the sample grid, the scored samples
# and the VBN reference never share noise with training (which uses the seed itself).
GRID_SEED, EVAL_SEED, REFERENCE_SEED = 1, 2, 3


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
