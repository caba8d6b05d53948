"""Scoring speed by batch size: the LeNet's forward passes (scoring.lenet_outputs) on the test
digits at several batch sizes, in alternating timed rounds, with a check that every batch size
gives the same features and probabilities bit for bit (what `scoring.batch_size` promises).

    python benchmarks/scoring_batch.py                      # 250 500 1000 on this machine's CPU
    python benchmarks/scoring_batch.py --sizes 128 250 1000 --rounds 5 --device cuda

Prints images/s per round and the median per batch size; exits 1 if any output differs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mnistgan.files import load_npz
from mnistgan.metrics.scores import lenet_outputs
from mnistgan.models.lenet import LeNet
from mnistgan.pipeline.device import describe, select
from mnistgan.pipeline.memory import keep_freed_memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds of each batch size (alternating)")
    parser.add_argument("--data", type=Path, default=Path("data/prepared/test.npz"),
                        help="images to score (default: the prepared test digits; random digits if absent)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as every stage does (cli.run_stage)
    device = select(args.device)
    torch.manual_seed(0)
    model = LeNet().to(device)  # untrained: speed and sameness do not depend on the weights
    if args.data.is_file():
        images = load_npz(args.data)["x"]
    else:
        print(f"{args.data} not found: 10,000 random digits", file=sys.stderr)
        images = np.random.default_rng(0).integers(0, 256, size=(10000, 28, 28), dtype=np.uint8)
    print(f"{len(images)} images on {describe(device)}")
    reference = lenet_outputs(model, images, args.sizes[-1], device)
    speeds: dict[int, list[float]] = {b: [] for b in args.sizes}
    differ = []
    for r in range(args.rounds):
        for b in args.sizes:
            t0 = time.perf_counter()
            out = lenet_outputs(model, images, b, device)
            speeds[b].append(len(images) / (time.perf_counter() - t0))
            if r == 0 and not all(np.array_equal(o, ref) for o, ref in zip(out, reference)):
                differ.append(b)
    for b, v in speeds.items():
        print(f"batch {b:5d}: {' '.join(f'{s:6.0f}' for s in v)} images/s, median {statistics.median(v):.0f}"
              + ("  (outputs DIFFER from batch %d)" % args.sizes[-1] if b in differ else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
