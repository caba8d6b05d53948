"""The seed of a stage: torch's global RNG (weight initialisation) and a generator for the rest."""

from __future__ import annotations

import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init) and return a CPU generator for data order/noise."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
