"""Sampling error of the scores: 95% intervals, pure functions.

A score measured on n samples is an estimate; these intervals say how far another draw of
n samples could move it, so a bar is read against its error and not against one number.

* :func:`wilson_ci95`: a proportion (accuracy, label agreement): k of n successes. The
  Wilson score interval stays inside [0, 1] and is honest near 0 and 1, where the normal
  approximation collapses (an accuracy of 1.000 on 2,000 digits is not exactly 1).
* :func:`mean_ci95`: a mean of per-sample values in [0, 1] (pixel agreement per pair):
  mean +- 1.96 standard errors.

Both return ``[low, high]`` as plain floats (JSON-ready).
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def wilson_ci95(successes: int, n: int) -> list[float]:
    """Wilson score interval of a binomial proportion ``successes / n``."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0 (got {successes} of {n})")
    p, z2 = successes / n, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exactly 0 / 1 at the ends (round-off would give 0.9999999999999999)
    return [0.0 if successes == 0 else max(0.0, centre - half), 1.0 if successes == n else min(1.0, centre + half)]


def proportion_ci95(hits: np.ndarray) -> list[float]:
    """Wilson interval of the fraction of True in a boolean array."""
    hits = np.asarray(hits, dtype=bool)
    return wilson_ci95(int(hits.sum()), hits.size)


def mean_ci95(values: np.ndarray) -> list[float]:
    """Normal-approximation interval of the mean of ``values`` (one value per independent sample)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        raise ValueError(f"need at least 2 values for an interval (got {v.size})")
    m, half = v.mean(), Z95 * v.std(ddof=1) / math.sqrt(v.size)
    return [float(m - half), float(m + half)]
