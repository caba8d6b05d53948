"""2 x 2 max-pooling with torch's exact numbers, faster on a CPU: the LeNet's pooling layers.

:class:`MaxPool2x` replaces ``nn.MaxPool2d(2)`` in the LeNet (models/lenet.py), the scorer of
every generator and the classifier of every hybrid run. It gives the same outputs and the same
gradients bit for bit, so the LeNet trains, scores and loads exactly as with torch's layer (pooling
has no weights: state_dicts are the same). tests/unit/models/test_layers.py checks values, indices and gradients
against torch's kernel, with ties, odd sizes, float32 and bfloat16, and a whole training run.

Why by hand. torch's CPU max-pooling always computes the argmax indices, also under no_grad
where nothing reads them, and its kernel is slow on the LeNet's maps: with this layer both the
scorer and a LeNet training step are faster on a CPU (docs/performance.md). No library offers
it. The GANs keep torch's layers: their training steps (bfloat16, 7 x 7 maps in the CCGAN's
discriminator) are no faster with it (docs/performance.md).

How. The values are the maximum of the four strided views of each 2 x 2 window, which is exact
(a maximum does no arithmetic). Under autograd the indices are torch's too (the first maximum in
the window's row-major order, as torch's kernel scans it), and the backward is torch's own
``max_pool2d_with_indices_backward`` fed them, so gradients are torch's. A NaN input gives a
NaN output as in torch, though possibly another index (training stops on a non-finite loss).
"""

from __future__ import annotations

import torch
from torch import nn


def _windows(x: torch.Tensor):
    """The four corners of every 2 x 2 window (floor mode: an odd last row/column is dropped)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2], x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]


def max_pool2x(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)``'s values, without indices."""
    top_left, top_right, bottom_left, bottom_right = _windows(x)
    return torch.maximum(torch.maximum(top_left, top_right), torch.maximum(bottom_left, bottom_right))


def max_pool2x_with_indices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.max_pool2d_with_indices(x, 2)``: values and torch's flat indices into each H x W map."""
    top_left, top_right, bottom_left, bottom_right = _windows(x)
    top, bottom = torch.maximum(top_left, top_right), torch.maximum(bottom_left, bottom_right)
    down = bottom > top  # ties go to the top row, which torch scans first ...
    right = torch.where(down, bottom_right > bottom_left, top_right > top_left)  # ... and the left column
    h, w = top.shape[-2:]
    width = x.shape[-1]
    corner = (torch.arange(h, device=x.device) * (2 * width)).view(h, 1) + torch.arange(0, 2 * w, 2, device=x.device)
    return torch.maximum(top, bottom), corner + down * width + right


class _MaxPool2x(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        values, indices = max_pool2x_with_indices(x)
        ctx.save_for_backward(x, indices)
        ctx.mark_non_differentiable(indices)
        return values

    @staticmethod
    def backward(ctx, grad):
        x, indices = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)


class MaxPool2x(nn.Module):
    """``nn.MaxPool2d(2)`` for (N, C, H, W) inputs: the same values and gradients, faster on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _MaxPool2x.apply(x)
        return max_pool2x(x)
