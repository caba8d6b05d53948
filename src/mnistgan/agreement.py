"""The CoGAN score: average pixel agreement ratio (Liu & Tuzel 2016, digit experiments).

A CoGAN pair ``(x1, x2)`` comes from one z. If the pair is coherent, the known domain
transform of ``x1`` should be ``x2``. We map ``x1`` through the transform (mnistgan.domains),
binarise both images and count the fraction of the 28 x 28 pixels on which they agree,
then average over all pairs.

Threshold rule (fixed, so scores compare across runs and with the paper's ~0.95 edge and
~0.97 negative): on uint8 images in [0, 255], a pixel is ON iff its value is >= 128, i.e. at
least half intensity. Generator outputs in [-1, 1] are first mapped to uint8 by
``round((x + 1) * 127.5)`` (mnistgan.gan.to_uint8), so ON means x >= ~0.0 in generator
units. The transform is applied to the uint8 image before binarising, so the negative's
ON set is exactly the complement of the original's.
"""

from __future__ import annotations

import numpy as np

from . import domains

THRESHOLD = 128


def binarise(x: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    return np.asarray(x) >= threshold


def pixel_agreement(x1: np.ndarray, x2: np.ndarray, domain: str, threshold: int = THRESHOLD) -> float:
    """Mean over pairs of the fraction of agreeing pixels between T(x1) and x2 (uint8, (N, 28, 28))."""
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.shape != x2.shape or x1.dtype != np.uint8 or x2.dtype != np.uint8:
        raise ValueError(f"expected two uint8 arrays of one shape, got {x1.dtype}{x1.shape} and {x2.dtype}{x2.shape}")
    agree = binarise(domains.transform(domain, x1), threshold) == binarise(x2, threshold)
    return float(agree.mean())
