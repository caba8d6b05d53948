"""PCA rebuilds, probabilistic PCA sampling, the per-class wrapper and the saturation point."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from mnistgan.errors import PipelineError
from mnistgan.pca import PCAError, PerClassPCA, fit_pca, saturation_point


def low_rank(n: int, d: int, rank: int, noise: float, seed: int) -> np.ndarray:
    """(n, d) points near a random ``rank``-dimensional affine subspace, scaled into [0, 1]."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, d))
    signal = rng.standard_normal((n, rank)) * np.linspace(3, 1, rank) @ basis
    x = signal + noise * rng.standard_normal((n, d))
    return (x - x.min()) / (x.max() - x.min())


def digits(per_class: int, n_classes: int = 3, side: int = 4, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """Tiny (N, side, side) "digits" in [-1, 1]: each class a different low-rank cloud."""
    xs = [low_rank(per_class, side * side, 2, 0.05, seed + c) * 2 - 1 for c in range(n_classes)]
    labels = np.repeat(np.arange(n_classes), per_class).astype(np.uint8)
    return np.concatenate(xs).reshape(-1, side, side), labels


# ----------------------------------------------------------------------------- PCA
@pytest.mark.parametrize("n_images, d", [(100, 64), (40, 784)])  # more images than pixels, fewer
def test_all_components_rebuild_any_input_exactly(n_images, d):
    x = low_rank(n_images + 10, d, 5, 0.1, seed=1)
    train, held_out = x[:n_images], x[n_images:]
    pca = fit_pca(train)
    assert pca.components.shape == (d, d) and pca.variances.shape == (d,)
    np.testing.assert_allclose(pca.reconstruct(train, d), train, atol=1e-10)
    np.testing.assert_allclose(pca.reconstruct(held_out, d), held_out, atol=1e-10)
    # truncating short of the data's rank does not rebuild it
    assert np.abs(pca.reconstruct(train, 3) - train).max() > 1e-3


def test_rank_deficient_class_has_zero_variance_beyond_its_rank():
    x = low_rank(40, 784, 5, 0.1, seed=2)  # centred rank is at most 39
    pca = fit_pca(x)
    assert (pca.variances[:39] > 1e-8).all()
    assert pca.variances[39:].max() < 1e-12 * pca.variances[0]
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(784), atol=1e-10)


def test_basis_is_orthonormal_and_variances_descend():
    pca = fit_pca(low_rank(200, 30, 4, 0.05, seed=3))
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(30), atol=1e-12)
    assert (np.diff(pca.variances) <= 1e-15).all() and (pca.variances >= 0).all()


def test_mean_squared_error_with_n_components_is_the_discarded_variance():
    x = low_rank(500, 20, 6, 0.2, seed=4)
    pca = fit_pca(x)
    errors = []
    for n in range(1, 21):
        mse = np.mean(np.sum((x - pca.reconstruct(x, n)) ** 2, axis=1))
        np.testing.assert_allclose(mse, pca.variances[n:].sum(), atol=1e-12)
        errors.append(mse)
    assert (np.diff(errors) <= 1e-12).all() and errors[0] > 10 * errors[5]


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_truncated_rebuild_matches_a_refit_by_sklearn(n):
    x = low_rank(300, 16, 10, 0.1, seed=5)
    ours = fit_pca(x).reconstruct(x[:20], n)
    ref = PCA(n_components=n, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours, ref.inverse_transform(ref.transform(x[:20])), atol=1e-10)


def test_component_signs_are_fixed():
    pca = fit_pca(low_rank(100, 12, 3, 0.1, seed=6))
    biggest = pca.components[np.arange(12), np.abs(pca.components).argmax(axis=1)]
    assert (biggest > 0).all()
    flipped = fit_pca(low_rank(100, 12, 3, 0.1, seed=6)[::-1])  # same data, other row order
    np.testing.assert_allclose(flipped.components[:3], pca.components[:3], atol=1e-8)


@pytest.mark.parametrize("n", [0, 17, -1, 2.0, True])
def test_number_of_components_must_be_in_1_to_d(n):
    pca = fit_pca(low_rank(50, 16, 3, 0.1, seed=7))
    with pytest.raises(PCAError, match=r"integer in 1\.\.16"):
        pca.reconstruct(np.zeros((1, 16)), n)


def test_fit_refuses_empty_or_non_finite_data():
    with pytest.raises(PCAError, match="non-empty, finite"):
        fit_pca(np.empty((0, 5)))
    with pytest.raises(PCAError, match="non-empty, finite"):
        fit_pca(np.array([[0.0, np.nan]]))


# ----------------------------------------------------------------------------- PPCA
def test_ppca_noise_is_the_mean_discarded_eigenvalue_and_top_eigenvalues_are_kept():
    pca = fit_pca(low_rank(400, 10, 3, 0.1, seed=8))
    for q in (1, 3, 6, 9):
        model = pca.ppca(q)
        assert model.weights.shape == (10, q)
        assert model.noise_variance == pytest.approx(pca.variances[q:].mean(), rel=1e-12)
        eig = np.sort(np.linalg.eigvalsh(model.covariance()))[::-1]
        np.testing.assert_allclose(eig[:q], pca.variances[:q], rtol=1e-10)
        np.testing.assert_allclose(eig[q:], model.noise_variance, rtol=1e-8)


def test_ppca_matches_sklearn_up_to_its_n_minus_1_normalisation():
    x = low_rank(300, 12, 3, 0.1, seed=9)
    ours = fit_pca(x).ppca(3).covariance()
    ref = PCA(n_components=3, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours * len(x) / (len(x) - 1), ref.get_covariance(), atol=1e-12)


def test_ppca_samples_have_the_model_covariance():
    rng = np.random.default_rng(10)  # rank-2 signal plus isotropic noise of variance 0.25
    signal = rng.standard_normal((400, 2)) @ rng.standard_normal((2, 6)) * 2
    data = signal + 0.5 * rng.standard_normal((400, 6))
    pca = fit_pca(data)
    model = pca.ppca(2)
    assert 0.15 < model.noise_variance < 0.35
    samples = model.sample(100_000, np.random.default_rng(0))
    assert samples.shape == (100_000, 6)
    np.testing.assert_allclose(samples.mean(axis=0), model.mean, atol=0.05)
    cov, expected = np.cov(samples, rowvar=False), model.covariance()
    assert np.abs(cov - expected).max() < 0.03 * np.abs(expected).max()
    # the isotropic noise is really there: off the span of W the samples have variance sigma^2
    off_span = (samples - model.mean) @ pca.components[2:].T
    np.testing.assert_allclose(np.cov(off_span, rowvar=False), model.noise_variance * np.eye(4), atol=0.01)


def test_ppca_sampling_is_seeded():
    model = fit_pca(low_rank(100, 8, 2, 0.1, seed=11)).ppca(2)
    a = model.sample(50, np.random.default_rng(3))
    b = model.sample(50, np.random.default_rng(3))
    c = model.sample(50, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_ppca_components_must_leave_some_out():
    pca = fit_pca(low_rank(100, 8, 2, 0.1, seed=12))
    with pytest.raises(PCAError, match=r"1\.\.7"):
        pca.ppca(8)


# ----------------------------------------------------------------------------- per class
def test_per_class_rebuild_keeps_order_labels_and_uses_each_class_model():
    x, y = digits(60)
    model = PerClassPCA.fit(x, y, (-1.0, 1.0))
    assert sorted(model.models) == [0, 1, 2]
    order = np.random.default_rng(0).permutation(len(y))
    rebuilt, labels = model.reconstruct(x[order], y[order], 2)
    assert rebuilt.shape == x.shape and rebuilt.dtype == np.float32
    assert np.array_equal(labels, y[order])
    for i in range(0, len(y), 17):
        c = int(y[order][i])
        own = model.models[c].reconstruct(x[order][i].reshape(1, -1), 2)
        np.testing.assert_allclose(rebuilt[i].ravel(), np.clip(own[0], -1, 1), atol=1e-6)
    full, _ = model.reconstruct(x, y, 16)
    np.testing.assert_allclose(full, x, atol=1e-6)


def test_rebuilding_one_class_with_another_class_model_is_worse():
    x, y = digits(60)
    model = PerClassPCA.fit(x, y, (-1.0, 1.0))
    own, _ = model.reconstruct(x[y == 0], y[y == 0], 2)
    other, _ = model.reconstruct(x[y == 0], np.ones(60, np.uint8), 2)
    assert np.mean((own - x[y == 0]) ** 2) < 0.2 * np.mean((other - x[y == 0]) ** 2)


def test_per_class_samples_have_exact_counts_range_and_seed():
    x, y = digits(60)
    model = PerClassPCA.fit(x, y, (-1.0, 1.0))
    images, labels = model.sample([5, 0, 7], 2, np.random.default_rng(1))
    assert images.shape == (12, 4, 4) and images.dtype == np.float32
    assert labels.tolist() == [0] * 5 + [2] * 7
    assert images.min() >= -1.0 and images.max() <= 1.0
    again, _ = model.sample([5, 0, 7], 2, np.random.default_rng(1))
    assert np.array_equal(images, again)
    # samples are new: none equals a training image, and each class keeps its own mean
    assert np.abs(images[:, None] - x[None]).reshape(12, len(x), -1).max(axis=2).min() > 1e-3
    many, many_labels = model.sample([2000, 2000, 2000], 2, np.random.default_rng(2))
    for c in range(3):
        np.testing.assert_allclose(many[many_labels == c].mean(axis=0), x[y == c].mean(axis=0), atol=0.05)


def test_samples_are_clipped_to_the_pixel_range():
    x, y = digits(30)
    x01 = (x + 1) / 2
    model = PerClassPCA.fit(x01, y, (0.0, 1.0))
    images, _ = model.sample([3000, 3000, 3000], 1, np.random.default_rng(0))
    assert images.min() == 0.0 or images.max() == 1.0  # something needed clipping ...
    assert images.min() >= 0.0 and images.max() <= 1.0  # ... and was clipped


def test_per_class_errors():
    x, y = digits(20)
    with pytest.raises(PCAError, match="outside the range"):
        PerClassPCA.fit(((x + 1) * 127.5).astype(np.uint8), y, (-1.0, 1.0))
    with pytest.raises(PCAError, match="low < high"):
        PerClassPCA.fit(x, y, (1.0, -1.0))
    model = PerClassPCA.fit(x, y, (-1.0, 1.0))
    with pytest.raises(PCAError, match="no PCA fitted for class 5"):
        model.sample([1, 0, 0, 0, 0, 3], 2, np.random.default_rng(0))
    with pytest.raises(PCAError, match="no PCA fitted for class 7"):
        model.reconstruct(x[:3], np.array([0, 7, 1]), 2)
    with pytest.raises(PCAError, match="non-negative integers"):
        model.sample([1, -1, 0], 2, np.random.default_rng(0))
    with pytest.raises(PCAError, match="labels"):
        model.reconstruct(x[:3], y[:2], 2)
    assert issubclass(PCAError, ValueError) and issubclass(PCAError, PipelineError)


# ----------------------------------------------------------------------------- saturation
NS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
ACC = [80.0, 88.0, 93.0, 96.0, 97.5, 98.3, 98.9, 99.0, 98.8]


@pytest.mark.parametrize(
    "tolerance, expected", [(0.5, 64), (1.0, 32), (1.5, 16), (0.05, 128), (0.0, 128), (100.0, 1)]
)
def test_saturation_is_the_smallest_n_within_tolerance_of_the_best(tolerance, expected):
    assert saturation_point(NS, ACC, tolerance) == expected


def test_saturation_ignores_order_and_takes_the_smaller_n_on_ties():
    order = np.random.default_rng(0).permutation(len(NS))
    assert saturation_point([NS[i] for i in order], [ACC[i] for i in order], 0.5) == 64
    assert saturation_point([64, 8, 16], [0.9, 0.9, 0.8], 0.0) == 8
    assert saturation_point([4], [0.1], 0.0) == 4


@pytest.mark.parametrize(
    "ns, scores, tolerance, message",
    [
        ([], [], 0.5, "at least one"),
        ([1, 2], [0.5], 0.5, "as many scores"),
        ([1, 2], [0.5, float("nan")], 0.5, "finite"),
        ([1, 2], [0.5, 0.6], -0.1, "tolerance"),
        ([1, 2], [0.5, 0.6], float("inf"), "tolerance"),
    ],
)
def test_saturation_errors(ns, scores, tolerance, message):
    with pytest.raises(PCAError, match=message):
        saturation_point(ns, scores, tolerance)


def test_fid_saturation_reads_lower_as_better():
    assert saturation_point([1, 8, 64, 256], [90.0, 20.0, 1.5, 0.9], 1.0, higher_is_better=False) == 64
    assert saturation_point([1, 8, 64, 256], [90.0, 20.0, 1.5, 0.9], 0.1, higher_is_better=False) == 256


def test_global_pca_is_blind_to_the_label_and_rebuilds_exactly_with_every_component():
    from mnistgan.pca import GlobalPCA

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 4, 4)).astype(np.float32)
    model = GlobalPCA.fit(x, (-1.0, 1.0))
    np.testing.assert_allclose(model.reconstruct(x, 16), x, atol=1e-5)
    one = model.reconstruct(x, 1)
    assert one.shape == x.shape and one.dtype == np.float32
    # one basis for all: the 1-component rebuild of a digit is the same whatever class it is said to be
    per_class = PerClassPCA.fit(x, np.arange(40) % 2, (-1.0, 1.0))
    a, _ = per_class.reconstruct(x[:1], np.array([0]), 1)
    b, _ = per_class.reconstruct(x[:1], np.array([1]), 1)
    assert not np.allclose(a, b)  # ...unlike per class, where the label picks the basis
    np.testing.assert_allclose(model.reconstruct(x[:1], 1), one[:1])
