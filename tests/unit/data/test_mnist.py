import gzip

import numpy as np
import pytest

from mnistgan.data import mnist
from mnistgan.data.mnist import DataError

from conftest import idx_bytes, write_idx_gz


def test_download_copies_and_verifies(tiny_mirror, tmp_path):
    mirror, md5s = tiny_mirror
    out = tmp_path / "raw"
    origins = mnist.download(out, [str(mirror)], md5s)
    assert sorted(p.name for p in out.iterdir()) == sorted(md5s)
    assert all(mnist.md5sum(out / n) == m for n, m in md5s.items())
    assert origins["train-images-idx3-ubyte.gz"].startswith(str(mirror))


def test_wrong_md5_names_file_source_and_expectation_and_leaves_nothing(tiny_mirror, tmp_path):
    mirror, md5s = tiny_mirror
    bad = dict(md5s, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    out = tmp_path / "raw"
    with pytest.raises(DataError) as err:
        mnist.download(out, [str(mirror)], bad)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and str(mirror) in msg and "0" * 32 in msg
    assert "\n" not in msg
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [mirror]  # no temporary left behind either


def test_missing_file_falls_through_sources_then_fails(tiny_mirror, tmp_path):
    mirror, md5s = tiny_mirror
    empty = tmp_path / "empty"
    empty.mkdir()
    # Missing at the first source, present at the second: fine.
    mnist.download(tmp_path / "raw", [str(empty), str(mirror)], md5s)
    # Missing everywhere: one line naming the file and each source tried.
    (mirror / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: not found at any source") as err:
        mnist.download(tmp_path / "raw2", [str(empty), str(mirror)], md5s)
    assert str(empty) in str(err.value) and str(mirror) in str(err.value)
    assert not (tmp_path / "raw2").exists()


def test_unreachable_url_is_reported(tmp_path):
    with pytest.raises(DataError, match="unreachable"):
        mnist.fetch("x.gz", "0" * 32, ["http://127.0.0.1:9/nothing"], tmp_path / "x.gz")
    assert not (tmp_path / "x.gz").exists()


def test_corrupt_md5_is_not_replaced_by_a_later_source(tiny_mirror, tmp_path):
    mirror, md5s = tiny_mirror
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    name = "train-images-idx3-ubyte.gz"
    (corrupt / name).write_bytes((mirror / name).read_bytes()[:-10])  # truncated copy
    with pytest.raises(DataError, match="md5"):
        mnist.fetch(name, md5s[name], [str(corrupt), str(mirror)], tmp_path / name)


def test_read_idx_roundtrip(tmp_path):
    x = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    write_idx_gz(tmp_path / "a.gz", x, 2051)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "a.gz", 2051, (3, 28, 28)), x)


@pytest.mark.parametrize(
    "content, match",
    [
        (gzip.compress(idx_bytes(np.zeros((3, 28, 28)), 2049), mtime=0), "magic number 2049, expected 2051"),
        (gzip.compress(idx_bytes(np.zeros((3, 28, 27)), 2051), mtime=0), r"shape \(3, 28, 27\), expected \(3, 28, 28\)"),
        (gzip.compress(idx_bytes(np.zeros((3, 28, 28)), 2051)[:-5], mtime=0), "body has"),
        (gzip.compress(idx_bytes(np.zeros((3, 28, 28)), 2051), mtime=0)[:-20], "corrupt or truncated gzip"),
        (b"not a gzip file at all", "corrupt or truncated gzip"),
        (gzip.compress(b"\x00\x00", mtime=0), "too short"),
    ],
    ids=["magic", "shape", "short-body", "truncated-gzip", "not-gzip", "short-header"],
)
def test_read_idx_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        mnist.read_idx(path, 2051, (3, 28, 28))


def test_read_split_checks_the_expected_shape(tiny_mirror):
    mirror, _ = tiny_mirror  # the tiny mirror has 20 test images, not 10,000
    with pytest.raises(DataError, match=r"expected \(10000, 28, 28\)"):
        mnist.read_split(mirror, "test")


def test_allocate_sums_exactly_and_is_proportional():
    counts = mnist.allocate(np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]), 1000)
    assert counts.sum() == 1000
    # exact shares 98.72 112.37 99.30 102.18 97.37 90.35 98.63 104.42 97.52 99.15: the floors
    # sum to 996 and the four largest remainders (digits 0, 6, 8, 7) get one more each
    assert counts.tolist() == [99, 112, 99, 102, 97, 90, 99, 105, 98, 99]


def test_stratified_subset_keeps_proportions_and_is_seeded():
    y = np.repeat(np.arange(10), np.arange(10, 110, 10))
    a = mnist.stratified_subset(y, 110, np.random.default_rng(1))
    b = mnist.stratified_subset(y, 110, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 110
    assert np.bincount(y[a]).tolist() == mnist.allocate(np.bincount(y), 110).tolist()
    assert len(mnist.stratified_subset(y, 0, np.random.default_rng(0))) == len(y)


def test_disjoint_halves():
    y = np.repeat(np.arange(10), 7)
    a, b = mnist.disjoint_halves(y, np.random.default_rng(0))
    assert set(a).isdisjoint(b) and len(a) + len(b) == len(y)
    assert np.all(np.abs(np.bincount(y[a], minlength=10) - np.bincount(y[b], minlength=10)) <= 1)
