"""Pick the compute device: cuda, then mps, then cpu; ``$MNISTGAN_DEVICE`` overrides params."""

from __future__ import annotations

import os

import torch

from mnistgan.errors import PipelineError


def select(preference: str = "auto") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda``/``mps`` (env ``MNISTGAN_DEVICE`` wins) to a device."""
    pref = os.environ.get("MNISTGAN_DEVICE", "").strip() or preference
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cuda" and not torch.cuda.is_available():
        raise PipelineError("device 'cuda' requested but torch sees no CUDA device")
    if pref == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PipelineError("device 'mps' requested but it is not available")
    if pref not in ("cpu", "cuda", "mps"):
        raise PipelineError(f"unknown device {pref!r} (use auto, cpu, cuda or mps)")
    return torch.device(pref)


def describe(device: torch.device) -> str:
    """Human-readable device name for metrics and the report."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return device.type
