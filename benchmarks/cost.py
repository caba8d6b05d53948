"""What a profile costs on this device, config by config: short timed runs, then a projection.

    python benchmarks/cost.py --profile profiles/paper.yaml               # every config, this device
    python benchmarks/cost.py --profile profiles/paper.yaml --jobs 4      # 4 stages sharing the device
    python benchmarks/cost.py --only 'ccgan/F1-*' --steps 10              # a subset, quicker
    python benchmarks/cost.py --device cuda --jobs 8                      # on a GPU

1. Measure. Every distinct training config of the profile (mnistgan_tools.plan.Config: each F x D x B
   of both families and their -vbn variants, the CoGAN at the profile's width, the LeNets of the
   scorer and the hybrid classifiers) trains ``--steps`` steps after ``--warmup`` untimed ones,
   with the project's own loop (loop.train, classifier.train_classifier) and networks, on the
   profile's amount of training data held on the device, with the profile's bf16/compile
   switches. Each config runs in its own process, so its peak memory is its own: peak RSS on a
   CPU (what metrics/timings record for a stage), torch.cuda.max_memory_allocated on a GPU.
   ``--jobs N`` starts N copies of each measurement at once and keeps their median rate: the
   speed of a stage when N stages share the device (on a CPU each copy gets cores / N threads,
   as `cpu_threads` should be set for N stages at a time). Scoring is timed too (generating and
   LeNet-scoring ``--score-samples`` digits or pairs, with a LeNet of the profile's size), and the
   time from a process's start to its data being on the device (``startup``).
2. Project. Each stage's wall time = startup + epochs x images per epoch / images per second
   + scored digits / scored per second (mnistgan_tools.plan.stage work: the profile's epochs,
   train_limit, eval_every, eval_samples and scoring.samples; with ema, each scored epoch's
   batch-norm re-estimate of G's average), and the total with N stages at a time: train_lenet, then the GAN stages and train_edge_lenet over N slots by a longest-first
   list schedule (mnistgan_tools.plan.lpt; within 4/3 of the best order), then train_hybrid (it needs
   every CCGAN). Not modelled: download, prepare, pca_sweep, generate_synthetic, evaluate and
   plots_template (minutes at most), DVC's own few seconds per stage, and the per-epoch test
   pass of the LeNets.

Writes results/cost/<device>[-j<N>].json (every measurement and projection) and .md (the
tables). Measurement never touches the pipeline's outputs. Written here because the question
is this project's: which of its configs, how many at once, on which device; generic profilers
(torch.profiler, torch.utils.benchmark) time one model, not a grid's schedule.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mnistgan.pipeline import params as params_mod
from mnistgan_tools import plan

ROOT = Path(__file__).resolve().parents[1]
NOT_MODELLED = ("download", "prepare", "pca_sweep", "generate_synthetic", "evaluate", "plots_template")


# ----------------------------------------------------------------------------- projection (pure)
def stage_seconds(work: plan.StageWork, measured: dict[str, dict], startup_s: float) -> dict | None:
    """{train_s, score_s, wall_s} of one stage from its configs' measurements (None if one is missing)."""
    train = score = 0.0
    for part in work.parts:
        m = measured.get(part.config.name)
        if m is None:
            return None
        train += part.epochs * part.images / m["images_per_s"]
        if part.scored:
            score += part.scored / m["scored_per_s"]
    return {"train_s": train, "score_s": score, "wall_s": startup_s + train + score}


def project(works: list[plan.StageWork], measured: dict[str, dict], startup_s: float, slots: int) -> dict:
    """Every modelled stage's seconds, and the total: serially, and with ``slots`` stages at a time
    (train_lenet; then the GAN stages and train_edge_lenet, longest first over the slots; then
    train_hybrid). Stages whose configs were not measured are listed, not counted."""
    stages, missing = {}, []
    for w in works:
        s = stage_seconds(w, measured, startup_s)
        if s is None:
            missing.append(w.stage)
        else:
            stages[w.stage] = s
    wall = {name: s["wall_s"] for name, s in stages.items()}
    before, after = ("train_lenet",), ("train_hybrid",)
    middle = {n: t for n, t in wall.items() if n not in before + after}
    makespan, assignment = plan.lpt(middle, slots)
    total = sum(wall.get(n, 0.0) for n in before) + makespan + sum(wall.get(n, 0.0) for n in after)
    return {"stages": stages, "not_measured": missing, "serial_s": sum(wall.values()), "slots": slots,
            "total_s": total, "gan_makespan_s": makespan, "slot_stages": assignment}


def hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def markdown(result: dict) -> str:
    """The tables of results/cost/<device>.md."""
    m, p = result["configs"], result["projection"]
    by_config: dict[str, list[str]] = {}
    for name, s in result["stage_configs"].items():
        for c in s:
            by_config.setdefault(c, []).append(name)
    lines = [
        f"# Cost of `{result['profile']}` on {result['device']}",
        "",
        f"Measured {result['date']} with `{result['command']}`: {result['steps']} timed steps per config after "
        f"{result['warmup']} untimed, {result['jobs']} cop{'y' if result['jobs'] == 1 else 'ies'} at a time "
        f"({result['threads']} CPU thread(s) each), torch {result['torch']}; bf16 {result['bf16']}, compile "
        f"{result['compile']}. A stage's start (Python, torch, data on the device): {result['startup_s']:.1f} s.",
        "",
        "| config | stages | images/s | scored/s | peak memory (estimate) | longest stage | all its stages |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in m.items():
        stages = by_config.get(name, [])
        per = [p["stages"][s]["wall_s"] for s in stages if s in p["stages"]]
        scored = f"{c['scored_per_s']:.0f}" if c.get("scored_per_s") else "-"
        lines.append(f"| `{name}` | {len(stages)} | {c['images_per_s']:.0f} | {scored} | {plan.gib(c['peak_bytes'])} "
                     f"({plan.gib(c['estimated_bytes'])}) | {hours(max(per)) if per else '-'} | "
                     f"{hours(sum(per)) if per else '-'} |")
    families: dict[str, float] = {}
    for stage, s in p["stages"].items():
        family = stage.split("@")[0].removeprefix("train_")
        families[family] = families.get(family, 0.0) + s["wall_s"]
    lines += ["", "| stages | one after another |", "| --- | --- |"]
    lines += [f"| `train_{f}*` | {hours(t)} |" for f, t in families.items()]
    together = (f" With {p['slots']} at a time: {hours(p['total_s'])}** (train_lenet, then the GAN stages and "
                f"train_edge_lenet longest first over {p['slots']} slots: {hours(p['gan_makespan_s'])}, then "
                f"train_hybrid)." if p["slots"] > 1 else "**")
    lines += [
        "",
        f"**Total, one stage at a time: {hours(p['serial_s'])}.{together} Not modelled: "
        f"{', '.join(NOT_MODELLED)}; DVC's few seconds per stage.",
    ]
    if p["not_measured"]:
        lines.append(f"Not measured (--only): {len(p['not_measured'])} stage(s), e.g. {p['not_measured'][0]}.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- one measurement (a child process)
def measure(config: plan.Config, device_name: str, steps: int, warmup: int, data_images: int,
            score_samples: int, scoring_batch: int, bf16: bool, compile_: bool, data: Path,
            lenet_shape: tuple) -> dict:
    """Time ``steps`` training steps of ``config`` (and scoring); this process's peak memory."""
    import dvclive  # noqa: F401  (a stage imports these too: part of its start)
    import numpy as np
    import psutil
    import torch

    from mnistgan import classifier
    from mnistgan.gan import (
        coupled,
        image,
        loop,  # noqa: F401
        registry,
        sampling,  # noqa: F401
    )
    from mnistgan.metrics import scores
    from mnistgan.models import cogan, lenet
    from mnistgan.pipeline import (
        device as devices,
        figures,  # noqa: F401
    )

    dev = devices.select(device_name)
    n = data_images
    if data.is_file():
        with np.load(data, allow_pickle=False) as d:
            x_np, y_np = d["x"], d["y"]
        reps = -(-n // len(x_np))
        x_np, y_np = np.tile(x_np, (reps, 1, 1))[:n], np.tile(y_np, reps)[:n]
    else:
        rng = np.random.default_rng(0)
        x_np, y_np = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    x = scores.to_model_input(x_np).to(dev)
    y = torch.as_tensor(y_np, dtype=torch.long, device=dev)
    startup = time.time() - psutil.Process().create_time()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    torch.manual_seed(0)
    scorer = lenet.LeNet(*lenet_shape).to(dev).eval()
    features = lenet_shape[1][1]
    ref = (np.zeros(features), np.eye(features))
    b = config.batch
    if config.family == "lenet":
        def run(k):
            classifier.train_classifier(x[: k * b], y[: k * b], x[:b], y[:b], epochs=1, batch_size=b, lr=1e-3,
                                        channels=config.channels, hidden=config.hidden, device=dev)
        score = None
    else:
        if config.family in plan.COUPLED:
            half = n // 2
            data_t = (x[:half], x[half: 2 * half])
            model = coupled.CoupledGAN(cogan.CoupledGenerator(config.latent, config.shared_layers, config.width,
                                                              config.output_layer).to(dev),
                                       cogan.CoupledDiscriminator().to(dev))

            def score():
                classify = lambda a, c: (classifier.predict(scorer, a, scoring_batch, dev).argmax(1),  # noqa: E731
                                         classifier.predict(scorer, c, scoring_batch, dev).argmax(1))
                coupled.agreement_scores(model.generator, registry.PAIRS[0], score_samples, 2, scoring_batch, classify)
        else:
            conditional = registry.get(config.family).conditional
            data_t = (x, y) if conditional else (x,)
            model = image.image_gan(data_t, conditional=conditional, width=int(config.width), depth=config.depth,
                                    latent=config.latent, vbn_batch=b if config.vbn else 0, real_target=1.0, seed=0)

            def score():
                image.lenet_scores(model.generator, scorer, ref, score_samples, 2, scoring_batch)

        def run(k):
            cfg = loop.TrainConfig(epochs=1, batch_size=b, lr=2e-4, betas=(0.5, 0.999), seed=0, train_limit=k * b,
                                   bf16=bf16, compile=compile_)
            loop.train(model, data_t, cfg, name=f"cost {config.name}")

    run(warmup)
    sync()
    t0 = time.perf_counter()
    run(steps)
    sync()
    train_s = time.perf_counter() - t0
    out = {"images_per_s": steps * b / train_s, "startup_s": startup}
    if score is not None:
        score()  # warm-up: eval-mode kernels, LeNet
        sync()
        t0 = time.perf_counter()
        score()
        sync()
        out["scored_per_s"] = score_samples / (time.perf_counter() - t0)
    if dev.type == "cuda":
        out["peak_bytes"] = int(torch.cuda.max_memory_allocated(dev))
    else:
        out["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return out


# ----------------------------------------------------------------------------- the driver
def device_slug(device) -> str:
    import torch

    if device.type == "cuda":
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
    if device.type == "cpu":
        return f"cpu-{os.cpu_count()}cores"
    return device.type


def switches(params: dict, config: plan.Config) -> tuple[bool, bool]:
    section = params[config.family] if config.family in plan.COUPLED else params["gan"]
    return (section["bf16"], section["compile"]) if config.family != "lenet" else (False, False)


def run_copies(config: plan.Config, args, params: dict, data_images: int, threads: int) -> dict:
    """``args.jobs`` measuring processes of ``config`` at once: median rates, largest peak."""
    bf16, compile_ = switches(params, config)
    lenet_shape = (tuple(params["lenet"]["channels"]), tuple(params["lenet"]["hidden"]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(dataclasses.asdict(config)),
           "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--data-images", str(data_images), "--score-samples", str(args.score_samples),
           "--scoring-batch", str(params["scoring"]["batch_size"]), "--data", str(args.data),
           "--lenet", json.dumps(lenet_shape)] + (["--bf16"] if bf16 else []) + (["--compile"] if compile_ else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(args.jobs)]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"cost: error: measuring {config.name} failed: "
                             f"{(err.strip().splitlines() or ['exit ' + str(proc.returncode)])[-1]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    merged = {k: statistics.median(r[k] for r in results) for k in ("images_per_s", "startup_s")}
    if "scored_per_s" in results[0]:
        merged["scored_per_s"] = statistics.median(r["scored_per_s"] for r in results)
    merged["peak_bytes"] = max(r["peak_bytes"] for r in results)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/cost.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=ROOT / "profiles/paper.yaml")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default %(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per config (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default %(default)s)")
    parser.add_argument("--jobs", "-j", type=int, default=1,
                        help="stages sharing the device: copies measured at once, slots of the projection")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="measure only configs (e.g. 'ccgan/F1-*') or stages (e.g. 'train_dcgan@*B128') "
                             "matching this glob; repeatable")
    parser.add_argument("--threads", type=int, help="CPU threads per measuring process (default: the profile's "
                        "cpu_threads, or cores / --jobs where it is 0)")
    parser.add_argument("--score-samples", type=int, default=1000, help="digits (pairs) per timed scoring")
    parser.add_argument("--data", type=Path, default=ROOT / "data/prepared/train.npz",
                        help="real digits to train on if present (else random pixels: same speed)")
    parser.add_argument("--out", type=Path, default=ROOT / "results/cost")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child process: one config
    parser.add_argument("--data-images", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scoring-batch", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--lenet", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.steps, args.jobs) < 1 or args.warmup < 1:
        parser.error("--steps, --warmup and --jobs must be at least 1")

    if args.measure:
        raw = json.loads(args.measure)
        config = plan.Config(**{**raw, "channels": tuple(raw["channels"]), "hidden": tuple(raw["hidden"])})
        lenet_shape = tuple(tuple(v) for v in json.loads(args.lenet))
        print(json.dumps(measure(config, args.device, args.steps, args.warmup, args.data_images, args.score_samples,
                                 args.scoring_batch, args.bf16, args.compile, args.data, lenet_shape)))
        return 0

    import torch

    from mnistgan.errors import PipelineError
    from mnistgan.pipeline import device as devices

    try:
        params = params_mod.load(args.profile)
        dev = devices.select(os.environ.get("MNISTGAN_DEVICE") or args.device)
    except PipelineError as exc:
        raise SystemExit(f"cost: error: {exc}") from None
    works = plan.gan_work(params) + plan.lenet_work(params)
    wanted = [c for c in plan.configs(works) if not args.only or any(
        fnmatch.fnmatchcase(c.name, pat) or any(fnmatch.fnmatchcase(w.stage, pat) for w in works
                                                if c in (p.config for p in w.parts)) for pat in args.only)]
    if not wanted:
        raise SystemExit(f"cost: error: no config or stage matches {args.only} (configs look like "
                         f"{plan.configs(works)[0].name})")
    cores = os.cpu_count() or 1
    threads = args.threads or params["cpu_threads"] or max(1, cores // args.jobs)
    data_images = {w.parts[0].config.name: w.data_images for w in works}
    for w in works:
        for part in w.parts:
            data_images.setdefault(part.config.name, w.data_images)
    print(f"cost: {len(wanted)} config(s) of {args.profile} on {devices.describe(dev)}, {args.jobs} at a time, "
          f"{threads} thread(s) each; {args.steps} steps after {args.warmup}", flush=True)
    measured = {}
    for i, config in enumerate(wanted, 1):
        m = run_copies(config, args, params, data_images[config.name], threads)
        work = next(w for w in works if config in (p.config for p in w.parts))
        m["estimated_bytes"] = plan.memory_bytes(plan.StageWork(work.stage, tuple(
            p for p in work.parts if p.config == config), work.data_images), dev.type)
        measured[config.name] = m
        print(f"cost: [{i}/{len(wanted)}] {config.name}: {m['images_per_s']:.0f} images/s"
              + (f", {m['scored_per_s']:.0f} scored/s" if "scored_per_s" in m else "")
              + f", peak {plan.gib(m['peak_bytes'])} (estimate {plan.gib(m['estimated_bytes'])})", flush=True)
    startup = statistics.median(m["startup_s"] for m in measured.values())
    projection = project(works, measured, startup, args.jobs)
    bf16 = sorted({switches(params, c)[0] for c in wanted if c.family != "lenet"}) or [False]
    compile_ = sorted({switches(params, c)[1] for c in wanted if c.family != "lenet"}) or [False]
    result = {
        "profile": str(args.profile.resolve().relative_to(ROOT)) if args.profile.resolve().is_relative_to(ROOT)
        else str(args.profile),
        "device": devices.describe(dev), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/cost.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "steps": args.steps, "warmup": args.warmup, "jobs": args.jobs, "threads": threads,
        "bf16": "/".join(map(str, bf16)), "compile": "/".join(map(str, compile_)), "startup_s": startup,
        "configs": measured,
        "stage_configs": {w.stage: list(dict.fromkeys(p.config.name for p in w.parts)) for w in works},
        "projection": projection,
    }
    slug = device_slug(dev) + (f"-j{args.jobs}" if args.jobs > 1 else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{slug}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{slug}.md").write_text(markdown(result))
    print(f"cost: one stage at a time {hours(projection['serial_s'])}, {args.jobs} at a time "
          f"{hours(projection['total_s'])}; wrote {args.out / slug}.json and .md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
