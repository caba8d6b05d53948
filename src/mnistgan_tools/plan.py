"""A params file's training work as numbers: what each stage trains, on which networks and batch,
how much memory that needs, and how long N stages at a time take.

Three tools read a profile before any stage runs, and they must agree on what it asks for:

* the smoke run of the paper graph (``python -m mnistgan_tools.smoke``) and the sharding tool
  (``python -m mnistgan_tools.shard``) check that the grid fits in memory, so a grid that cannot run
  fails with one line before work starts, not hours into a run;
* the cost model (``benchmarks/cost.py``) measures each distinct :class:`Config` once and
  projects every stage's wall time from :func:`stage_work`, then the total with N stages at a
  time (:func:`lpt`).

Everything here but :func:`footprint` and :func:`available_memory` is pure arithmetic on the
validated params dict (tested on hand-made numbers). :func:`footprint` builds the project's
own networks on PyTorch's ``meta`` device (shapes only, no memory, milliseconds) and counts
their parameters, the activations one image leaves for the backward pass and, with
``torch.utils.flop_counter``, the FLOPs of one training step: the memory estimate and the
shard balance then follow the real models, with no per-layer formula kept by hand.

Written here because no library plans this: DVC knows stages but not what they cost, and
Ray/SLURM schedule whatever they are given.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import math
import os
from dataclasses import dataclass

from mnistgan.errors import PipelineError
from mnistgan.gan import registry
from mnistgan.hybrid import HEADLINE_FRACTIONS
from mnistgan.pipeline.params import pair_budget, parse_run_id

IMAGE = tuple(f.name for f in registry.image_families())  # the F x D x B grid's families
COUPLED = tuple(f.name for f in registry.coupled_families())

MNIST_TRAIN, MNIST_TEST = 60000, 10000
FLOAT = 4  # bytes of a float32
# Memory of a stage beyond its tensors: the Python/torch runtime, MKL/OpenMP pools, dvclive,
# matplotlib, scoring buffers and the allocator's slack. On a CPU this is process RSS, several
# times a quick-profile stage's tensors (its peak is in metrics/run_info.json); on a GPU, the
# CUDA context and cuDNN workspaces. The cost model measures the real peak per config.
BASE_BYTES = {"cpu": 1.25 * 2**30, "cuda": 0.75 * 2**30, "mps": 1.25 * 2**30}
# Autograd keeps each layer's output for the backward pass and makes gradients of the same
# size on the way back; the batch-norm and activation temporaries come on top.
ACTIVATION_FACTOR = 2.0
HEADROOM = 0.9  # plan with at most this share of the free memory


# ----------------------------------------------------------------------------- configs and work
@dataclass(frozen=True)
class Config:
    """What one training step costs depends on: the networks and the batch.

    ``family`` is dcgan, ccgan (F = ``width``, D = ``depth``, ``vbn``), cogan (generator width
    multiplier ``width``, ``shared_layers``) or lenet (``channels``, ``hidden``). Label
    smoothing does not change the cost, so ``F1-D1-B64-ls`` runs the config of ``F1-D1-B64``.
    """

    family: str
    batch: int
    width: float = 1
    depth: int = 1
    vbn: bool = False
    latent: int = 100
    shared_layers: int = 0
    output_layer: str = "conv"
    channels: tuple[int, int] = (32, 64)
    hidden: tuple[int, int] = (256, 84)

    @property
    def name(self) -> str:
        if self.family in IMAGE:
            return f"{self.family}/F{self.width:g}-D{self.depth}-B{self.batch}" + ("-vbn" if self.vbn else "")
        if self.family in COUPLED:
            return (f"{self.family}/w{self.width:g}-s{self.shared_layers}-B{self.batch}"
                    + ("" if self.output_layer == "conv" else f"-{self.output_layer}"))
        return f"lenet/{self.channels[0]}x{self.channels[1]}-{self.hidden[0]}x{self.hidden[1]}-B{self.batch}"


@dataclass(frozen=True)
class Part:
    """One training run inside a stage: ``epochs`` x ``images`` (CoGAN: image pairs) through
    ``config``, and ``scored`` generated digits (pairs) scored over the run. With ``ema`` on, the
    noise of each batch-norm re-estimate of G's average (loop.BN_SAMPLES per scored epoch) counts
    as scored too: a forward pass through G, costed at the scoring rate."""

    config: Config
    epochs: int
    images: int  # trained per epoch (whole batches only)
    scored: int = 0


@dataclass(frozen=True)
class StageWork:
    """A stage's training work: its parts, and the training images it holds on the device."""

    stage: str
    parts: tuple[Part, ...]
    data_images: int

    @property
    def family(self) -> str:
        return self.parts[0].config.family


def n_train(params: dict) -> int:
    return params["data"]["train_limit"] or MNIST_TRAIN


def cogan_pairs(params: dict) -> int:
    """Images of the smaller CoGAN half: ~half the training set (prepare splits it per class)."""
    return n_train(params) // 2


def _whole_batches(images: int, limit: int, batch: int) -> int:
    per_epoch = min(images, limit or images)
    return per_epoch // batch * batch


def gan_work(params: dict) -> list[StageWork]:
    """One :class:`StageWork` per GAN stage of ``params`` (validated), in dvc.yaml's order."""
    from mnistgan.gan.loop import BN_SAMPLES

    out = []
    n = n_train(params)
    shared = params["gan"]
    final = params["scoring"]["samples"]
    for family in IMAGE:
        p = params[family]
        evals = p["epochs"] // p["eval_every"]
        for run in p["runs"]:
            spec = parse_run_id(run)
            config = Config(family, spec.batch_size, spec.width, spec.depth, spec.vbn, shared["latent"])
            part = Part(config, p["epochs"], _whole_batches(n, p["train_limit"], spec.batch_size),
                        evals * shared["eval_samples"] + final + (evals * BN_SAMPLES if p["ema"] else 0))
            out.append(StageWork(f"train_{family}@{run}", (part,), n))
    pairs = cogan_pairs(params)
    for family in COUPLED:
        p = params[family]
        config = Config(family, p["batch_size"], p["width"], latent=p["latent"], shared_layers=p["shared_layers"],
                        output_layer=p["output_layer"])
        for pair in p["pairs"]:
            epochs, limit = pair_budget(p, pair)
            evals = epochs // p["eval_every"]
            part = Part(config, epochs, _whole_batches(pairs, limit, p["batch_size"]),
                        (evals + 1) * p["eval_samples"] + (evals * BN_SAMPLES if p["ema"] else 0))
            out.append(StageWork(f"train_{family}@{pair}", (part,), 2 * pairs))
    return out


def lenet_work(params: dict) -> list[StageWork]:
    """The stages that train LeNets: the scorer, the edge-digit reader and the hybrid classifiers."""
    lenet, h, n = params["lenet"], params["hybrid"], n_train(params)

    def config(batch: int) -> Config:
        return Config("lenet", batch, channels=tuple(lenet["channels"]), hidden=tuple(lenet["hidden"]))

    total = h["total"] or n
    curve_total, curve_epochs = h["curve_total"] or total, h["curve_epochs"] or h["epochs"]
    trained: dict[tuple, Part] = {}  # train_hybrid trains a recurring setting once

    def fit(fractions: dict, lr: float, batch: int, images: int = curve_total, epochs: int = curve_epochs) -> None:
        per_class = tuple(fractions["per_class"].get(c, fractions["default"]) for c in range(10))
        trained.setdefault((per_class, lr, batch, images, epochs), Part(config(batch), epochs, images))

    for r in HEADLINE_FRACTIONS:
        fit({"default": r, "per_class": {}}, h["lr"], h["batch_size"], total, h["epochs"])
    for r in h["real_fractions"]:
        fit({"default": r, "per_class": {}}, h["lr"], h["batch_size"])
    for lr in h["sweep"]["lrs"]:
        for batch in h["sweep"]["batch_sizes"]:
            fit({"default": h["sweep"]["real_fraction"], "per_class": {}}, lr, batch)
    for mix in h["mixes"].values():
        fit({"default": mix["default"], "per_class": mix.get("per_class") or {}}, h["lr"], h["batch_size"])
    return [
        StageWork("train_lenet", (Part(config(lenet["batch_size"]), lenet["epochs"], n),), n),
        StageWork("train_edge_lenet", (Part(config(lenet["batch_size"]), params[COUPLED[0]]["domain_lenet_epochs"],
                                            cogan_pairs(params)),), cogan_pairs(params)),
        StageWork("train_hybrid", tuple(trained.values()), total),
    ]


def configs(works: list[StageWork]) -> list[Config]:
    """The distinct configs of ``works``, in first-seen order (each is measured once)."""
    return list(dict.fromkeys(part.config for w in works for part in w.parts))


# ----------------------------------------------------------------------------- the networks, shapes only
@dataclass(frozen=True)
class Footprint:
    params: int              # trainable parameters of every network the step updates
    activations: int         # floats one image leaves in the step's graph (G once, D on real and fake)


def footprint(config: Config) -> Footprint:
    """Parameters and activations per image of one training step of ``config``, from the
    project's own networks run on the ``meta`` device (shapes only, no memory allocated). Per
    image, so the same for every batch size: computed once per network."""
    return _shapes(dataclasses.replace(config, batch=1), count_flops=False)[0]


def step_flops(config: Config) -> float:
    """FLOPs of one training step per image (forward and backward; torch.utils.flop_counter)."""
    return _shapes(dataclasses.replace(config, batch=1), count_flops=True)[1]


@functools.lru_cache(maxsize=None)
def _shapes(config: Config, count_flops: bool) -> tuple[Footprint, float]:
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mnistgan.gan import coupled, image
    from mnistgan.models import cogan, lenet

    # Per-image numbers from a small batch. A -vbn run's reference batch is as large as its batch
    # and goes through every pass with it, so b images are built with a reference of b.
    b = 8
    outputs: list[int] = []

    def count(module, inputs, output) -> None:
        tensors = output if isinstance(output, tuple) else (output,)
        outputs.append(sum(t.numel() for t in tensors if isinstance(t, torch.Tensor)))

    with torch.device("meta"):
        if config.family in IMAGE:
            conditional = registry.get(config.family).conditional
            data = (torch.zeros(b, 1, 28, 28),) + ((torch.zeros(b, dtype=torch.long),) if conditional else ())
            model = image.ImageGAN(*_image_nets(config, conditional, b))
            nets = (model.generator, model.discriminator)
        elif config.family in COUPLED:
            model = coupled.CoupledGAN(cogan.CoupledGenerator(config.latent, config.shared_layers, config.width,
                                                              config.output_layer), cogan.CoupledDiscriminator())
            data = (torch.zeros(b, 1, 28, 28), torch.zeros(b, 1, 28, 28))
            nets = (model.generator, model.discriminator)
        else:
            net = lenet.LeNet(config.channels, config.hidden)
            nets = (net,)
        hooks = [m.register_forward_hook(count) for net in nets for m in net.modules() if not list(m.children())]
        counter = FlopCounterMode(display=False) if count_flops else contextlib.nullcontext()
        with counter:
            if config.family == "lenet":
                net(torch.zeros(b, 1, 28, 28)).sum().backward()
                acts = sum(outputs)
            else:  # the loop's step: D on real and fake, then G through D (training._step)
                z = (torch.zeros(b, config.latent),)
                if config.family in IMAGE and registry.get(config.family).conditional:
                    z += (torch.zeros(b, dtype=torch.long),)
                fake = model.fake(z)
                model.d_loss(data, fake.detach(), z)[0].backward()
                acts = sum(outputs)  # G once, D twice: the peak, during D's backward
                model.g_loss(fake, z).backward()
        for h in hooks:
            h.remove()
    n_params = sum(p.numel() for net in nets for p in net.parameters())
    flops = counter.get_total_flops() / b if count_flops else math.nan
    return Footprint(n_params, math.ceil(acts / b)), flops


def _image_nets(config: Config, conditional: bool, b: int):
    from mnistgan.models import dcgan

    n_classes = 10 if conditional else 0
    vbn = b if config.vbn else 0
    return (dcgan.Generator(config.latent, int(config.width), n_classes, vbn),
            dcgan.Discriminator(int(config.width), config.depth, n_classes, vbn))


# ----------------------------------------------------------------------------- memory
def memory_bytes(work: StageWork, device_type: str = "cpu") -> int:
    """Peak memory of a stage, estimated: runtime base + training data (float32, plus the uint8
    copy it came from on a CPU) + weights, gradients and Adam's two moments (4 copies) +
    activations of one batch (x ``ACTIVATION_FACTOR``). Its largest part decides."""
    data = work.data_images * 28 * 28 * (FLOAT + (1 if device_type == "cpu" else 0))
    per_part = []
    for part in work.parts:
        fp = footprint(part.config)
        per_part.append(4 * FLOAT * fp.params + ACTIVATION_FACTOR * FLOAT * fp.activations * part.config.batch)
    return int(BASE_BYTES.get(device_type, BASE_BYTES["cpu"]) + data + max(per_part))


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(works: list[StageWork], available: int, where: str, at_once: int = 1,
                 device_type: str = "cpu") -> list[tuple[str, int]]:
    """Raise PipelineError (one line) if the ``at_once`` largest stages of ``works`` do not fit in
    ``HEADROOM`` of ``available`` bytes; return (stage, estimated bytes), largest first."""
    need = sorted(((w.stage, memory_bytes(w, device_type)) for w in works), key=lambda t: (-t[1], t[0]))
    top = need[:max(1, at_once)]
    total = sum(b for _, b in top)
    if need and total > HEADROOM * available:
        together = f"{len(top)} stages at a time need about {gib(total)}; " if len(top) > 1 else ""
        raise PipelineError(
            f"the grid does not fit in memory: {together}{top[0][0]} alone needs about {gib(top[0][1])} "
            f"and {where} has {gib(available)} free; use a smaller B, F or D for it, or run fewer stages at a time")
    return need


def available_memory(device) -> tuple[int, str]:
    """Free bytes on ``device`` (a torch.device) and a short description of where."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free, f"cuda ({torch.cuda.get_device_name(device)})"
    import psutil

    return psutil.virtual_memory().available, f"this machine ({device.type}, {os.cpu_count()} cores)"


# ----------------------------------------------------------------------------- scheduling
def lpt(durations: dict[str, float], slots: int) -> tuple[float, list[list[str]]]:
    """Longest processing time first: take the jobs longest first and give each to the slot that
    frees first. Returns the makespan and each slot's jobs in order.

    Graham's list schedule: independent jobs on ``slots`` identical machines finish within 4/3
    of the optimum, and it is what a pool of N workers taking the longest waiting job does.
    Ties go by name, so the result is deterministic.
    """
    if slots < 1:
        raise ValueError(f"slots must be >= 1 (got {slots})")
    heap = [(0.0, i) for i in range(slots)]
    assignment: list[list[str]] = [[] for _ in range(slots)]
    for name in sorted(durations, key=lambda n: (-durations[n], n)):
        end, i = heapq.heappop(heap)
        assignment[i].append(name)
        heapq.heappush(heap, (end + durations[name], i))
    return max(end for end, _ in heap), assignment
