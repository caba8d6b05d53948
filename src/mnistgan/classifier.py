"""Train and load LeNet classifiers: the fixed scorer, and later the hybrid-data classifiers.

The training set lives on the device as one tensor and batches are drawn from a seeded
permutation (no DataLoader, no per-step host sync), so the same loop is fast on CPU and GPU.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from mnistgan import progress
from mnistgan.errors import PipelineError, first_line
from mnistgan.files import atomic_path, load_npz, save_npz
from mnistgan.metrics.scores import gaussian_stats, lenet_outputs, to_model_input
from mnistgan.models.lenet import LeNet


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float


@dataclass
class TrainResult:
    model: LeNet
    history: list[EpochStats] = field(default_factory=list)


def train_classifier(
    x_train, y_train, x_test, y_test, *,
    epochs: int, batch_size: int, lr: float, lr_decay: float = 1.0,
    channels=(32, 64), hidden=(256, 84), seed: int = 0,
    device: torch.device | str = "cpu", eval_batch_size: int = 1000,
    on_epoch: Callable[[EpochStats], None] | None = None, name: str = "classifier",
) -> TrainResult:
    """Train a LeNet with Adam and cross-entropy; evaluate on the test set after every epoch.

    ``x_*`` are uint8 (N, 28, 28) or float in [-1, 1]; ``y_*`` integer labels. ``name``
    labels the progress within an epoch (progress.py).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model = LeNet(tuple(channels), tuple(hidden)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # one kernel per step: faster on CPU and GPU
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")

    x = to_model_input(x_train).to(device)
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.long).to(device)
    n = len(y)
    if n == 0:
        raise PipelineError("classifier training set is empty")
    result = TrainResult(model)
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        with progress.steps(-(-n // batch_size), f"{name}: epoch {epoch}/{epochs}") as bar:
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                logits = model(x[idx])
                loss = loss_fn(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                (loss / len(idx)).backward()
                opt.step()
                loss_sum += loss.detach()
                correct += (logits.detach().argmax(1) == y[idx]).sum()
                bar.update()  # a count, no host sync
        sched.step()
        test_loss, test_acc = evaluate(model, x_test, y_test, eval_batch_size, device)
        stats = EpochStats(epoch, float(loss_sum) / n, int(correct) / n, test_loss, test_acc)
        if not np.isfinite(stats.train_loss):
            raise PipelineError(f"classifier loss became {stats.train_loss} at epoch {epoch}")
        result.history.append(stats)
        if on_epoch:
            on_epoch(stats)
    return result


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 1000, device="cpu") -> np.ndarray:
    """Class probabilities (float64) for ``images``."""
    return lenet_outputs(model, images, batch_size, device)[1]


@torch.no_grad()
def evaluate(model: nn.Module, images, labels, batch_size: int = 1000, device="cpu") -> tuple[float, float]:
    """Mean cross-entropy and accuracy on a labelled set."""
    probs = predict(model, images, batch_size, device)
    labels = np.asarray(labels, dtype=np.int64)
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
    return float(nll.mean()), float(np.mean(probs.argmax(1) == labels))


# ----------------------------------------------------------------------------- the scorer on disk
WEIGHTS, CONFIG, STATS = "lenet.pt", "config.json", "test_stats.npz"


def save_scorer(out_dir: Path, model: LeNet, channels, hidden, features_test: np.ndarray) -> None:
    """Write the scorer directory atomically: state_dict, constructor args, real-test feature stats."""
    mu, sigma = gaussian_stats(features_test)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        torch.save(model.state_dict(), tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps({"channels": list(channels), "hidden": list(hidden)}) + "\n")
        save_npz(tmp / STATS, mu=mu, sigma=sigma)


def load_scorer(model_dir: str | Path, device="cpu") -> tuple[LeNet, tuple[np.ndarray, np.ndarray]]:
    """The fixed LeNet scorer (eval mode) and its (mu, sigma) on the real test set."""
    model_dir = Path(model_dir)
    try:
        cfg = json.loads((model_dir / CONFIG).read_text())
        state = torch.load(model_dir / WEIGHTS, map_location=device, weights_only=True)
        stats = load_npz(model_dir / STATS)
        model = LeNet(tuple(cfg["channels"]), tuple(cfg["hidden"])).to(device)
        model.load_state_dict(state)
        ref = (stats["mu"], stats["sigma"])
    except FileNotFoundError as exc:
        raise PipelineError(f"LeNet scorer missing: {exc.filename} (run `dvc repro train_lenet`)") from None
    except (OSError, KeyError, ValueError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise PipelineError(f"{model_dir}: not a LeNet scorer ({first_line(exc)})") from None
    model.eval()
    return model, ref
