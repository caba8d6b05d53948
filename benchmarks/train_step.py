"""Training throughput: the project's loops against a plain reference loop, in one process.

The reference is written the way most GAN and MNIST code is: a DataLoader over a
TensorDataset on the host, batches copied to the device every step, label tensors built
every step, and ``.item()`` logging of the losses every step. Both sides train the same
model from the same seed for the same number of steps with the same losses and optimiser;
they are timed in alternating rounds (A B A B ...) so a busy machine slows both alike, and the
median round counts. The last line is ``ratio=<project images/s / reference images/s>``.

    python benchmarks/train_step.py --model dcgan          # the report's DCGAN, F=1, D=1, B=64
    python benchmarks/train_step.py --model lenet --batch-size 64
    python benchmarks/train_step.py --device cuda --steps 200 --rounds 5
    python benchmarks/train_step.py --model dcgan --compile --bf16   # the GAN loop's speed switches

The project loop runs in float32 and eager mode unless --bf16 / --compile (DCGAN only) switch on
the loop's bfloat16 autocast / torch.compile; compilation happens in the untimed warm-up.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mnistgan import classifier
from mnistgan.gan import image, loop
from mnistgan.metrics.scores import to_model_input
from mnistgan.models import dcgan
from mnistgan.models.lenet import LeNet
from mnistgan.pipeline.device import describe, select


def load_images(path: Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` prepared MNIST images in [-1, 1] with labels, or random ones if none are prepared."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as d:
            x, y = d["x"][:n], d["y"][:n]
        source = str(path)
    else:
        rng = np.random.default_rng(seed)
        x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
        source = "random pixels (no data/prepared/train.npz: run `dvc repro prepare` for real digits)"
    return to_model_input(x), torch.as_tensor(y, dtype=torch.long), source


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- DCGAN
def dcgan_models(seed: int, device, width: int = 1, depth: int = 1):
    torch.manual_seed(seed)
    return dcgan.Generator(width=width).to(device), dcgan.Discriminator(width=width, depth=depth).to(device)


def dcgan_project(x, y, steps, batch, device, seed, lr=2e-3, betas=(0.5, 0.999), bf16=False, compile=False) -> None:
    g, d = dcgan_models(seed, device)
    config = loop.TrainConfig(epochs=1, batch_size=batch, lr=lr, betas=betas, seed=seed, train_limit=steps * batch,
                              bf16=bf16, compile=compile)
    loop.train(image.ImageGAN(g, d), (x.to(device),), config, name="benchmark")


def dcgan_reference(x, y, steps, batch, device, seed, lr=2e-3, betas=(0.5, 0.999)) -> None:
    g, d = dcgan_models(seed, device)
    loader = DataLoader(TensorDataset(x), batch_size=batch, shuffle=True, drop_last=True)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=betas)
    bce = nn.BCEWithLogitsLoss()
    log = []
    for step, (real,) in enumerate(loader):
        if step == steps:
            break
        real = real.to(device)
        ones = torch.ones(len(real), 1, device=device)
        zeros = torch.zeros(len(real), 1, device=device)
        fake = g(torch.randn(len(real), g.latent, device=device))
        opt_d.zero_grad()
        loss_d = bce(d(real).view(-1, 1), ones) + bce(d(fake.detach()).view(-1, 1), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(d(fake).view(-1, 1), ones)
        loss_g.backward()
        opt_g.step()
        log.append((loss_d.item(), loss_g.item()))


# ----------------------------------------------------------------------------- LeNet
def lenet_project(x, y, steps, batch, device, seed, lr=1e-3) -> None:
    n = steps * batch
    classifier.train_classifier(x[:n], y[:n], x[:batch], y[:batch], epochs=1, batch_size=batch, lr=lr,
                                seed=seed, device=device)


def lenet_reference(x, y, steps, batch, device, seed, lr=1e-3) -> None:
    torch.manual_seed(seed)
    model = LeNet().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x[: steps * batch], y[: steps * batch]), batch_size=batch, shuffle=True)
    log = []
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad()
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        opt.step()
        log.append((loss.item(), (logits.argmax(1) == yb).float().mean().item()))
    with torch.no_grad():  # the usual end-of-epoch test pass, as the project's loop does too
        model.eval()
        model(x[:batch].to(device)).argmax(1).eq(y[:batch].to(device)).float().mean().item()


LOOPS = {"dcgan": (dcgan_project, dcgan_reference), "lenet": (lenet_project, lenet_reference)}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(LOOPS), default="dcgan")
    parser.add_argument("--steps", type=int, default=30, help="training steps per timed round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds of each loop")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    parser.add_argument("--data", type=Path, default=Path("data/prepared/train.npz"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action="store_true", help="project DCGAN loop: bfloat16 autocast")
    parser.add_argument("--compile", action="store_true", help="project DCGAN loop: torch.compile G and D")
    args = parser.parse_args(argv)
    if (args.bf16 or args.compile) and args.model != "dcgan":
        parser.error("--bf16 and --compile apply to the DCGAN loop only")

    device = select(args.device)
    x, y, source = load_images(args.data, args.steps * args.batch_size + args.batch_size, args.seed)
    project, reference = LOOPS[args.model]
    if args.model == "dcgan":
        project = functools.partial(project, bf16=args.bf16, compile=args.compile)
    switches = ", ".join(s for s, on in (("bf16", args.bf16), ("compile", args.compile)) if on) or "float32, eager"
    print(f"benchmark: {args.model} ({switches}), batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds "
          f"on {describe(device)}; torch {torch.__version__}; data: {source}", flush=True)
    for fn in (project, reference):  # warm-up: allocator, kernels, lazy init
        fn(x, y, 2, args.batch_size, device, args.seed)
    rates: dict[str, list[float]] = {"project": [], "reference": []}
    for r in range(args.rounds):
        for name, fn in (("project", project), ("reference", reference)):
            sync(device)
            t0 = time.perf_counter()
            fn(x, y, args.steps, args.batch_size, device, args.seed)
            sync(device)
            rates[name].append(args.steps * args.batch_size / (time.perf_counter() - t0))
        print(f"round {r + 1}: project {rates['project'][-1]:.0f} img/s, reference {rates['reference'][-1]:.0f} img/s",
              flush=True)
    ours, theirs = statistics.median(rates["project"]), statistics.median(rates["reference"])
    print(f"project loop:   {ours:.0f} images/s (median of {args.rounds})")
    print(f"reference loop: {theirs:.0f} images/s (median of {args.rounds})")
    print(f"ratio={ours / theirs:.3f}")
    return ours / theirs


if __name__ == "__main__":
    main(sys.argv[1:])
