"""Checkpoints of a GAN run, and the digests that say whether one may be resumed.

After every completed epoch the training loop atomically writes the weights, both optimisers,
the state of the RNG, the epoch and the history. A rerun with the same *identity* (everything
that determines the run but the number of epochs) resumes from it and ends bit-identical to an
uninterrupted run on the CPU; a checkpoint of another identity is ignored. Leaving ``epochs``
out of the identity means raising it continues a finished run instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import torch

from mnistgan.files import atomic_path


def run_digest(config, identity: dict[str, Any] | None) -> str:
    """sha256 of the run's identity and every training setting but the number of epochs."""
    settings = {k: v for k, v in asdict(config).items() if k != "epochs"}
    blob = json.dumps({"settings": settings, "identity": identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


CHECKPOINT_KEYS = {"digest", "epoch", "generator", "discriminator", "g_opt", "d_opt", "rng", "history"}


def save(path, digest, family, g_opt, d_opt, rng, history, averaged=None) -> None:
    """Write the run's whole state to ``path`` atomically (``averaged``: G's moving average, if any)."""
    state = {
        "digest": digest,
        "epoch": len(history),
        "generator": family.generator.state_dict(),
        "discriminator": family.discriminator.state_dict(),
        "g_opt": g_opt.state_dict(),
        "d_opt": d_opt.state_dict(),
        "rng": rng.get_state(),
        "history": history,
    }
    if averaged is not None:
        state["averaged"] = averaged.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def resume(path, digest, epochs, family, g_opt, d_opt, rng, device, name, averaged=None) -> list[dict[str, float]]:
    """Restore everything from ``path`` if it holds a usable checkpoint; return its history."""
    if not path or not Path(path).is_file():
        return []
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        print(f"{name}: ignoring unreadable checkpoint {path} ({exc}); starting fresh", file=sys.stderr)
        return []
    if not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state):
        print(f"{name}: ignoring checkpoint {path} that is not one of this loop's; starting fresh", file=sys.stderr)
        return []
    if state.get("digest") != digest:
        print(f"{name}: checkpoint {path} belongs to another configuration; starting fresh", file=sys.stderr)
        return []
    if state["epoch"] > epochs:
        print(f"{name}: checkpoint {path} is past epoch {epochs}; starting fresh", file=sys.stderr)
        return []
    if averaged is not None and "averaged" not in state:
        print(f"{name}: checkpoint {path} has no averaged generator; starting fresh", file=sys.stderr)
        return []
    family.generator.load_state_dict(state["generator"])
    if averaged is not None:
        averaged.load_state_dict(state["averaged"])
    family.discriminator.load_state_dict(state["discriminator"])
    g_opt.load_state_dict(state["g_opt"])
    d_opt.load_state_dict(state["d_opt"])
    rng.set_state(state["rng"].cpu())
    print(f"{name}: resuming after epoch {state['epoch']} from {path}", file=sys.stderr)
    return list(state["history"])


def file_digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the names and bytes of files (a directory: every file below it, sorted).

    Names are taken relative to the path given (a file: its name), so the digest does not
    change when the repository is moved or copied, e.g. into a DVC experiment's temp dir.
    """
    h = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update((f.relative_to(root).as_posix() if root.is_dir() else f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


# The packages whose code decides a run's numbers: networks, the loop and families, scores, the
# data and the scorer. Not the stage runner, progress display, file helpers or params schema.
NUMERIC_CODE = ("mnistgan.models", "mnistgan.gan", "mnistgan.metrics", "mnistgan.data", "mnistgan.classifier")


def code_digest() -> str:
    """Digest of the source of every loaded module whose code decides a run's numbers.

    Put into a run's identity, it makes a checkpoint resumable only by the code that wrote
    it: a rerun after a fix in the model, the loop or a score starts fresh instead of silently
    continuing stale weights or keeping stale per-epoch scores. Modules that only display,
    write or validate (``NUMERIC_CODE`` leaves them out) do not invalidate a checkpoint, and
    neither does another family's code, which a run never loads.
    """
    files = sorted({m.__file__ for name, m in list(sys.modules.items()) if getattr(m, "__file__", None)
                    and any(name == p or name.startswith(p + ".") for p in NUMERIC_CODE)})
    return file_digest(files)
