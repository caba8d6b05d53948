import numpy as np
import pytest

from mnistgan.data import domains


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


def test_negative_twice_is_identity(images):
    np.testing.assert_array_equal(domains.negative(domains.negative(images)), images)
    assert domains.negative(np.zeros((1, 28, 28), np.uint8)).min() == 255


def test_four_rotations_are_identity_and_one_is_not(images):
    x = images
    for _ in range(4):
        x = domains.rotate(x)
    np.testing.assert_array_equal(x, images)
    assert not np.array_equal(domains.rotate(images), images)
    # counter-clockwise: the top-right pixel moves to the top-left
    one = np.zeros((1, 28, 28), np.uint8)
    one[0, 0, 27] = 255
    assert domains.rotate(one)[0, 0, 0] == 255


def test_edge_of_blank_is_blank_and_of_a_dot_is_its_ring():
    assert not domains.edge(np.zeros((2, 28, 28), np.uint8)).any()
    dot = np.zeros((1, 28, 28), np.uint8)
    dot[0, 10, 10] = 200
    e = domains.edge(dot)[0]
    assert e[10, 10] == 0  # dilation minus image is zero at the maximum itself
    assert (e[9:12, 9:12] == 200).sum() == 8 and e.sum() == 8 * 200


def test_edge_is_per_image():
    x = np.zeros((2, 28, 28), np.uint8)
    x[0, 5, 5] = 255
    assert not domains.edge(x)[1].any()


def test_transform_lookup():
    with pytest.raises(ValueError, match="unknown domain 'blur'"):
        domains.transform("blur", np.zeros((1, 28, 28), np.uint8))
    assert set(domains.TRANSFORMS) == {"rotate", "negative", "edge"}
