"""DCGAN/CCGAN networks (report 000): shapes, sizes, conditioning and virtual batch normalisation."""

import pytest
import torch

from mnistgan.models.dcgan import Discriminator, Generator, VirtualBatchNorm


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("n_classes", [0, 10])
@pytest.mark.parametrize("width,depth", [(1, 1), (2, 3)])
def test_shapes(width, depth, n_classes):
    g, d = Generator(width=width, n_classes=n_classes), Discriminator(width, depth, n_classes)
    z, labels = torch.randn(5, 100), torch.arange(5) if n_classes else None
    x = g(z, labels)
    assert x.shape == (5, 1, 28, 28)
    assert x.abs().max() <= 1.0  # tanh
    assert d(x, labels).shape == (5,)


def test_report_sizes_at_f1_d1():
    """Report 000, section 2.3: G ~7M, D ~310k parameters at F = 1, D = 1 (we allow 15%)."""
    assert n_params(Generator()) == pytest.approx(7_000_000, rel=0.15)
    assert n_params(Discriminator()) == pytest.approx(310_000, rel=0.15)


def test_sizes_grow_with_width_and_depth():
    g = [n_params(Generator(width=f)) for f in (1, 2, 3)]
    d_width = [n_params(Discriminator(width=f)) for f in (1, 2, 3)]
    d_depth = [n_params(Discriminator(depth=k)) for k in (1, 2, 3)]
    for sizes in (g, d_width, d_depth):
        assert sizes == sorted(set(sizes))


def test_conditioning_enters_both_nets():
    torch.manual_seed(0)
    g, d = Generator(n_classes=10).eval(), Discriminator(n_classes=10).eval()
    z = torch.randn(4, 100)
    same_z = [g(z, torch.full((4,), c)) for c in (3, 7)]
    assert not torch.allclose(*same_z)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert not torch.allclose(d(x, torch.full((4,), 3)), d(x, torch.full((4,), 7)))
    assert d.net[0].in_channels == 2  # the label map is the second channel


def test_vbn_output_of_one_example_ignores_the_rest_of_its_batch():
    """With VBN every example is normalised by the fixed reference batch only, in training mode too."""
    torch.manual_seed(0)
    g = Generator(n_classes=10, vbn_ref=8)
    g.set_reference(torch.randn(8, 100), torch.arange(8))
    z, labels = torch.randn(6, 100), torch.arange(6)
    alone = g(z[:1], labels[:1])
    in_batch = g(z, labels)[:1]
    torch.testing.assert_close(alone, in_batch, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for m in g.modules())
    d = Discriminator(vbn_ref=4)
    d.set_reference(torch.rand(4, 1, 28, 28))
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(d(x[:1]), d(x)[:1], rtol=1e-5, atol=1e-5)


def test_vbn_normalises_with_reference_statistics():
    vbn = VirtualBatchNorm(3, n_ref=4)
    ref, x = torch.randn(4, 3) * 5 + 2, torch.randn(2, 3)
    out = vbn(torch.cat([ref, x]))
    torch.testing.assert_close(out[:4].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    expected = (x - ref.mean(0)) / torch.sqrt(ref.var(0, unbiased=False) + vbn.eps)
    torch.testing.assert_close(out[4:], expected)
