"""Sampling error of the scores: 95% intervals, pure functions.

A score measured on n samples is an estimate; these intervals say how far another draw of
n samples could move it, so a bar is read against its error and not against one number.

* :func:`wilson_ci95`: a proportion (accuracy, label agreement): k of n successes, SciPy's
  Wilson score interval (``binomtest(k, n).proportion_ci(method="wilson")``). It stays
  inside [0, 1] and is honest near 0 and 1, where the normal approximation collapses (an
  accuracy of 1.000 on 2,000 digits is not exactly 1).
* :func:`mean_ci95`: a mean of per-sample values in [0, 1] (pixel agreement per pair):
  mean +- 1.96 standard errors.

Both return ``[low, high]`` as plain floats (JSON-ready).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal: a two-sided 95% interval


def wilson_ci95(successes: int, n: int) -> list[float]:
    """Wilson score interval of a binomial proportion ``successes / n``."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0 (got {successes} of {n})")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


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
