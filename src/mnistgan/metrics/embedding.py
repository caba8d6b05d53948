"""How well an embedding separates the classes: k-nearest-neighbour purity, per class.

Report 004 reads its t-SNE figure by eye ("3, 8 and 9 scatter; 0, 1 and 6 form their own
clusters"). Purity puts a number on it: for each point, the fraction of its k nearest
neighbours in the embedding (itself excluded) that share its label; a class's purity is the
mean over its points, with its 95% interval (mnistgan.metrics.intervals.mean_ci95). A class
that forms its own cluster scores near 1; one scattered among others lower. Chance is the
class's share of the points (about 0.1 for MNIST).
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from mnistgan.metrics.intervals import mean_ci95


def knn_purity(points: np.ndarray, labels: np.ndarray, k: int = 10) -> dict[int, dict]:
    """{class: {"purity", "purity_ci95", "n", "chance"}} of ``points`` (N, d) labelled ``labels`` (N,)."""
    points, labels = np.asarray(points, dtype=np.float64), np.asarray(labels)
    if len(points) != len(labels) or len(points) <= k:
        raise ValueError(f"need more than k={k} labelled points (got {len(points)} points, {len(labels)} labels)")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    same = (labels[idx[:, 1:]] == labels[:, None]).mean(axis=1)  # column 0 is the point itself
    out = {}
    for c in np.unique(labels):
        mask = labels == c
        out[int(c)] = {"purity": float(same[mask].mean()),
                       "purity_ci95": mean_ci95(same[mask]) if mask.sum() > 1 else None,
                       "n": int(mask.sum()), "chance": float(mask.mean())}
    return out
