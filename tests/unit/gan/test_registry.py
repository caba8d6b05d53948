"""The family registry is the one place a GAN family is declared: a toy family added through it
alone builds, trains a step in the shared loop, saves and loads; and the three study families
keep to their own code (an edit to one reruns none of the others' stages)."""

import sys

import pytest
import torch
from torch import nn

from mnistgan.errors import PipelineError
from mnistgan.gan import loop, registry, store
from mnistgan.gan.family import BinaryLoss

from conftest import ROOT


class ToyGenerator(nn.Module):
    """z (N, latent) -> (N, 1, 28, 28) in [-1, 1]: one linear layer."""

    def __init__(self, latent: int = 4):
        super().__init__()
        self.init_kwargs, self.latent, self.n_classes = {"latent": latent}, latent, 0
        self.net = nn.Linear(latent, 28 * 28)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, 1, 28, 28)


class ToyGAN(BinaryLoss):
    def __init__(self, latent: int):
        super().__init__(real_target=1.0)
        self.generator, self.discriminator = ToyGenerator(latent), nn.Sequential(nn.Flatten(), nn.Linear(784, 1))

    def noise(self, n, rng):
        return (torch.randn(n, self.generator.latent, generator=rng),)

    def fake(self, noise):
        return self.generator(*noise)

    def d_loss(self, real, fake, noise):
        return self._d_terms(self.discriminator(real[0]), self.discriminator(fake))

    def g_loss(self, fake, noise):
        return self._g_term(self.discriminator(fake))


def build(data, params, run, seed, spec):
    """The toy family's builder, found by the registry through this module's name."""
    torch.manual_seed(seed)
    return ToyGAN(params[spec.name]["latent"])


@pytest.fixture
def toy():
    spec = registry.register(registry.FamilySpec(
        "toygan", "Toy GAN", __name__, f"{__name__}:ToyGenerator", "runs", ("fid",)))
    yield spec
    del registry.FAMILIES["toygan"]


def test_a_family_added_through_the_registry_alone_trains_saves_and_loads(toy, tmp_path):
    assert registry.get("toygan") is toy and toy in registry.image_families()
    data = (torch.rand(16, 1, 28, 28) * 2 - 1,)
    model = toy.build(data, {"toygan": {"latent": 4, "runs": ["a"]}}, "a", seed=0)
    before = model.generator.net.weight.clone()
    config = loop.TrainConfig(epochs=1, batch_size=8, lr=1e-2, betas=(0.5, 0.999), seed=0)
    trained = loop.train(model, data, config, name="toy")
    assert len(trained.history) == 1 and not torch.equal(before, trained.generator.net.weight)

    store.save_generator(tmp_path / "g", trained.generator, "toygan", {"run": "a"})
    loaded, config_json = store.load_generator(tmp_path / "g")
    assert isinstance(loaded, ToyGenerator) and config_json["family"] == "toygan"
    z = torch.randn(3, 4)
    torch.testing.assert_close(loaded(z), trained.generator.eval()(z), rtol=0, atol=0)


def test_an_unknown_family_is_one_line_naming_the_known_ones():
    with pytest.raises(PipelineError, match=r"unknown GAN family 'nope' \(known: dcgan, ccgan, cogan"):
        registry.get("nope")


def test_a_family_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.FamilySpec("dcgan", "other", "m", "m:G", "runs", ()))


def test_an_edit_to_one_familys_code_reruns_no_stage_of_another_family():
    """`python -m mnistgan_tools.stagedeps --reruns` from the code: the CoGAN's networks, its family
    module and its agreement metric are deps of the CoGAN stages only, and the DCGAN/CCGAN
    networks and image family are not deps of the CoGAN stages."""
    sys.path.insert(0, str(ROOT / "src"))
    from mnistgan_tools import stagedeps

    reruns = stagedeps.reruns(ROOT)
    for f in ("src/mnistgan/models/cogan.py", "src/mnistgan/gan/coupled.py", "src/mnistgan/metrics/agreement.py"):
        assert reruns[f] == ["train_cogan"], (f, reruns[f])
    for f in ("src/mnistgan/models/dcgan.py", "src/mnistgan/gan/image.py"):
        assert "train_cogan" not in reruns[f] and {"train_dcgan", "train_ccgan"} <= set(reruns[f]), (f, reruns[f])
