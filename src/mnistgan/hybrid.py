"""Training sets that mix real and synthetic digits (report 000, section 4).

A hybrid set has a fixed total size and fixed per-class counts; within each class a fraction
``r_c`` of the images is real and the rest synthetic. The fraction is one number for every
class (Fig 9: r in {0, 0.1, ..., 1}) or a per-class mapping, so the report's per-class
strategy (Fig 12: class 0 at 40% real, the others at 10%) is plain data::

    hybrid_set(real, synthetic, total, fractions_by_class(0.1, {0: 0.4}), rng)

Rounding rule: class ``c`` with ``n_c`` images gets ``floor(r_c * n_c + 1/2)`` real images
(round half up, the same rule for every class and every r) and ``n_c`` minus that many
synthetic ones, so real + synthetic = ``n_c`` exactly and the class counts sum to the total.
The overall real fraction is therefore within ``n_classes / (2 * total)`` of a single r.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from mnistgan.data.mnist import allocate
from mnistgan.errors import PipelineError

# Images per digit 0..9 in the 60,000-image MNIST training set.
MNIST_TRAIN_CLASS_COUNTS: tuple[int, ...] = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)

# The real fractions behind the headline numbers, trained on the full-budget set (hybrid.total,
# hybrid.epochs): r = 0 is "train on synthetic, test on real", r = 1 the same LeNet on real data.
HEADLINE_FRACTIONS: tuple[float, ...] = (0.0, 1.0)

# Report 000's Fig 9 claim, read as: the smallest real fraction whose accuracy is within this
# of r = 1.0's on the same curve (the summary key hybrid.fig9_smallest_r).
FIG9_TOLERANCE = 0.005

# Products r * n within this of k + 1/2 count as the half: 0.7 * 45 is 31.499999999999996 in
# binary floating point but 31.5 in the decimal the user wrote, and rounds up like 0.5 * 63.
_HALF_GUARD = 1e-9

RealFraction = float | Mapping[int, float]
"""One real fraction for every class, or ``{class: fraction}`` naming every class."""


class MixingError(PipelineError, ValueError):
    """A hybrid set that cannot be built as asked (a stage shows it as one line)."""


class Mixed(NamedTuple):
    """A hybrid training set in random order; ``is_real[i]`` says where row ``i`` came from."""

    x: np.ndarray
    y: np.ndarray
    is_real: np.ndarray


def smallest_fraction_near_all_real(curve: Mapping[float, float], tolerance: float = FIG9_TOLERANCE) -> float:
    """The smallest r of ``{r: accuracy}`` whose accuracy is at least r = 1.0's minus ``tolerance``."""
    if 1.0 not in curve:
        raise MixingError("the Fig 9 curve has no r = 1.0 to compare with")
    return min(r for r, acc in curve.items() if acc >= curve[1.0] - tolerance)


def mnist_train_counts(total: int = 60000) -> np.ndarray:
    """Per-class counts of ``total`` images in MNIST train's proportions (largest remainder).

    ``mnist_train_counts()`` is MNIST train itself; for a stratified subset of N images (the
    prepared data with ``data.train_limit: N``) it gives that subset's counts.
    """
    return allocate(np.array(MNIST_TRAIN_CLASS_COUNTS), _checked_total(total))


def fractions_by_class(default: float, overrides: Mapping[int, float] | None = None,
                       n_classes: int = 10) -> dict[int, float]:
    """``{class: fraction}`` for every class: ``default`` except where ``overrides`` says otherwise."""
    unknown = sorted(set(overrides or {}) - set(range(n_classes)))
    if unknown:
        raise MixingError(
            f"real fraction given for unknown class {unknown[0]!r} (classes are 0..{n_classes - 1})"
        )
    return {c: (overrides or {}).get(c, default) for c in range(n_classes)}


def real_counts(counts: np.ndarray, real_fraction: RealFraction) -> np.ndarray:
    """Real images per class: ``floor(r_c * n_c + 1/2)`` for class ``c`` of ``n_c`` images."""
    counts = _check_counts(counts)
    r = _fraction_array(real_fraction, len(counts))
    return np.floor(r * counts + 0.5 + _HALF_GUARD).astype(np.int64)


def hybrid_set(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray],
    total: int,
    real_fraction: RealFraction,
    rng: np.random.Generator,
    counts: np.ndarray | None = None,
    n_classes: int = 10,
) -> Mixed:
    """Draw a hybrid set of ``total`` images from the ``real`` and ``synthetic`` (x, y) pools.

    ``counts[c]`` images of class ``c`` (default: ``total`` split in the real pool's class
    proportions); ``real_counts(counts, real_fraction)`` of them drawn from the real pool and
    the rest from the synthetic pool, each without replacement. Rows come out shuffled.
    Raises MixingError (a ValueError) on a fraction outside [0, 1], counts that do not sum to
    ``total``, pools of different image shape or dtype, or a class short of images.
    """
    total = _checked_total(total)
    real_x, real_y = _check_pool("real", *real, n_classes)
    syn_x, syn_y = _check_pool("synthetic", *synthetic, n_classes)
    if real_x.shape[1:] != syn_x.shape[1:] or real_x.dtype != syn_x.dtype:
        raise MixingError(
            f"real images are {real_x.dtype} {real_x.shape[1:]}, synthetic ones {syn_x.dtype} "
            f"{syn_x.shape[1:]}: convert one pool to the other's format before mixing"
        )
    if counts is None:
        real_per_class = np.bincount(real_y, minlength=n_classes)
        if real_per_class.sum() == 0:
            raise MixingError("the real pool is empty: give the per-class counts explicitly")
        counts = allocate(real_per_class, total)
    counts = _check_counts(counts)
    if len(counts) != n_classes:
        raise MixingError(
            f"per-class counts must have one entry per class 0..{n_classes - 1} (got {len(counts)})"
        )
    if counts.sum() != total:
        raise MixingError(f"per-class counts sum to {counts.sum()}, not to the total {total}")
    n_real = real_counts(counts, real_fraction)

    picks_real, picks_syn = [], []
    for c in range(n_classes):
        picks_real.append(_draw(real_y, c, n_real[c], "real", rng))
        picks_syn.append(_draw(syn_y, c, counts[c] - n_real[c], "synthetic", rng))
    take_real, take_syn = np.concatenate(picks_real), np.concatenate(picks_syn)

    order = rng.permutation(total)
    x = np.concatenate([real_x[take_real], syn_x[take_syn]])[order]
    y = np.concatenate([real_y[take_real], syn_y[take_syn]])[order]
    is_real = np.concatenate([np.ones(len(take_real), bool), np.zeros(len(take_syn), bool)])[order]
    return Mixed(x, y, is_real)


def _draw(y: np.ndarray, c: int, n: int, pool: str, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` distinct images of class ``c`` from a pool's labels."""
    available = np.flatnonzero(y == c)
    if n > len(available):
        raise MixingError(f"class {c} needs {n} {pool} images but the {pool} pool has only {len(available)}")
    return rng.choice(available, size=n, replace=False)


def _checked_total(total: int) -> int:
    if isinstance(total, bool) or not isinstance(total, int | np.integer) or total < 0:
        raise MixingError(f"total must be a non-negative integer (got {total!r})")
    return int(total)


def _check_pool(name: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(x) != len(y):
        raise MixingError(f"{name} pool: {len(x)} images but labels of shape {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes):
        raise MixingError(f"{name} pool: labels must be integers in 0..{n_classes - 1}")
    return x, y.astype(np.int64)


def _check_counts(counts: np.ndarray) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.ndim != 1 or (arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0)):
        raise MixingError(f"per-class counts must be a list of non-negative integers (got {counts!r})")
    return arr.astype(np.int64)


def _fraction_array(real_fraction: RealFraction, n_classes: int) -> np.ndarray:
    """The real fraction of each class 0..n_classes-1, each checked to lie in [0, 1]."""
    if not isinstance(real_fraction, Mapping):
        return np.full(n_classes, _checked_fraction("real fraction", real_fraction))
    given = {int(k): v for k, v in real_fraction.items()}
    missing, unknown = sorted(set(range(n_classes)) - set(given)), sorted(set(given) - set(range(n_classes)))
    if missing or unknown:
        raise MixingError(
            f"per-class real fractions must name exactly the classes 0..{n_classes - 1} "
            f"(missing {missing}, unknown {unknown}); build them with fractions_by_class"
        )
    return np.array([_checked_fraction(f"real fraction of class {c}", given[c]) for c in range(n_classes)])


def _checked_fraction(what: str, r: object) -> float:
    if isinstance(r, bool) or not isinstance(r, int | float | np.number) or not 0.0 <= float(r) <= 1.0:
        raise MixingError(f"{what} must be a number in [0, 1] (got {r!r})")
    return float(r)
