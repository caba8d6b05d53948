"""Hybrid real/synthetic training sets: exact class counts, exact per-class real shares."""

from __future__ import annotations

import numpy as np
import pytest

from mnistgan.data.mnist import allocate, stratified_subset
from mnistgan.errors import PipelineError
from mnistgan.hybrid import (
    MNIST_TRAIN_CLASS_COUNTS,
    MixingError,
    fractions_by_class,
    hybrid_set,
    mnist_train_counts,
    real_counts,
    smallest_fraction_near_all_real,
)


def pool(per_class: list[int], sign: int, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 2): column 0 a unique id (> 0 real, < 0 synthetic), column 1 the label."""
    y = np.repeat(np.arange(len(per_class)), per_class)
    ids = sign * (np.arange(len(y)) + 1)
    return np.stack([ids, y], axis=1).astype(dtype), y.astype(np.uint8)


REAL = pool([50, 80, 60, 40, 70, 30, 60, 55, 45, 65], +1)  # 555 images, uneven classes
SYN = pool([100] * 10, -1)


def test_mnist_train_counts_are_mnist_and_scale_exactly():
    assert mnist_train_counts().tolist() == list(MNIST_TRAIN_CLASS_COUNTS)
    assert sum(MNIST_TRAIN_CLASS_COUNTS) == 60000
    small = mnist_train_counts(1000)
    assert small.sum() == 1000
    # class 1 is the largest class of MNIST train, class 5 the smallest
    assert small.argmax() == 1 and small.argmin() == 5
    assert np.abs(small - np.array(MNIST_TRAIN_CLASS_COUNTS) / 60).max() < 1
    assert mnist_train_counts(0).tolist() == [0] * 10


def test_mnist_train_counts_are_those_of_a_stratified_subset_of_mnist_train():
    mnist_like_y = np.repeat(np.arange(10), MNIST_TRAIN_CLASS_COUNTS)
    for n in (1000, 12345):
        keep = stratified_subset(mnist_like_y, n, np.random.default_rng(0))
        assert np.bincount(mnist_like_y[keep], minlength=10).tolist() == mnist_train_counts(n).tolist()


def test_default_counts_follow_real_class_proportions_exactly():
    mixed = hybrid_set(REAL, SYN, 300, 0.5, np.random.default_rng(0))
    expected = allocate(np.bincount(REAL[1]), 300)
    assert len(mixed.y) == 300
    assert np.bincount(mixed.y, minlength=10).tolist() == expected.tolist()


def test_requested_counts_are_met_exactly_and_rows_are_true_to_their_source():
    counts = np.array([10, 0, 7, 33, 1, 9, 20, 5, 8, 7])
    mixed = hybrid_set(REAL, SYN, int(counts.sum()), 0.3, np.random.default_rng(1), counts=counts)
    assert np.bincount(mixed.y, minlength=10).tolist() == counts.tolist()
    ids, labels = mixed.x[:, 0], mixed.x[:, 1]
    assert np.array_equal(labels, mixed.y)  # every image keeps its own label
    assert np.array_equal(mixed.is_real, ids > 0)  # the mask says where each row came from
    assert len(np.unique(ids)) == len(ids)  # drawn without replacement
    assert mixed.is_real.dtype == bool


def test_per_class_fractions_are_data_and_honoured_exactly():
    counts = np.full(10, 40)
    fractions = fractions_by_class(0.1, {0: 0.4})
    assert fractions == {0: 0.4, **{c: 0.1 for c in range(1, 10)}}
    mixed = hybrid_set(REAL, SYN, 400, fractions, np.random.default_rng(2), counts=counts)
    real_per_class = np.bincount(mixed.y[mixed.is_real], minlength=10)
    assert real_per_class.tolist() == [16] + [4] * 9
    assert np.bincount(mixed.y[~mixed.is_real], minlength=10).tolist() == [24] + [36] * 9


def test_rounding_is_half_up_per_class_and_counts_add_up():
    counts = np.array([5, 5, 5, 7, 3, 1, 0, 10, 9, 2])
    assert real_counts(counts, 0.5).tolist() == [3, 3, 3, 4, 2, 1, 0, 5, 5, 1]
    # 0.7 * 45 = 31.5 and 0.29 * 50 = 14.5 in decimal, just below in binary: still round up
    assert real_counts(np.array([45, 50, 5]), {0: 0.7, 1: 0.29, 2: 0.29}).tolist() == [32, 15, 1]
    for r in np.linspace(0, 1, 11):
        n_real = real_counts(counts, float(r))
        assert ((0 <= n_real) & (n_real <= counts)).all()
        assert abs(n_real.sum() - r * counts.sum()) <= len(counts) / 2


@pytest.mark.parametrize("r", [0.0, 0.1, 0.2, 0.5, 0.9, 1.0])
def test_sweep_over_r_keeps_size_and_classes(r):
    counts = allocate(np.bincount(REAL[1]), 200)
    mixed = hybrid_set(REAL, SYN, 200, r, np.random.default_rng(3), counts=counts)
    assert np.bincount(mixed.y, minlength=10).tolist() == counts.tolist()
    assert np.bincount(mixed.y[mixed.is_real], minlength=10).tolist() == real_counts(counts, r).tolist()


def test_r0_is_only_synthetic_and_r1_only_real_even_with_an_empty_other_pool():
    counts = mnist_train_counts(100)
    empty_real = (np.empty((0, 2), np.int64), np.empty(0, np.uint8))
    only_syn = hybrid_set(empty_real, SYN, 100, 0.0, np.random.default_rng(4), counts=counts)
    assert not only_syn.is_real.any() and (only_syn.x[:, 0] < 0).all()
    empty_syn = (np.empty((0, 2), np.int64), np.empty(0, np.uint8))
    only_real = hybrid_set(REAL, empty_syn, 100, 1.0, np.random.default_rng(4), counts=counts)
    assert only_real.is_real.all() and (only_real.x[:, 0] > 0).all()


def test_same_seed_same_set_other_seed_other_set():
    def draw(seed):
        return hybrid_set(REAL, SYN, 250, fractions_by_class(0.2, {3: 0.9}), np.random.default_rng(seed))

    a, b, c = draw(7), draw(7), draw(8)
    for field in ("x", "y", "is_real"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x, c.x)


def test_rows_are_shuffled_not_grouped_by_class_or_source():
    mixed = hybrid_set(REAL, SYN, 400, 0.5, np.random.default_rng(9))
    assert (np.diff(mixed.y.astype(int)) < 0).any()
    assert mixed.is_real[:200].any() and (~mixed.is_real[:200]).any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"real_fraction": 1.2}, r"real fraction must be a number in \[0, 1\]"),
        ({"real_fraction": -0.1}, r"real fraction must be a number in \[0, 1\]"),
        ({"real_fraction": float("nan")}, r"real fraction must be a number in \[0, 1\]"),
        ({"real_fraction": "0.5"}, r"real fraction must be a number"),
        ({"real_fraction": {**fractions_by_class(0.1), 2: 1.5}}, r"real fraction of class 2"),
        ({"real_fraction": {0: 0.4}}, r"missing \[1, 2, 3, 4, 5, 6, 7, 8, 9\]"),
        ({"real_fraction": {**fractions_by_class(0.1), 10: 0.5}}, r"unknown \[10\]"),
        ({"counts": np.full(10, 5)}, r"sum to 50, not to the total 100"),
        ({"counts": np.full(9, 5)}, r"one entry per class"),
        ({"counts": np.array([-1] + [11] * 9)}, r"non-negative integers"),
        ({"counts": np.full(10, 10.0)}, r"non-negative integers"),
        ({"total": -5}, r"total must be a non-negative integer"),
        # class 5 has 30 real images; 100% real of 100 class-5 images is too many
        ({"real_fraction": 1.0, "counts": np.array([0] * 5 + [100] + [0] * 4)},
         r"class 5 needs 100 real images but the real pool has only 30"),
        ({"real_fraction": 0.0, "counts": np.array([0] * 5 + [101] + [0] * 4), "total": 101},
         r"class 5 needs 101 synthetic images but the synthetic pool has only 100"),
    ],
)
def test_bad_requests_raise_one_clear_value_error(kwargs, message):
    args = {"total": 100, "real_fraction": 0.5, **kwargs}
    with pytest.raises(MixingError, match=message) as info:
        hybrid_set(REAL, SYN, rng=np.random.default_rng(0), **args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PipelineError)


def test_pools_of_different_format_are_refused_not_silently_upcast():
    real_uint8 = (REAL[0].astype(np.uint8), REAL[1])
    syn_float = (SYN[0].astype(np.float32), SYN[1])
    with pytest.raises(MixingError, match="convert one pool"):
        hybrid_set(real_uint8, syn_float, 100, 0.5, np.random.default_rng(0))
    with pytest.raises(MixingError, match="labels must be integers in 0..9"):
        hybrid_set(REAL, (SYN[0], SYN[1] + 5), 100, 0.5, np.random.default_rng(0))
    with pytest.raises(MixingError, match="labels of shape"):
        hybrid_set(REAL, (SYN[0], SYN[1][:-1]), 100, 0.5, np.random.default_rng(0))


def test_default_counts_need_a_real_pool():
    empty_real = (np.empty((0, 2), np.int64), np.empty(0, np.uint8))
    with pytest.raises(MixingError, match="give the per-class counts"):
        hybrid_set(empty_real, SYN, 100, 0.0, np.random.default_rng(0))


def test_fractions_by_class_refuses_unknown_classes():
    with pytest.raises(MixingError, match="unknown class 12"):
        fractions_by_class(0.1, {12: 0.4})


def test_fig9_smallest_fraction_near_all_real():
    curve = {0.0: 0.90, 0.1: 0.975, 0.2: 0.984, 0.5: 0.979, 1.0: 0.986}
    assert smallest_fraction_near_all_real(curve) == 0.2  # 0.984 >= 0.986 - 0.005; 0.975 is not
    assert smallest_fraction_near_all_real(curve, tolerance=0.02) == 0.1
    assert smallest_fraction_near_all_real({1.0: 0.5, 0.3: 0.1}) == 1.0
    with pytest.raises(MixingError, match="no r = 1.0"):
        smallest_fraction_near_all_real({0.0: 0.9})
