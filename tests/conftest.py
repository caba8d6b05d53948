"""Shared fixtures: tiny IDX files written by the tests themselves (no network, no MNIST)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

# Not DVCLIVE_TEST: dvclive 3.49 crashes in test mode with dvcyaml=False (os.fspath(False)),
# and the end-to-end tests need dvclive's real output files anyway.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str):
    """Import a script that is not a package module (a benchmark, a stage) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_report_header(config):
    """The free disk under the temporary directory: the end-to-end tests build Git+DVC repositories
    there, and a full disk fails a stage deep inside a test (it once did, in CI)."""
    import shutil
    import tempfile

    tmp = tempfile.gettempdir()
    return f"disk: {shutil.disk_usage(tmp).free / 2**30:.1f} GiB free under {tmp}"


@pytest.fixture(autouse=True)
def _seeded_global_rngs():
    """Each test starts from the same global RNG state, so none depends on which tests ran before
    it (a module built without a seed once drew weights that failed a test only in CI's order)."""
    import random

    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.asarray(array, dtype=np.uint8).tobytes()


def write_idx_gz(path: Path, array: np.ndarray, magic: int) -> str:
    """Write a gzip'd IDX file and return its md5."""
    path.write_bytes(gzip.compress(idx_bytes(array, magic), mtime=0))
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_mirror(tmp_path) -> tuple[Path, dict[str, str]]:
    """A mirror directory holding the four MNIST file names with tiny random content.

    Returns the directory and {file name: md5}. Train has 60 images, test 20.
    """
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5s = {}
    for prefix, n in (("train", 60), ("t10k", 20)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = np.arange(n, dtype=np.uint8) % 10
        md5s[f"{prefix}-images-idx3-ubyte.gz"] = write_idx_gz(mirror / f"{prefix}-images-idx3-ubyte.gz", x, 2051)
        md5s[f"{prefix}-labels-idx1-ubyte.gz"] = write_idx_gz(mirror / f"{prefix}-labels-idx1-ubyte.gz", y, 2049)
    return mirror, md5s


def shared_mnist() -> Path | None:
    """The genuine MNIST files, from $MNIST_MIRROR (a directory), if it holds them."""
    cand = os.environ.get("MNIST_MIRROR")
    if cand and "://" not in cand and (Path(cand) / "train-images-idx3-ubyte.gz").is_file():
        return Path(cand).resolve()
    return None


@pytest.fixture
def machine(monkeypatch):
    """A function that pretends the machine has (or lacks) CUDA and MPS; no env override
    (the mnistgan.pipeline.device and .bf16 tests)."""
    import torch

    monkeypatch.delenv("MNISTGAN_DEVICE", raising=False)

    def fake(cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return fake
