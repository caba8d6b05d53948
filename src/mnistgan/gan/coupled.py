"""CoGAN (report 004): two generators and two discriminators coupled by shared layers.

:func:`build` makes the coupled networks of a domain pair from the ``cogan`` params;
:func:`agreement_scores` scores a trained pair generator (mnistgan.metrics.agreement) and
:func:`domain_fids` the image quality of each of its two domains.
"""

from __future__ import annotations

import torch

from mnistgan.data import domains
from mnistgan.gan.family import Batch, BinaryLoss
from mnistgan.gan.sampling import generate, latent_noise, to_uint8
from mnistgan.metrics import agreement, scores
from mnistgan.models import cogan


class CoupledGAN(BinaryLoss):
    """CoGAN: data ``(domain-1 images, domain-2 images)``; fakes stacked as (N, 2, 1, 28, 28).

    The loss is the sum of the two domains' GAN losses (report 004, eq. 4); the shared
    layers get gradients from both.
    """

    def __init__(self, generator: cogan.CoupledGenerator, discriminator: cogan.CoupledDiscriminator):
        super().__init__(real_target=1.0)
        self.generator, self.discriminator = generator, discriminator

    def noise(self, n: int, rng: torch.Generator) -> Batch:
        return (torch.randn(n, self.generator.latent, generator=rng, device=rng.device),)

    def fake(self, noise: Batch) -> torch.Tensor:
        return torch.stack(self.generator(*noise), dim=1)

    def d_loss(self, real: Batch, fake: torch.Tensor, noise: Batch):
        terms = [self._d_terms(r, f) for r, f in zip(self.discriminator(*real), self.discriminator(*fake.unbind(1)))]
        loss, acc_real, acc_fake = (torch.stack(t) for t in zip(*terms))
        return loss.sum(), acc_real.mean(), acc_fake.mean()

    def g_loss(self, fake: torch.Tensor, noise: Batch) -> torch.Tensor:
        return sum(self._g_term(logits) for logits in self.discriminator(*fake.unbind(1)))


def build(data: Batch, params: dict, pair: str, seed: int, spec) -> CoupledGAN:
    """The registry's builder: the ``cogan`` params -> a CoupledGAN on the device of ``data``."""
    p, device = params[spec.name], data[0].device
    return CoupledGAN(cogan.CoupledGenerator(p["latent"], p["shared_layers"], p["width"], p["output_layer"]).to(device),
                      cogan.CoupledDiscriminator().to(device))


def agreement_scores(generator: cogan.CoupledGenerator, domain: str, n: int, seed: int,
                     batch_size: int = 1000, classify=None) -> dict:
    """The CoGAN scores of ``n`` pairs from fixed noise (agreement.pair_scores): pixel agreement,
    its chance level and normalised score, 95% intervals and, when ``classify(x1, x2)`` gives a
    digit label per domain-1 and domain-2 image, the label agreement beside its chance."""
    pairs = to_uint8(generate(generator, latent_noise(n, generator.latent, seed), batch_size=batch_size))
    labels = classify(pairs[:, 0], pairs[:, 1]) if classify else (None, None)
    return agreement.pair_scores(pairs[:, 0], pairs[:, 1], domain, *labels, seed=seed)


def domain_fids(generator: cogan.CoupledGenerator, domain: str, n: int, seed: int, batch_size: int,
                scorer, ref_stats, domain_scorer=None, domain_ref_stats=None, device="cpu") -> dict:
    """LeNet-FID of each domain's ``n`` samples, both in ONE feature space, so they compare.

    Where the transform has an inverse (rotate, negative), domain-2 samples are mapped back and
    both domains are scored by the fixed LeNet against the real test digits. Otherwise (edge)
    domain-1 samples are mapped forward and both are scored by the domain's own LeNet against
    the real test digits in that domain. ``fid_domain2 > fid_domain1`` reads: domain 2's images
    are further from real digits than domain 1's (report 004: "edge a little blurry").
    """
    pairs = to_uint8(generate(generator, latent_noise(n, generator.latent, seed), batch_size=batch_size))
    x1, x2 = pairs[:, 0], pairs[:, 1]
    if domain in domains.INVERSES:
        model, ref, x1, x2, space = scorer, ref_stats, x1, domains.INVERSES[domain](x2), "original"
    else:
        model, ref, x1, x2, space = domain_scorer, domain_ref_stats, domains.transform(domain, x1), x2, domain

    def fid(x) -> float:
        return scores.score_samples(model, x, None, ref, batch_size, device)["fid"]

    return {"fid_domain1": fid(x1), "fid_domain2": fid(x2), "fid_space": space}
