"""Budget against score: train one GAN of the pipeline and score it after every epoch.

The default run has a fixed CPU budget (issue: "the headline numbers on a 2-core CPU in 25
minutes"), so the question for each GAN is what another minute of training buys. This trains
one DCGAN/CCGAN run or one CoGAN pair exactly as its stage does (params.yaml plus ``--set``
overrides, validated like the pipeline's), and after every epoch scores it on ``--samples``
digits from fixed noise: the images seen so far, the training minutes so far (scoring not
counted), and the scores. With ``ema`` on, it scores both the moving average (what the stage
saves) and G itself, so one run shows what the average is worth.

    python benchmarks/budget.py ccgan F1-D1-B64 --set ccgan.lr=0.0002 --set ccgan.train_limit=0 \\
        --set ccgan.epochs=4 --set ccgan.ema=0.999
    python benchmarks/budget.py cogan edge --set cogan.train_limit=0 --set cogan.epochs=4

Needs `dvc repro train_lenet train_edge_lenet` (prepared data and the scorers). Prints one line
per epoch and writes them to ``--out`` (JSON). Not a stage: a probe for choosing a profile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

from mnistgan import classifier
from mnistgan.data import domains
from mnistgan.files import load_npz
from mnistgan.gan import coupled, image, loop, registry, sampling
from mnistgan.metrics import scores
from mnistgan.pipeline import device as devices, params as params_mod
from mnistgan.pipeline.memory import keep_freed_memory
from mnistgan.pipeline.seeding import seed_everything
from mnistgan.pipeline.stage import set_cpu_threads


def build(family: str, what: str, params: dict, data_dir: Path, dev):
    """The model, its training tensors and TrainConfig, as the family's stage builds them (the
    registry's builder: stages/train_gan.py for an image family, stages/train_cogan.py for a pair)."""
    spec = registry.get(family)
    train = load_npz(data_dir / "train.npz")
    p, seed = params[spec.name], params["seed"]
    if spec in registry.coupled_families():
        halves = load_npz(data_dir / "domains.npz")
        first, second = train["x"][halves["half_a"]], halves[what]
        n = min(len(first), len(second))
        data = tuple(scores.to_model_input(x[:n]).to(dev) for x in (first, second))
        batch, betas, bf16, compile_ = p["batch_size"], p["betas"], p["bf16"], p["compile"]
        epochs, limit = params_mod.pair_budget(p, what)
    else:
        shared = params["gan"]
        x = scores.to_model_input(train["x"]).to(dev)
        data = (x, torch.as_tensor(train["y"], dtype=torch.long, device=dev)) if spec.conditional else (x,)
        batch, betas = params_mod.parse_run_id(what).batch_size, shared["betas"]
        bf16, compile_ = shared["bf16"], shared["compile"]
        epochs, limit = p["epochs"], p["train_limit"]
    model = spec.build(data, params, what, seed)
    config = loop.TrainConfig(epochs=epochs, batch_size=batch, lr=p["lr"], betas=tuple(betas),
                              seed=seed, train_limit=limit, bf16=bf16, compile=compile_,
                              lr_decay=p["lr_decay"], ema=p["ema"])
    return model, data, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", choices=sorted(registry.FAMILIES))
    parser.add_argument("what", help="run id (F1-D1-B64) or CoGAN pair (edge, negative, rotate)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--scorer", default="models/lenet")
    parser.add_argument("--domain-scorer", default="models/lenet_edge")
    parser.add_argument("--samples", type=int, default=5000, help="digits (pairs) per score (default: %(default)s)")
    parser.add_argument("--out", help="JSON file for the per-epoch records")
    args = parser.parse_args(argv)

    sets = dict(item.partition("=")[::2] for item in args.set)
    try:
        params = params_mod.validate(params_mod.apply_overrides(yaml.safe_load(Path(args.params).read_text()),
                                                                {k: yaml.safe_load(v) for k, v in sets.items()}))
    except (OSError, yaml.YAMLError, params_mod.ParamsError) as exc:
        parser.error(str(exc).splitlines()[0])
    keep_freed_memory()  # as every stage does (cli.run_stage)
    set_cpu_threads(params)
    dev = devices.select(params["device"])
    seed_everything(params["seed"])
    model, data, config = build(args.family, args.what, params, Path(args.data), dev)
    scorer, ref_stats = classifier.load_scorer(args.scorer, dev)
    batch, seed = params["scoring"]["batch_size"], params["seed"] + sampling.EVAL_SEED
    if registry.get(args.family) in registry.coupled_families():
        if args.what in domains.INVERSES:
            second, back = scorer, domains.INVERSES[args.what]
        else:
            second, back = classifier.load_scorer(args.domain_scorer, dev)[0], (lambda x: x)

        def classify(x1, x2):
            return (classifier.predict(scorer, x1, batch, dev).argmax(1),
                    classifier.predict(second, back(x2), batch, dev).argmax(1))

        def score(g):
            s = coupled.agreement_scores(g, args.what, args.samples, seed, batch, classify)
            return {k: s[k] for k in ("agreement", "agreement_chance", "agreement_normalised", "label_agreement")}
    else:
        def score(g):
            s = image.lenet_scores(g, scorer, ref_stats, args.samples, seed, batch)
            return {k: v for k, v in s.items() if k in ("lenet_acc", "is", "fid")}

    clock = {"train_s": 0.0, "since": time.perf_counter()}
    per_epoch = min(len(data[0]), config.train_limit or len(data[0])) // config.batch_size * config.batch_size
    records = []

    def evaluate(g):
        clock["train_s"] += time.perf_counter() - clock["since"]
        record = {"images": per_epoch * (len(records) + 1), "train_min": round(clock["train_s"] / 60, 2), **score(g)}
        if g is not model.generator:  # ema on: G itself too
            record.update({f"g_{k}": v for k, v in score(model.generator).items()})
        records.append(record)
        print("budget: " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in record.items()), flush=True)
        clock["since"] = time.perf_counter()
        return {}

    loop.train(model, data, config, name=f"budget {args.family} {args.what}", evaluate=evaluate)
    if args.out:
        Path(args.out).write_text(json.dumps({"argv": sys.argv[1:], "records": records}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
