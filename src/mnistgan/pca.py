"""PCA as a generative model of digits (report 000, section 5), and probabilistic PCA.

* :func:`fit_pca` fits one class once, keeping a complete orthonormal basis of all ``d``
  pixels ordered by variance; :meth:`ClassPCA.reconstruct` then truncates it to any
  ``n`` in 1..d without refitting, and ``n = d`` rebuilds any input exactly, also when the
  class has fewer images than pixels (the basis is completed beyond the data's rank with
  zero-variance directions).
* :meth:`ClassPCA.ppca` turns the fit into the maximum-likelihood probabilistic PCA of
  Tipping & Bishop (1999) with ``q`` components, which samples NEW images
  ``x = mu + W z + sigma eps``.
* :class:`PerClassPCA` holds one fit per class and gives what a stage scores with LeNet:
  rebuilt images (their labels kept) or PPCA samples with given per-class counts.
* :class:`GlobalPCA` is one fit on all classes: rebuilding does not see the label.
* :func:`saturation_point` reads a (n, score) curve: where more components stop helping.

Variances are the eigenvalues of the maximum-likelihood covariance ``(1/N) sum (x - mu)(x - mu)^T``,
as in Tipping & Bishop, so the mean squared reconstruction error of the training images with
``n`` components is exactly ``variances[n:].sum()``. Pure numpy, float64 inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnistgan.errors import PipelineError

PixelRange = tuple[float, float]


class PCAError(PipelineError, ValueError):
    """A PCA fit or query that cannot be done as asked (a stage shows it as one line)."""


@dataclass(frozen=True, eq=False)
class PPCA:
    """Probabilistic PCA: ``x ~ N(mean, weights weights^T + noise_variance I)``."""

    mean: np.ndarray  # (d,)
    weights: np.ndarray  # (d, q): W = U_q (L_q - sigma^2 I)^(1/2)
    noise_variance: float  # sigma^2: the mean of the d - q discarded eigenvalues

    def covariance(self) -> np.ndarray:
        """The model covariance ``W W^T + sigma^2 I`` (d, d)."""
        return self.weights @ self.weights.T + self.noise_variance * np.eye(len(self.mean))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` new (unclipped) images (n, d): ``mu + W z + sigma eps``.

        ``z ~ N(0, I_q)`` then ``eps ~ N(0, I_d)`` are drawn from ``rng`` in that order.
        """
        d, q = self.weights.shape
        z = rng.standard_normal((n, q))
        eps = rng.standard_normal((n, d))
        return self.mean + z @ self.weights.T + math.sqrt(self.noise_variance) * eps


@dataclass(frozen=True, eq=False)
class ClassPCA:
    """The PCA of one class: a complete orthonormal basis of R^d, by decreasing variance."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (d, d): row i is the i-th principal direction
    variances: np.ndarray  # (d,): descending eigenvalues of the ML covariance; 0 beyond the rank

    @property
    def dim(self) -> int:
        return len(self.mean)

    def reconstruct(self, x: np.ndarray, n_components: int) -> np.ndarray:
        """Project (N, d) images on the first ``n_components`` directions and map back (float64)."""
        n = self._checked_n(n_components, 1, self.dim)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise PCAError(f"images must have shape (N, {self.dim}) (got {x.shape})")
        basis = self.components[:n]
        return self.mean + ((x - self.mean) @ basis.T) @ basis

    def ppca(self, n_components: int) -> PPCA:
        """Maximum-likelihood probabilistic PCA with ``q = n_components`` in 1..d-1."""
        q = self._checked_n(n_components, 1, self.dim - 1)
        sigma2 = float(self.variances[q:].mean())
        scale = np.sqrt(np.clip(self.variances[:q] - sigma2, 0.0, None))
        return PPCA(self.mean, self.components[:q].T * scale, sigma2)

    def _checked_n(self, n: int, lo: int, hi: int) -> int:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not lo <= n <= hi:
            raise PCAError(f"number of components must be an integer in {lo}..{hi} (got {n!r})")
        return int(n)


def fit_pca(x: np.ndarray) -> ClassPCA:
    """Fit PCA to (N, d) images: one eigendecomposition of their (d, d) ML covariance.

    The eigenvectors form a complete orthonormal basis whatever N (with N <= d, the
    directions beyond the data's rank get variance 0), so nothing is refitted per n. Each
    direction's sign is fixed (its largest-magnitude entry is positive), so the fit does
    not depend on the sign convention of the LAPACK build.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise PCAError(f"PCA needs a non-empty, finite (N, d) array (got shape {x.shape})")
    mean = x.mean(axis=0)
    centred = x - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(x))
    order = np.argsort(eigenvalues)[::-1]
    components = eigenvectors[:, order].T
    components *= np.sign(components[np.arange(len(mean)), np.abs(components).argmax(axis=1)])[:, None]
    return ClassPCA(mean, components, np.clip(eigenvalues[order], 0.0, None))


@dataclass(frozen=True, eq=False)
class PerClassPCA:
    """One :class:`ClassPCA` per class, fitted on images of shape ``image_shape``."""

    models: dict[int, ClassPCA]
    image_shape: tuple[int, ...]
    pixel_range: PixelRange

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, pixel_range: PixelRange) -> PerClassPCA:
        """Fit each class present in ``y`` on its own images ``x`` (N, ...) in ``pixel_range``."""
        lo, hi = pixel_range
        if not lo < hi:
            raise PCAError(f"pixel range must be (low, high) with low < high (got {pixel_range!r})")
        flat, y = _flat_images(x, y, pixel_range)
        models = {int(c): fit_pca(flat[y == c]) for c in np.unique(y)}
        return cls(models, tuple(np.shape(x)[1:]), (float(lo), float(hi)))

    def reconstruct(self, x: np.ndarray, y: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
        """Images ``x`` rebuilt from ``n_components`` of their own class's PCA, and their labels.

        Row ``i`` is ``x[i]`` rebuilt by the model of class ``y[i]``, clipped to the pixel
        range, float32 in the fitted image shape; the labels come back unchanged.
        """
        flat, y = _flat_images(x, y, self.pixel_range)
        out = np.empty(flat.shape, dtype=np.float32)
        for c in np.unique(y):
            rows = y == c
            out[rows] = self._model(int(c)).reconstruct(flat[rows], n_components)
        return self._as_images(out), y

    def sample(self, counts: Sequence[int], n_components: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``counts[c]`` new images of each class ``c`` from its PPCA with ``n_components``.

        Classes come in increasing order (class 0's samples first), drawn from ``rng`` in that
        order; images are clipped to the pixel range, float32 in the fitted image shape.
        """
        counts = np.asarray(counts)
        if counts.ndim != 1 or not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
            raise PCAError(f"per-class counts must be a list of non-negative integers (got {counts!r})")
        wanted = [c for c in range(len(counts)) if counts[c] > 0]
        models = {c: self._model(c).ppca(n_components) for c in wanted}
        empty = np.empty((0, math.prod(self.image_shape)))
        flat = np.concatenate([empty] + [models[c].sample(int(counts[c]), rng) for c in wanted])
        return self._as_images(flat), np.repeat(np.arange(len(counts)), counts)

    def _model(self, c: int) -> ClassPCA:
        if c not in self.models:
            raise PCAError(f"no PCA fitted for class {c} (fitted: {sorted(self.models)})")
        return self.models[c]

    def _as_images(self, flat: np.ndarray) -> np.ndarray:
        """(N, d) pixels -> float32 images (N, *image_shape) clipped to the pixel range."""
        images = np.clip(flat, *self.pixel_range).astype(np.float32, copy=False)
        return images.reshape((len(flat), *self.image_shape))


@dataclass(frozen=True, eq=False)
class GlobalPCA:
    """One PCA basis fitted on the images of every class (report 000, section 5, first paragraph).

    Unlike :class:`PerClassPCA`, rebuilding an image does not use its label: with the basis of
    its own true class, even one component (about the class mean) already shows the label to
    LeNet, so the per-class curve's accuracy saturates at n = 1 whatever the images look like.
    """

    model: ClassPCA
    image_shape: tuple[int, ...]
    pixel_range: PixelRange

    @classmethod
    def fit(cls, x: np.ndarray, pixel_range: PixelRange) -> GlobalPCA:
        flat, _ = _flat_images(x, np.zeros(len(x), dtype=np.int64), pixel_range)
        return cls(fit_pca(flat), tuple(np.shape(x)[1:]), (float(pixel_range[0]), float(pixel_range[1])))

    def reconstruct(self, x: np.ndarray, n_components: int) -> np.ndarray:
        """Images ``x`` rebuilt from the first ``n_components`` directions, clipped, float32."""
        flat, _ = _flat_images(x, np.zeros(len(x), dtype=np.int64), self.pixel_range)
        rebuilt = self.model.reconstruct(flat, n_components)
        return np.clip(rebuilt, *self.pixel_range).astype(np.float32).reshape((len(flat), *self.image_shape))


def _flat_images(x: np.ndarray, y: np.ndarray, pixel_range: PixelRange) -> tuple[np.ndarray, np.ndarray]:
    """(N, ...) images as (N, d), checked to lie in ``pixel_range``, and int64 labels."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2 or y.shape != (len(x),):
        raise PCAError(f"need images (N, ...) and labels (N,) (got {x.shape} and {y.shape})")
    if not np.issubdtype(y.dtype, np.integer):
        raise PCAError(f"labels must be integers (got {y.dtype})")
    lo, hi = pixel_range
    if x.size and (x.min() < lo or x.max() > hi):
        raise PCAError(
            f"pixels span [{x.min()}, {x.max()}], outside the range [{lo}, {hi}]: "
            "convert the images (e.g. uint8 / 127.5 - 1) first"
        )
    return x.reshape(len(x), -1), y.astype(np.int64)


def saturation_point(ns: Sequence[int], scores: Sequence[float], tolerance: float,
                     higher_is_better: bool = True) -> int:
    """The smallest ``n`` whose score is within ``tolerance`` of the best score.

    Higher is better (accuracy) unless ``higher_is_better`` is False (LeNet-FID).

    ``tolerance`` is in the scores' own units: 0.005 for half an accuracy point when the
    scores are fractions, 0.5 when they are percentages.
    """
    ns_arr, sc = np.asarray(ns), np.asarray(scores, dtype=np.float64)
    if ns_arr.ndim != 1 or len(ns_arr) == 0 or sc.shape != ns_arr.shape:
        raise PCAError(
            f"need as many scores as n values, at least one (got {len(ns)} n, {len(scores)} scores)"
        )
    if not np.isfinite(sc).all():
        raise PCAError(f"scores must be finite (got {sc.tolist()})")
    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance >= 0):
        raise PCAError(f"tolerance must be a finite number >= 0 (got {tolerance!r})")
    close = sc >= sc.max() - tolerance if higher_is_better else sc <= sc.min() + tolerance
    return int(ns_arr[close].min())
