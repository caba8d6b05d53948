"""Scores of generated digits with the fixed LeNet: pure functions, features -> stats -> number.

* label accuracy: the scorer's label against the intended class (report 000's "inception score");
* Inception Score: exp(E_x KL(p(y|x) || p(y))), at most 10 for ten classes;
* Frechet distance between Gaussians fitted to LeNet penultimate features ("LeNet-FID").
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg

from mnistgan.metrics.intervals import proportion_ci95


def to_model_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N,28,28) in [0,255] or float in [-1,1] -> float32 (N,1,28,28) in [-1,1]."""
    x = torch.as_tensor(images)
    if x.dtype == torch.uint8:
        x = x.float().div_(127.5).sub_(1.0)
    x = x.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x


@torch.no_grad()
def lenet_outputs(model: torch.nn.Module, images, batch_size: int = 1000,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (float64) and class probabilities (float64) of ``images``.

    The model runs in eval mode, so each image's output does not depend on its batch.
    """
    was_training = model.training
    model.eval()
    feats, probs = [], []
    x = to_model_input(images)
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device)
        f = model.embed(xb)
        feats.append(f.double().cpu())
        probs.append(torch.softmax(model.head(f).double(), dim=1).cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def label_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose most likely class is the intended label."""
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp(mean_x KL(p(y|x) || p(y))) with p(y) the mean prediction over all samples."""
    p = np.asarray(probs, dtype=np.float64)
    py = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p + eps) - np.log(py + eps)), axis=1)
    return float(np.exp(kl.mean()))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, d) features."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}).

    Tr((S1 S2)^{1/2}) is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2), which avoids the
    complex round-off of a general matrix square root.
    """
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    root1 = _psd_sqrt(np.asarray(sigma1, np.float64))
    middle = root1 @ np.asarray(sigma2, np.float64) @ root1
    tr_covmean = np.sqrt(np.clip(linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean, 0.0))


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def score_samples(model, images, labels=None, ref_stats=None, batch_size: int = 1000, device="cpu",
                  intervals: bool = False, by_class: bool = False) -> dict:
    """All scores of a set of generated images: {'is', 'fid'?, 'lenet_acc'?}.

    ``intervals``: also ``samples`` (N) and, with labels, ``lenet_acc_ci95`` (the Wilson 95%
    interval). LeNet-FID is biased upwards by a small N, so FIDs are compared only at one N
    (the final scores of every generator use ``scoring.samples``). ``by_class`` (with labels):
    also ``lenet_acc_by_class`` and ``samples_by_class``, the accuracy and count of each
    intended class (which digits a conditional generator gets wrong).
    """
    feats, probs = lenet_outputs(model, images, batch_size, device)
    out = {"is": inception_score(probs)}
    if ref_stats is not None:
        mu, sigma = gaussian_stats(feats)
        out["fid"] = frechet_distance(mu, sigma, ref_stats[0], ref_stats[1])
    if labels is not None:
        out["lenet_acc"] = label_accuracy(probs, labels)
    if intervals:
        out["samples"] = int(len(probs))
        if labels is not None:
            out["lenet_acc_ci95"] = proportion_ci95(np.argmax(probs, axis=1) == np.asarray(labels))
    if by_class and labels is not None:
        right, labels = np.argmax(probs, axis=1) == np.asarray(labels), np.asarray(labels)
        classes = range(probs.shape[1])
        out["lenet_acc_by_class"] = [float(right[labels == c].mean()) if (labels == c).any() else None for c in classes]
        out["samples_by_class"] = [int((labels == c).sum()) for c in classes]
    return out
