"""Trained generators on disk: ``generator.pt`` (a state_dict) beside ``config.json``
(the constructor's arguments and the run's info), so loading needs no pickled code."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnistgan.errors import PipelineError, first_line
from mnistgan.files import atomic_path, save_json
from mnistgan.gan import registry


def save_generator(directory: str | Path, generator: nn.Module, family: str, info: dict[str, Any]) -> None:
    """Write ``generator.pt`` (state_dict) and ``config.json`` (constructor kwargs + ``info``) atomically."""
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        torch.save(generator.state_dict(), tmp / "generator.pt")
        save_json(tmp / "config.json", {"family": family, "kwargs": generator.init_kwargs, **info})


def load_generator(directory: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator saved in ``directory`` by a train stage, in eval mode, and its config.

    Sample with ``generate(g, latent_noise(n, g.latent, seed), labels)``; for the CCGAN
    ``labels`` is a LongTensor of classes (``g.n_classes`` > 0).
    """
    directory = Path(directory)
    try:
        config = json.loads((directory / "config.json").read_text())
        generator = registry.FAMILIES[config["family"]].generator_class()(**config["kwargs"])
        state = torch.load(directory / "generator.pt", map_location="cpu", weights_only=True)
        generator.load_state_dict(state)
    except (OSError, KeyError, ValueError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise PipelineError(f"{directory}: not a saved generator ({first_line(exc)})") from None
    return generator.to(device).eval(), config
