"""MaxPool2x (models/layers.py) is torch's nn.MaxPool2d(2) bit for bit: values, indices,
gradients, and a whole LeNet training run and its scores (against a copy with torch's pooling)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mnistgan import classifier
from mnistgan.metrics import scores
from mnistgan.models.layers import MaxPool2x, max_pool2x, max_pool2x_with_indices
from mnistgan.models.lenet import LeNet

DTYPES = (torch.float32, torch.bfloat16)


def _inputs(shape, dtype, seed=0):
    """Random values, and small integers where most windows hold ties (ReLU-like zeros too)."""
    gen = torch.Generator().manual_seed(seed)
    yield torch.randn(shape, generator=gen).to(dtype)
    yield torch.randint(-1, 3, shape, generator=gen).clamp(min=0).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (2, 5, 7, 7), (2, 3, 10, 9), (1, 1, 2, 2)])
def test_max_pool_values_and_indices_are_torchs(shape, dtype):
    for x in _inputs(shape, dtype):
        values, indices = F.max_pool2d_with_indices(x, 2)
        ours, our_indices = max_pool2x_with_indices(x)
        assert torch.equal(ours, values) and ours.dtype == values.dtype
        assert torch.equal(our_indices, indices)
        assert torch.equal(max_pool2x(x), values)
        assert torch.equal(MaxPool2x()(x), values)


def test_max_pool_takes_the_first_maximum_of_a_window_like_torch():
    x = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[0.0, 2.0], [2.0, 2.0]]], [[[0.0, 0.0], [3.0, 3.0]]]])
    assert max_pool2x_with_indices(x)[1].flatten().tolist() == [0, 1, 2]
    assert F.max_pool2d_with_indices(x, 2)[1].flatten().tolist() == [0, 1, 2]


def test_max_pool_of_a_channels_last_tensor():
    x = torch.randn(2, 6, 12, 12).contiguous(memory_format=torch.channels_last)
    assert torch.equal(max_pool2x_with_indices(x)[1], F.max_pool2d_with_indices(x, 2)[1])
    assert torch.equal(max_pool2x(x), F.max_pool2d(x, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (2, 5, 7, 7)])
def test_max_pool_gradients_are_torchs(shape, dtype):
    for x in _inputs(shape, dtype, seed=1):
        weights = torch.randn(F.max_pool2d(x, 2).shape, generator=torch.Generator().manual_seed(2)).to(dtype)
        grads = []
        for layer in (nn.MaxPool2d(2), MaxPool2x()):
            leaf = x.clone().requires_grad_(True)
            (layer(leaf) * weights).sum().backward()
            grads.append(leaf.grad)
        assert torch.equal(grads[0], grads[1])


def _with_torch_layers(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (same weights) whose MaxPool2x layers are torch's nn.MaxPool2d(2)."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, MaxPool2x):
                setattr(module, name, nn.MaxPool2d(2))
    return model


def _uses_torch_layers(model: nn.Module) -> bool:
    kinds = {type(m) for m in model.modules()}
    return nn.MaxPool2d in kinds and MaxPool2x not in kinds


def _digits(n=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=gen) * 2 - 1), torch.randint(10, (n,), generator=gen)


def test_lenet_trains_and_scores_exactly_as_with_torchs_pooling(monkeypatch):
    x, y = _digits()
    x_img = ((x.squeeze(1) + 1) * 127.5).round().to(torch.uint8).numpy()
    kwargs = dict(epochs=2, batch_size=16, lr=1e-3, lr_decay=0.6, seed=3, channels=(4, 8), hidden=(16, 12))
    ours = classifier.train_classifier(x_img, y.numpy(), x_img[:32], y.numpy()[:32], **kwargs)
    monkeypatch.setattr(classifier, "LeNet", lambda *a, **k: _with_torch_layers(LeNet(*a, **k)))
    theirs = classifier.train_classifier(x_img, y.numpy(), x_img[:32], y.numpy()[:32], **kwargs)
    assert MaxPool2x in {type(m) for m in ours.model.modules()} and _uses_torch_layers(theirs.model)
    assert [vars(e) for e in ours.history] == [vars(e) for e in theirs.history]
    for a, b in zip(ours.model.state_dict().values(), theirs.model.state_dict().values()):
        assert torch.equal(a, b)
    ours_out = scores.lenet_outputs(ours.model, x_img, 25)
    theirs_out = scores.lenet_outputs(theirs.model, x_img, 25)
    assert all((a == b).all() for a, b in zip(ours_out, theirs_out))
