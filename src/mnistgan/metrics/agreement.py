"""The CoGAN scores: pixel agreement (Liu & Tuzel 2016) and label agreement, beside chance.

A CoGAN pair ``(x1, x2)`` comes from one z. If the pair is coherent, the known domain
transform of ``x1`` should be ``x2``.

* **Pixel agreement ratio** (the CoGAN paper's digit score): map ``x1`` through the transform
  (mnistgan.data.domains), binarise both images and count the fraction of the 28 x 28 pixels on
  which they agree; average over all pairs.
* **Its chance level**: the same score with the pairs broken up, i.e. the same generator's
  domain-2 samples re-paired by a fixed random derangement. Unrelated digits already agree
  on most of their pixels (most pixels are background in both), so a raw agreement
  says little; ``normalised = (a - chance) / (1 - chance)`` is 0 at chance and 1 when every
  pair is exact.
* **Label agreement**: the fraction of pairs whose two images a scorer reads as the same
  digit (the stage supplies both label arrays, see stages/train_cogan.py); works for any
  transform, with chance about 0.1 (again by re-pairing).

Threshold rule (fixed, so scores compare across runs and with the paper's ~0.95 edge and
~0.97 negative): on uint8 images in [0, 255], a pixel is ON iff its value is >= 128, i.e. at
least half intensity. Generator outputs in [-1, 1] are first mapped to uint8 by
``round((x + 1) * 127.5)`` (mnistgan.gan.sampling.to_uint8), so ON means x >= ~0.0 in generator
units. The transform is applied to the uint8 image before binarising, so the negative's
ON set is exactly the complement of the original's.

Every score comes with its 95% interval over the pairs (mnistgan.metrics.intervals).
"""

from __future__ import annotations

import numpy as np

from mnistgan.data import domains
from mnistgan.metrics import intervals

THRESHOLD = 128


def binarise(x: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    return np.asarray(x) >= threshold


def _checked(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.shape != x2.shape or x1.dtype != np.uint8 or x2.dtype != np.uint8:
        raise ValueError(f"expected two uint8 arrays of one shape, got {x1.dtype}{x1.shape} and {x2.dtype}{x2.shape}")
    return x1, x2


def per_pair_agreement(x1: np.ndarray, x2: np.ndarray, domain: str, threshold: int = THRESHOLD) -> np.ndarray:
    """For each pair, the fraction of pixels on which T(x1) and x2 agree (uint8, (N, 28, 28)) -> (N,)."""
    x1, x2 = _checked(x1, x2)
    agree = binarise(domains.transform(domain, x1), threshold) == binarise(x2, threshold)
    return agree.reshape(len(agree), -1).mean(axis=1)


def pixel_agreement(x1: np.ndarray, x2: np.ndarray, domain: str, threshold: int = THRESHOLD) -> float:
    """Mean over pairs of the fraction of agreeing pixels between T(x1) and x2 (uint8, (N, 28, 28))."""
    return float(per_pair_agreement(x1, x2, domain, threshold).mean())


def derangement(n: int, seed: int) -> np.ndarray:
    """A fixed random permutation of 0..n-1 that moves every index (n >= 2): the re-pairing."""
    if n < 2:
        raise ValueError(f"re-pairing needs at least 2 pairs (got {n})")
    order = np.random.default_rng(seed).permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)  # each element of a random cycle takes the next one's partner
    return partner


def normalised(score: float, chance: float) -> float:
    """``(score - chance) / (1 - chance)``: 0 at chance, 1 at perfect agreement."""
    return float((score - chance) / (1.0 - chance)) if chance < 1.0 else float("nan")


def pair_scores(x1: np.ndarray, x2: np.ndarray, domain: str, labels1: np.ndarray | None = None,
                labels2: np.ndarray | None = None, seed: int = 0) -> dict:
    """Every CoGAN score of N generated pairs, with chance levels and 95% intervals.

    ``labels1``/``labels2``: a scorer's digit for each domain-1 / domain-2 image (optional).
    ``seed`` fixes the re-pairing that gives the chance levels.
    """
    per_pair = per_pair_agreement(x1, x2, domain)
    swap = derangement(len(per_pair), seed)
    chance = float(per_pair_agreement(x1, np.asarray(x2)[swap], domain).mean())
    agreement = float(per_pair.mean())
    out = {
        "agreement": agreement,
        "agreement_ci95": intervals.mean_ci95(per_pair),
        "agreement_chance": chance,
        "agreement_normalised": normalised(agreement, chance),
        "pairs": int(len(per_pair)),
    }
    if labels1 is not None and labels2 is not None:
        same = np.asarray(labels1) == np.asarray(labels2)
        label_chance = float(np.mean(np.asarray(labels1) == np.asarray(labels2)[swap]))
        out.update({
            "label_agreement": float(same.mean()),
            "label_agreement_ci95": intervals.proportion_ci95(same),
            "label_agreement_chance": label_chance,
            "label_agreement_normalised": normalised(float(same.mean()), label_chance),
        })
    return out
