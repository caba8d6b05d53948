"""Coupled GAN (report 004): weight sharing, output size and the pixel agreement score."""

import numpy as np
import pytest
import torch
from torch import nn

from mnistgan.data import domains
from mnistgan.gan import coupled, registry
from mnistgan.metrics import agreement
from mnistgan.models.cogan import MAX_SHARED, CoupledDiscriminator, CoupledGenerator


def tensors(module: nn.Module) -> list[torch.Tensor]:
    return list(module.parameters()) + list(module.buffers())


@pytest.mark.parametrize("shared", range(MAX_SHARED + 1))
def test_generator_shares_exactly_the_first_layers(shared):
    g = CoupledGenerator(shared_layers=shared, width=0.125)
    one, two = g.branch(0), g.branch(1)
    assert len(one) == len(two) == MAX_SHARED + 1
    for k in range(MAX_SHARED + 1):
        pairs = list(zip(tensors(one[k]), tensors(two[k])))
        if k < shared:
            assert one[k] is two[k] and all(a is b for a, b in pairs)
        else:
            assert all(a.data_ptr() != b.data_ptr() for a, b in pairs)


def test_generator_lands_on_28x28_and_rejects_bad_sharing():
    x1, x2 = CoupledGenerator(width=0.125)(torch.randn(3, 100))
    assert x1.shape == x2.shape == (3, 1, 28, 28)
    for bad in (-1, MAX_SHARED + 1):
        with pytest.raises(ValueError, match="shared_layers"):
            CoupledGenerator(shared_layers=bad)


def test_discriminator_shares_the_last_layers():
    d = CoupledDiscriminator()
    one, two = d.branch(0), d.branch(1)
    # conv 20 + max-pool per domain; conv 50 + max-pool, FC 500, PReLU, FC 1 shared
    assert [a is b for a, b in zip(one, two)] == [False, False] + [True] * (len(one) - 2)
    assert one[0].weight.data_ptr() != two[0].weight.data_ptr()
    x = torch.rand(2, 1, 28, 28)
    out1, out2 = d(x, x)
    assert out1.shape == out2.shape == (2,) and not torch.allclose(out1, out2)


def test_param_domains_match_the_transforms():
    assert registry.PAIRS == tuple(domains.TRANSFORMS)


@pytest.mark.parametrize("domain", registry.PAIRS)
def test_agreement_of_an_exact_transform_pair_is_one(domain):
    x = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    assert agreement.pixel_agreement(x, domains.transform(domain, x), domain) == 1.0


@pytest.mark.parametrize("domain", registry.PAIRS)
def test_agreement_of_unrelated_images_is_lower(domain):
    rng = np.random.default_rng(1)
    x1, x2 = (rng.integers(0, 256, (20, 28, 28), dtype=np.uint8) for _ in range(2))
    assert agreement.pixel_agreement(x1, domains.transform(domain, x2), domain) < 0.9


class RotatingPair(nn.Module):
    """A 'CoGAN generator' whose domain-2 image is exactly its domain-1 image rotated."""

    latent = 8

    def __init__(self, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng():  # its own weights: no test may depend on the order tests ran in
            torch.manual_seed(seed)
            self.fc = nn.Linear(self.latent, 28 * 28)

    def forward(self, z):
        x = torch.tanh(self.fc(z)).view(-1, 1, 28, 28)
        return x, torch.rot90(x, 1, (-2, -1))


def test_agreement_score_of_a_generator_pair_that_is_the_transform_is_one():
    s = coupled.agreement_scores(RotatingPair(), "rotate", n=50, seed=0)
    assert s["agreement"] == 1.0 and s["agreement_normalised"] == 1.0 and s["agreement_ci95"] == [1.0, 1.0]
    assert s["agreement_chance"] < 0.9 and s["pairs"] == 50
    assert coupled.agreement_scores(RotatingPair(), "negative", n=50, seed=0)["agreement"] < 0.9


def test_label_agreement_reads_both_domains_and_stands_beside_its_chance():
    def classify(x1, x2):  # a "scorer" whose two classes split the images at their median mean
        m1 = x1.reshape(len(x1), -1).mean(1)
        m2 = np.rot90(x2, -1, (-2, -1)).reshape(len(x2), -1).mean(1)
        return (m1 > np.median(m1)).astype(int), (m2 > np.median(m2)).astype(int)
    s = coupled.agreement_scores(RotatingPair(), "rotate", n=400, seed=0, classify=classify)
    assert s["label_agreement"] == 1.0
    assert 0.3 < s["label_agreement_chance"] < 0.7  # two classes, re-paired at random: about one half
    lo, hi = s["label_agreement_ci95"]
    assert 0.98 < lo < 1.0 == hi  # Wilson: not a zero-width interval at 400 of 400


def test_chance_level_is_the_same_samples_re_paired_and_normalised_maps_it_to_zero():
    rng = np.random.default_rng(0)
    x1 = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    x2 = domains.transform("negative", x1)
    s = agreement.pair_scores(x1, x2, "negative", seed=3)
    swap = agreement.derangement(200, 3)
    assert (swap != np.arange(200)).all() and sorted(swap) == list(range(200))  # every pair is broken
    assert s["agreement_chance"] == agreement.pixel_agreement(x1, x2[swap], "negative")
    assert s["agreement"] == 1.0 and abs(s["agreement_chance"] - 0.5) < 0.02  # random pixels: half agree
    unrelated = agreement.pair_scores(x1, x2[swap], "negative", seed=3)
    assert abs(unrelated["agreement_normalised"]) < 0.05  # re-paired samples score about chance
    lo, hi = unrelated["agreement_ci95"]
    assert lo < unrelated["agreement"] < hi


@pytest.mark.parametrize("shared", [0, 2, 4])
def test_a_linear_output_layer_lands_on_28_by_28_and_is_per_domain(shared):
    """The variant of claim 23: each domain's output is a fully connected layer from the whole last
    hidden map, so one output pixel depends on every position of it (a stroke can move)."""
    torch.manual_seed(0)
    g = CoupledGenerator(shared_layers=shared, width=0.0625, output_layer="linear")
    x1, x2 = g(torch.randn(3, 100))
    assert x1.shape == x2.shape == (3, 1, 28, 28) and x1.abs().max() <= 1
    last = [g.private[d][-1] for d in (0, 1)]
    assert all(isinstance(m[1], torch.nn.Linear) for m in last) and last[0][1] is not last[1][1]
    with pytest.raises(ValueError, match="output_layer"):
        CoupledGenerator(output_layer="fc")
