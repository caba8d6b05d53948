"""Train one DCGAN or CCGAN run of report 000 (sections 2-3) and score it with the fixed LeNet.

The run id in the report's notation, F<n>-D<n>-B<n>[-vbn][-ls] (e.g. F1-D1-B64-ls), gives the
width F, the discriminator depth D, the batch size B and the switches (virtual batch
normalisation; one-sided label smoothing with real target <family>.label_smoothing).
Everything else comes from params.yaml: the `gan` section and the family's own.

Per epoch, dvclive logs d_loss, g_loss, d_acc_real, d_acc_fake; every <family>.eval_every
epochs also the LeNet scores of gan.eval_samples digits from fixed noise: is, fid (LeNet-FID
against the real test set) and, for the CCGAN, lenet_acc (accuracy on the intended class).
The run's final metrics are the same scores on scoring.samples digits (every generator's
FID at one sample count), with lenet_acc's 95% interval (lenet_acc_ci95), the CCGAN's accuracy
per intended class (lenet_acc_by_class) and both networks' parameter counts.

Writes:
  --out         models/<family>/<run>/: generator.pt and config.json (mnistgan.gan.store.load_generator)
  --live        metrics/<family>/<run>/: dvclive's metrics.json and plots/metrics/*.tsv
  --grid        plots/<family>/<run>.png: 100 digits from fixed noise (CCGAN: one class per row)
  --checkpoint  a checkpoint after every epoch: a rerun of a killed stage resumes from it and
                ends with the same outputs as an uninterrupted run
"""

from pathlib import Path

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)
import torch
from dvclive import Live

from mnistgan import classifier
from mnistgan.files import load_npz
from mnistgan.gan import checkpoints, image, loop, registry, sampling, store
from mnistgan.metrics import scores
from mnistgan.pipeline import device as devices, figures
from mnistgan.pipeline.params import parse_run_id
from mnistgan.pipeline.seeding import seed_everything
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    spec, run = registry.get(args.family), args.run
    family, shared, p, seed = spec.name, params["gan"], params[spec.name], params["seed"]
    conditional = spec.conditional
    dev = devices.select(params["device"])
    seed_everything(seed)

    train = load_npz(Path(args.data) / "train.npz")
    x = scores.to_model_input(train["x"]).to(dev)
    data = (x, torch.as_tensor(train["y"], dtype=torch.long, device=dev)) if conditional else (x,)
    model = spec.build(data, params, run, seed)
    scorer, ref_stats = classifier.load_scorer(args.scorer, dev)

    config = loop.TrainConfig(epochs=p["epochs"], batch_size=parse_run_id(run).batch_size, lr=p["lr"],
                              betas=tuple(shared["betas"]), seed=seed, train_limit=p["train_limit"],
                              eval_every=p["eval_every"], bf16=shared["bf16"], compile=shared["compile"],
                              lr_decay=p["lr_decay"], ema=p["ema"])
    identity = {
        "family": family, "run": run, "latent": shared["latent"], "real_target": model.real_target,
        "eval_samples": shared["eval_samples"],
        "inputs": checkpoints.file_digest([Path(args.data) / "train.npz", args.scorer, __file__]),
        "code": checkpoints.code_digest(),
    }
    name = f"train_gan {family} {run}"
    with Live(args.live, dvcyaml=False, save_dvc_exp=False) as live:
        trained = loop.train(
            model, data, config, name=name, identity=identity, checkpoint=args.checkpoint,
            evaluate=lambda g: image.lenet_scores(g, scorer, ref_stats, shared["eval_samples"],
                                                  seed + sampling.EVAL_SEED, params["scoring"]["batch_size"]),
            on_epoch=loop.dvclive_logger(live, name, p["epochs"]),
        )
        # The run's metrics: scored once more at the end on scoring.samples digits, the same
        # number for every generator, so FIDs compare (the curves use gan.eval_samples).
        final = image.lenet_scores(trained.generator, scorer, ref_stats, params["scoring"]["samples"],
                                   seed + sampling.EVAL_SEED, params["scoring"]["batch_size"], intervals=True)
        sizes = {f"params_{net}": sum(w.numel() for w in getattr(model, net).parameters())
                 for net in ("generator", "discriminator")}  # report 000: G ~7M, D ~310k at F1-D1
        live.summary.update({**final, "epochs": p["epochs"], **sizes})
    print(f"{name}: final scores on {final['samples']} digits: " + ", ".join(
        f"{k} {final[k]:.4f}" for k in ("lenet_acc", "is", "fid") if k in final), flush=True)

    labels = torch.arange(10).repeat_interleave(10) if conditional else None
    z = sampling.latent_noise(100, shared["latent"], seed + sampling.GRID_SEED)
    grid = sampling.generate(trained.generator, z, labels)
    figures.save_grid(args.grid, grid.numpy(), nrow=10, title=f"{family.upper()} {run}, epoch {p['epochs']}",
                      row_labels=[str(c) for c in range(10)] if conditional else None)
    store.save_generator(args.out, trained.generator, family,
                         {"run": run, "epochs": p["epochs"], "final": trained.history[-1]})


def configure(parser):
    parser.add_argument("--family", required=True, choices=[f.name for f in registry.image_families()])
    parser.add_argument("--run", required=True, help="run id F<n>-D<n>-B<n>[-vbn][-ls], e.g. F1-D1-B64")
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz")
    parser.add_argument("--scorer", default="models/lenet", help="the fixed LeNet scorer")
    parser.add_argument("--out", required=True, help="generator directory, e.g. models/ccgan/F1-D1-B64")
    parser.add_argument("--live", required=True, help="dvclive directory, e.g. metrics/ccgan/F1-D1-B64")
    parser.add_argument("--grid", required=True, help="sample grid PNG, e.g. plots/ccgan/F1-D1-B64.png")
    parser.add_argument("--checkpoint", required=True, help="e.g. checkpoints/ccgan/F1-D1-B64.pt")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
