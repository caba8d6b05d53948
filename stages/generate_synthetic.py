"""A synthetic MNIST training set from the best class-conditional GAN (report 000, section 4.1).

The best CCGAN run is chosen by a metric, not by name: every run of ccgan.runs is ranked by
the synthetic.select_by value (synthetic.mode: max or min) of its <metrics>/<run>/metrics.json
(written by the CCGAN training stage), and its generator is loaded from <models>/<run>
(store.load_generator). Only the runs of the current params compete: DVC leaves the outputs
of a run removed from ccgan.runs in the workspace, and they must not be picked. It then draws
exactly as many digits of each class as the prepared training set holds (same size, same
per-class counts), in random class order, from seeded noise.

Writes:
  --out (data/synthetic/train.npz)  x uint8 (N, 28, 28), y uint8 (N,): one array file
  --summary (metrics/synthetic.json) the chosen run, the candidates' values of the metric, and
                                     the LeNet scores of the synthetic set itself (lenet_acc of
                                     the intended class, is, LeNet-FID vs the real test set) on
                                     its first scoring.samples digits, like every final score
  --plots (plots/synthetic/samples.png) ten synthetic digits per class, one class per row
"""

import math
from pathlib import Path

import numpy as np
import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)
import torch

from mnistgan import classifier
from mnistgan.errors import PipelineError
from mnistgan.files import load_json, load_npz, save_json, save_npz
from mnistgan.gan import registry, sampling, store
from mnistgan.metrics import scores
from mnistgan.pipeline import device as devices, figures
from mnistgan.pipeline.stage import run_stage


def metric_value(metrics: dict, key: str, where: str) -> float:
    """``metrics[key]``, where a dotted key walks into nested mappings (as dvclive writes them)."""
    node = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            shown = ", ".join(sorted(k for k, v in metrics.items() if not isinstance(v, dict))) or "none"
            raise PipelineError(f"{where} has no metric {key!r} (synthetic.select_by); top-level metrics: {shown}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise PipelineError(f"{where}: metric {key!r} is {node!r}, not a finite number")
    return float(node)


def select_run(metrics_dir: Path, runs: list[str], key: str, mode: str) -> tuple[str, dict[str, float]]:
    """The best of ``runs`` by ``key`` in ``metrics_dir/<run>/metrics.json`` (ties: the first name)
    and every run's value. Other runs' files under ``metrics_dir`` are ignored."""
    files = [Path(metrics_dir) / run / "metrics.json" for run in sorted(runs)]
    missing = [f.parent.name for f in files if not f.is_file()]
    if missing:
        raise PipelineError(f"no CCGAN metrics for run(s) {', '.join(missing)} of ccgan.runs: no "
                            f"{metrics_dir}/<run>/metrics.json (train the CCGANs first)")
    values = {f.parent.name: metric_value(load_json(f), key, str(f)) for f in files}
    pick = max if mode == "max" else min
    return pick(values, key=values.get), values


def main(args, params):
    p, seed, bs = params["synthetic"], params["seed"], params["scoring"]["batch_size"]
    dev = devices.select(params["device"])
    spec = registry.get(args.family)
    run, candidates = select_run(Path(args.metrics), spec.runs(params), p["select_by"], p["mode"])
    generator, _ = store.load_generator(Path(args.models) / run, dev)
    if not getattr(generator, "n_classes", 0):
        raise PipelineError(f"{args.models}/{run}: the generator is not class-conditional")
    print(f"generate_synthetic: best of {len(candidates)} CCGAN runs by {p['select_by']} ({p['mode']}): "
          f"{run} ({candidates[run]:.4g})", flush=True)

    counts = np.bincount(load_npz(Path(args.data) / "train.npz")["y"], minlength=10)
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(10), counts))
    z = sampling.latent_noise(len(labels), generator.latent, seed)
    x = sampling.to_uint8(sampling.generate(generator, z, torch.as_tensor(labels), p["batch_size"]))
    y = labels.astype(np.uint8)
    save_npz(args.out, x=x, y=y)

    scorer, ref_stats = classifier.load_scorer(args.scorer, dev)
    n = min(params["scoring"]["samples"], len(y))  # every final FID at one sample count (classes are shuffled)
    synth = scores.score_samples(scorer, x[:n], y[:n], ref_stats, bs, dev, intervals=True)
    first_ten = np.concatenate([np.flatnonzero(y == c)[:10] for c in range(10)])
    figures.save_grid(Path(args.plots) / "samples.png", x[first_ten], nrow=10,
                      title=f"synthetic training digits from CCGAN {run}", row_labels=[str(c) for c in range(10)])
    save_json(args.summary, {
        "run": run,
        "select_by": p["select_by"],
        "mode": p["mode"],
        "candidates": candidates,
        "images": int(len(y)),
        "class_counts": counts.tolist(),
        **synth,
    })
    print(f"generate_synthetic: {len(y)} digits from {run}: LeNet accuracy {synth['lenet_acc']:.4f}, "
          f"IS {synth['is']:.3f}, FID {synth['fid']:.2f}")


def configure(parser):
    parser.add_argument("--family", required=True, choices=[f.name for f in registry.image_families() if f.conditional],
                        help="the class-conditional GAN family whose best run draws the set")
    parser.add_argument("--models", required=True, help="one saved generator per run: <models>/<run>")
    parser.add_argument("--metrics", required=True, help="one <metrics>/<run>/metrics.json per run")
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz (its class counts)")
    parser.add_argument("--scorer", default="models/lenet", help="the fixed LeNet scorer")
    parser.add_argument("--out", default="data/synthetic/train.npz")
    parser.add_argument("--summary", default="metrics/synthetic.json")
    parser.add_argument("--plots", default="plots/synthetic")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
