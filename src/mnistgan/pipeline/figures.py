"""PNG figures (matplotlib, headless). Every writer is atomic and takes plain arrays."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mnistgan.files import atomic_path  # noqa: E402


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def image_grid(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) images (any range) into one uint8 array, ``nrow`` images per row."""
    x = np.asarray(images, dtype=np.float64)
    if x.min() < 0:  # [-1, 1] -> [0, 1]
        x = (x + 1) / 2
    elif x.max() > 1:
        x = x / 255.0
    x = (x.clip(0, 1) * 255).round().astype(np.uint8)
    n, h, w = x.shape
    ncol = nrow
    nrows = -(-n // ncol)
    grid = np.full((nrows * (h + pad) + pad, ncol * (w + pad) + pad), 128, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = x[i]
    return grid


def save_grid(path: str | os.PathLike, images: np.ndarray, nrow: int, title: str | None = None,
              row_labels: list[str] | None = None) -> None:
    """Save a sample grid; ``row_labels`` names each row (e.g. the class or the domain)."""
    grid = image_grid(images, nrow)
    scale = 0.32
    fig, ax = plt.subplots(figsize=(max(2.0, grid.shape[1] / 28 * scale * 1.1), max(2.0, grid.shape[0] / 28 * scale * 1.1)))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        h = (grid.shape[0] - 2) / len(row_labels)
        ax.set_yticks([2 + h * (i + 0.5) for i in range(len(row_labels))], row_labels, fontsize=8)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)


def save_scatter(path: str | os.PathLike, xy: np.ndarray, labels: np.ndarray, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 6))
    cmap = plt.get_cmap("tab10")
    for c in range(10):
        m = labels == c
        ax.scatter(xy[m, 0], xy[m, 1], s=4, color=cmap(c), label=str(c), alpha=0.8, linewidths=0)
    ax.legend(title="digit", markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    _save(fig, path)
