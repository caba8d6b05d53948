"""DCGAN and CCGAN (report 000, sections 2-3): one image family, conditional or not.

:func:`build` turns a run id in the report's notation (``F1-D1-B64-ls``) into the networks
and losses; :func:`lenet_scores` scores a trained generator with the fixed LeNet.
"""

from __future__ import annotations

import torch
from torch import nn

from mnistgan.gan.family import Batch, BinaryLoss
from mnistgan.gan.sampling import N_CLASSES, REFERENCE_SEED, balanced_labels, generate, latent_noise
from mnistgan.metrics import scores
from mnistgan.models import dcgan
from mnistgan.pipeline.params import parse_run_id


class ImageGAN(BinaryLoss):
    """DCGAN (``n_classes == 0``; data ``(images,)``) or CCGAN (data ``(images, labels)``).

    CCGAN fakes are conditioned on labels drawn uniformly, as in report 000's objective.
    """

    def __init__(self, generator: dcgan.Generator, discriminator: dcgan.Discriminator, real_target: float = 1.0):
        super().__init__(real_target)
        self.generator, self.discriminator = generator, discriminator

    def noise(self, n: int, rng: torch.Generator) -> Batch:
        z = torch.randn(n, self.generator.latent, generator=rng, device=rng.device)
        if not self.generator.n_classes:
            return (z,)
        return z, torch.randint(self.generator.n_classes, (n,), generator=rng, device=rng.device)

    def fake(self, noise: Batch) -> torch.Tensor:
        return self.generator(*noise)

    def d_loss(self, real: Batch, fake: torch.Tensor, noise: Batch):
        return self._d_terms(self.discriminator(*real), self.discriminator(fake, *noise[1:]))

    def g_loss(self, fake: torch.Tensor, noise: Batch) -> torch.Tensor:
        return self._g_term(self.discriminator(fake, *noise[1:]))


def image_gan(data: Batch, *, conditional: bool, width: int, depth: int, latent: int, vbn_batch: int,
              real_target: float, seed: int) -> ImageGAN:
    """A DCGAN (or, ``conditional``, a CCGAN) on the device of ``data``.

    ``vbn_batch > 0`` switches on virtual batch normalisation with reference batches of that
    size, drawn here once: real images (and labels) of ``data`` for D, fixed noise (and
    balanced labels) for G.
    """
    n_classes = N_CLASSES if conditional else 0
    device = data[0].device
    generator = dcgan.Generator(latent, width, n_classes, vbn_batch).to(device)
    discriminator = dcgan.Discriminator(width, depth, n_classes, vbn_batch).to(device)
    if vbn_batch:
        pick = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(seed + REFERENCE_SEED))
        discriminator.set_reference(*(t[pick[:vbn_batch].to(device)] for t in data))
        generator.set_reference(latent_noise(vbn_batch, latent, seed + REFERENCE_SEED), balanced_labels(vbn_batch))
    return ImageGAN(generator, discriminator, real_target)


def build(data: Batch, params: dict, run: str, seed: int, spec) -> ImageGAN:
    """The registry's builder: run id + the ``gan`` and family sections of params -> an ImageGAN."""
    run_spec = parse_run_id(run)
    real_target = params[spec.name]["label_smoothing"] if run_spec.smoothing else 1.0
    return image_gan(data, conditional=spec.conditional, width=run_spec.width, depth=run_spec.depth,
                     latent=params["gan"]["latent"], vbn_batch=run_spec.batch_size if run_spec.vbn else 0,
                     real_target=real_target, seed=seed)


def lenet_scores(generator: nn.Module, scorer: nn.Module, ref_stats, n: int, seed: int,
                 batch_size: int = 1000, intervals: bool = False) -> dict:
    """IS and LeNet-FID of ``n`` samples (and, if conditional, LeNet accuracy on the intended class);
    ``intervals`` (the final scores): with the sample count, the accuracy's 95% interval and, if
    conditional, the accuracy of each class (scores.score_samples)."""
    labels = balanced_labels(n) if generator.n_classes else None
    images = generate(generator, latent_noise(n, generator.latent, seed), labels, batch_size)
    device = next(scorer.parameters()).device
    return scores.score_samples(scorer, images, None if labels is None else labels.numpy(),
                                ref_stats, batch_size, device, intervals, by_class=intervals)
