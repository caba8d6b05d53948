"""The image domains of report 004 (Fig 1): original, rotated 90 degrees, edge and negative.

All transforms take and return uint8 arrays of shape (N, 28, 28) and are pure.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage


def rotate(x: np.ndarray) -> np.ndarray:
    """Rotate each image by 90 degrees counter-clockwise."""
    return np.ascontiguousarray(np.rot90(x, k=1, axes=(-2, -1)))


def edge(x: np.ndarray) -> np.ndarray:
    """Edge map as the CoGAN authors built it: 3x3 grey dilation minus the image."""
    size = (1,) * (x.ndim - 2) + (3, 3)
    dilated = ndimage.grey_dilation(x, size=size)
    return (dilated.astype(np.int16) - x.astype(np.int16)).clip(0, 255).astype(np.uint8)


def negative(x: np.ndarray) -> np.ndarray:
    return (255 - x.astype(np.int16)).astype(np.uint8)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rotate": rotate,
    "negative": negative,
    "edge": edge,
}
"""Domain-2 transforms of the CoGAN pairs; domain 1 is always the original."""


def unrotate(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rotate`: 90 degrees clockwise."""
    return np.ascontiguousarray(np.rot90(x, k=-1, axes=(-2, -1)))


INVERSES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rotate": unrotate,
    "negative": negative,  # its own inverse
}
"""Exact inverses of the invertible transforms (edge loses the stroke's inside: none)."""


def transform(name: str, x: np.ndarray) -> np.ndarray:
    try:
        return TRANSFORMS[name](x)
    except KeyError:
        raise ValueError(f"unknown domain {name!r} (known: {', '.join(TRANSFORMS)})") from None
