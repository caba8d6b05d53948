"""LeNet-5-style classifier: the fixed scorer of every generator, and the hybrid classifier."""

from __future__ import annotations

import torch
from torch import nn

from mnistgan.models.layers import MaxPool2x


class LeNet(nn.Module):
    """conv5-pool-conv5-pool-fc-fc-fc, ReLU; input (N, 1, 28, 28) in [-1, 1].

    ``embed`` returns the penultimate activations (``hidden[-1]`` features): the space in
    which the LeNet-FID is computed.
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: tuple[int, int] = (256, 84),
                 n_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        h1, h2 = hidden
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), MaxPool2x(),   # 28 -> 14
            nn.Conv2d(c1, c2, 5), nn.ReLU(), MaxPool2x(),             # 14 -> 10 -> 5
            nn.Flatten(),
            nn.Linear(c2 * 5 * 5, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
        )
        self.head = nn.Linear(h2, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
