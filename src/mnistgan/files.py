"""Atomic file and directory writes, so an interrupted stage never leaves a half-written output."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from mnistgan.errors import PipelineError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    Works for files and directories. On any exception (or a signal turned into one) the
    temporary is removed and ``path`` is left as it was before.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    try:
        yield target
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to ``path`` (uncompressed .npz) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_json(path: str | os.PathLike):
    """Parse a JSON file; a missing or malformed file is one PipelineError line."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: missing (run `dvc repro` for the stage that writes it)") from None
    except ValueError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc})") from None


def save_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_csv(path: str | os.PathLike, header: list[str], rows) -> None:
    """Write a small tidy CSV atomically (plots read these)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(",".join(header) + "\n")
            for row in rows:
                fh.write(",".join(_fmt(v) for v in row) + "\n")


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return str(v)
