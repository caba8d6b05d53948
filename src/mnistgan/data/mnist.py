"""MNIST: fetch with checksums, parse IDX, and build the prepared arrays.

Sources: the directory or URL in ``$MNIST_MIRROR`` first, then the public mirrors. A file that
is missing or unreachable at one source is tried at the next; a file that arrives but fails
its md5 stops everything (a corrupt mirror is reported, never silently replaced).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan.errors import PipelineError
from mnistgan.files import atomic_path

# Canonical md5 of each .gz (the same values torchvision checks).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PUBLIC_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
TIMEOUT_S = 20


class DataError(PipelineError):
    pass


class _Unavailable(Exception):
    """The file could not be had from one source (missing, unreachable): try the next."""


# ----------------------------------------------------------------------------- download
def sources_from_env() -> list[str]:
    """``$MNIST_MIRROR`` (if set) followed by the public mirrors.

    ``$MNISTGAN_PUBLIC_MIRRORS`` (space-separated, may be empty) replaces the public list,
    e.g. to forbid any network access in an offline test.
    """
    mirror = os.environ.get("MNIST_MIRROR", "").strip()
    public = os.environ.get("MNISTGAN_PUBLIC_MIRRORS")
    public_list = list(PUBLIC_MIRRORS) if public is None else public.split()
    return ([mirror] if mirror else []) + public_list


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_url(source: str) -> bool:
    return "://" in source


def _fetch_one(source: str, name: str, dest: Path) -> str:
    """Copy ``name`` from ``source`` to ``dest``; return a readable location. Raise _Unavailable."""
    if _is_url(source):
        url = source.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, open(dest, "wb") as out:
                shutil.copyfileobj(resp, out)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Unavailable(f"{url}: unreachable ({reason})") from None
        return url
    path = Path(source).expanduser() / name
    if not path.is_file():
        raise _Unavailable(f"{path}: no such file")
    shutil.copyfile(path, dest)
    return str(path)


def fetch(name: str, expected_md5: str, sources: list[str], dest: Path) -> str:
    """Fetch one file into ``dest`` from the first source that has it; verify its md5.

    Returns where it came from. Raises DataError (one line) if no source has it or if the
    copy that arrived has the wrong md5; ``dest`` does not exist afterwards in that case.
    """
    if not sources:
        raise DataError(f"{name}: no source to fetch from (set MNIST_MIRROR to a directory or URL)")
    tried = []
    for source in sources:
        try:
            where = _fetch_one(source, name, dest)
        except _Unavailable as exc:
            dest.unlink(missing_ok=True)
            tried.append(str(exc))
            continue
        got = md5sum(dest)
        if got != expected_md5:
            size = dest.stat().st_size
            dest.unlink(missing_ok=True)
            raise DataError(
                f"{name} from {where}: md5 {got} does not match the expected {expected_md5} "
                f"({size} bytes; the file is corrupt or truncated)"
            )
        return where
    raise DataError(f"{name}: not found at any source, expected md5 {expected_md5}; tried " + "; ".join(tried))


def download(out_dir: Path, sources: list[str], files: dict[str, str] = MNIST_FILES) -> dict[str, str]:
    """Fetch every file into ``out_dir`` atomically: all four verified files, or nothing."""
    origins = {}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, md5 in files.items():
            origins[name] = fetch(name, md5, sources, tmp / name)
    return origins


# ----------------------------------------------------------------------------- IDX
def read_idx(path: Path, magic: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Parse a gzip'd IDX file of unsigned bytes; check its magic number and shape."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({exc})") from None
    if len(raw) < 8:
        raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        raise DataError(f"{path}: IDX magic number {got_magic}, expected {magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape is not None and dims != tuple(shape):
        raise DataError(f"{path}: IDX shape {dims}, expected {tuple(shape)}")
    n = int(np.prod(dims))
    if len(raw) - header != n:
        raise DataError(f"{path}: IDX body has {len(raw) - header} bytes, header says {n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


@dataclass
class Split:
    x: np.ndarray  # (N, 28, 28) uint8
    y: np.ndarray  # (N,) uint8


def read_split(raw_dir: Path, split: str) -> Split:
    images, labels, n = SPLIT_FILES[split]
    x = read_idx(raw_dir / images, IMAGE_MAGIC, (n, 28, 28))
    y = read_idx(raw_dir / labels, LABEL_MAGIC, (n,))
    if y.max() > 9:
        raise DataError(f"{raw_dir / labels}: label {int(y.max())} outside 0..9")
    return Split(x, y)


# ----------------------------------------------------------------------------- subsets
def stratified_subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` items whose class proportions follow ``y`` (largest remainder)."""
    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    quota = allocate(counts, n)
    idx = [rng.choice(np.flatnonzero(y == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(idx))


def allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to ``weights`` summing exactly to ``total`` (largest remainder)."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def disjoint_halves(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into two disjoint, class-stratified halves (CoGAN domains 1 and 2)."""
    a, b = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        a.append(idx[: len(idx) // 2])
        b.append(idx[len(idx) // 2 :])
    return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


def class_counts(y: np.ndarray) -> np.ndarray:
    return np.bincount(y, minlength=10)
