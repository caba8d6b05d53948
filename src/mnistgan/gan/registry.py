"""The GAN families of the study, declared once: name, builder, generator class, params, metrics.

One :class:`FamilySpec` per family is the only place that says what a family is. The stage
scripts, the generator store, ``evaluate`` and the report look a family up here; adding a
family means writing its module (a ``build`` function returning a
:class:`mnistgan.gan.family.Family`) and calling :func:`register` (see ``tests/unit/gan``,
which trains a toy family through this registry alone).

Modules are named by dotted path and imported only when used, so a stage that trains a
DCGAN imports neither the CoGAN's networks nor its metric: an edit to those reruns no DCGAN
or CCGAN stage (``python -m mnistgan_tools.stagedeps --reruns`` shows it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mnistgan.errors import PipelineError

# The domain pairs a coupled family can learn: domain 1 is the original digits, domain 2 one of
# these transforms (mnistgan.data.domains.TRANSFORMS implements them; a test keeps the two equal).
PAIRS = ("rotate", "negative", "edge")
# Final scores every run of an image family reports (metrics/<family>/<run>/metrics.json).
IMAGE_RUN_KEYS = ("fid", "is", "lenet_acc", "lenet_acc_ci95", "samples", "epochs", "lenet_acc_by_class",
                  "samples_by_class", "params_generator", "params_discriminator")
# ... and every CoGAN pair (mnistgan.metrics.agreement.pair_scores).
PAIR_RUN_KEYS = ("agreement", "agreement_ci95", "agreement_chance", "agreement_normalised", "label_agreement",
                 "label_agreement_ci95", "label_agreement_chance", "label_agreement_normalised", "pairs",
                 "fid_domain1", "fid_domain2", "fid_space")


@dataclass(frozen=True)
class FamilySpec:
    """One GAN family.

    ``name`` is its params section, its stage (``train_<name>@<run>``) and its directories
    (``models/<name>/<run>``, ``metrics/<name>/<run>``); ``runs_key`` the key of that section
    listing its runs (run ids, or the domain pairs of a coupled family). ``module`` holds
    ``build(data, params, run, seed) -> Family``; ``generator`` is ``"module:Class"``, the
    class :mod:`mnistgan.gan.store` rebuilds a saved generator with. ``run_keys`` are the final
    scores each run writes and the summary copies; ``best_by`` ranks runs (key, "min"/"max"),
    or None where the family has no best run (pairs are compared one by one).
    """

    name: str
    title: str
    module: str
    generator: str
    runs_key: str
    run_keys: tuple[str, ...]
    conditional: bool = False
    best_by: tuple[str, str] | None = None
    curves: tuple[str, ...] = ()  # per-epoch scores drawn across runs (evaluate's <name>_score_curves.csv)
    source: str = ""  # where the study describes it (REPORT.md's section heading)
    params_model: str = "ImageGan"  # its section's model in mnistgan.pipeline.params

    def build(self, data, params: dict[str, Any], run: str, seed: int):
        """The family's networks and losses for ``run`` on the device of ``data``."""
        return importlib.import_module(self.module).build(data, params, run, seed, self)

    def generator_class(self) -> type:
        module, _, cls = self.generator.partition(":")
        return getattr(importlib.import_module(module), cls)

    def runs(self, params: dict[str, Any]) -> list[str]:
        return list(params[self.name][self.runs_key])


FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> FamilySpec:
    if spec.name in FAMILIES and FAMILIES[spec.name] != spec:
        raise ValueError(f"a different family {spec.name!r} is already registered")
    FAMILIES[spec.name] = spec
    return spec


def get(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise PipelineError(f"unknown GAN family {name!r} (known: {', '.join(FAMILIES)})") from None


def image_families() -> list[FamilySpec]:
    """The families of report 000's F x D x B grid (run ids ``F<n>-D<n>-B<n>[-vbn][-ls]``)."""
    return [f for f in FAMILIES.values() if f.runs_key == "runs"]


def coupled_families() -> list[FamilySpec]:
    return [f for f in FAMILIES.values() if f.runs_key == "pairs"]


register(FamilySpec("dcgan", "DCGAN", "mnistgan.gan.image", "mnistgan.models.dcgan:Generator", "runs",
                    IMAGE_RUN_KEYS, best_by=("fid", "min"), curves=("is", "fid"),
                    source="report 000, section 2; Figs 2-5"))
register(FamilySpec("ccgan", "Class-conditional GAN", "mnistgan.gan.image", "mnistgan.models.dcgan:Generator", "runs",
                    IMAGE_RUN_KEYS, conditional=True, best_by=("lenet_acc", "max"), curves=("lenet_acc", "is", "fid"),
                    source="report 000, section 3; Figs 6-8, 17"))
register(FamilySpec("cogan", "Coupled GAN", "mnistgan.gan.coupled", "mnistgan.models.cogan:CoupledGenerator", "pairs",
                    PAIR_RUN_KEYS, source="report 004, Figs 7-9", params_model="CoupledGan"))
