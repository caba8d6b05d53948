"""Train the Coupled GAN of report 004 on one domain pair and score its pixel agreement.

Domain 1 is the original digits of half A of the training set, domain 2 the transformed
(--pair: rotate, negative or edge) digits of the disjoint half B (data/prepared/domains.npz):
no pair is ever shown, the joint distribution comes from weight sharing alone. Settings come
from the `cogan` section of params.yaml.

Per epoch, dvclive logs d_loss and g_loss (sums over both domains), d_acc_real and d_acc_fake
(means over both); every cogan.eval_every epochs also `agreement`, the average pixel
agreement ratio of cogan.eval_samples pairs from fixed noise (mnistgan.agreement).

Writes:
  --out         models/cogan/<pair>/: generator.pt and config.json (mnistgan.gan.load_generator)
  --live        metrics/cogan/<pair>/: dvclive's metrics.json and plots/metrics/*.tsv
  --grid        plots/cogan/<pair>.png: 4 x 10 pairs from fixed noise, each row of domain-1
                samples above the row of domain-2 samples from the same z
  --checkpoint  a checkpoint after every epoch: a rerun of a killed stage resumes from it
"""

from pathlib import Path

from dvclive import Live

import checkout  # noqa: F401  (first: this checkout's src/mnistgan, see checkout.py)
from mnistgan import device as devices, figures, gan, scoring
from mnistgan.cli import run_stage
from mnistgan.files import load_npz
from mnistgan.models import cogan
from mnistgan.params import COGAN_DOMAINS

GRID_BLOCKS, GRID_COLUMNS = 4, 10


def main(args, params):
    p, seed, pair = params["cogan"], params["seed"], args.pair
    dev = devices.select(params["device"])
    devices.seed_everything(seed)

    train, domains = load_npz(Path(args.data) / "train.npz"), load_npz(Path(args.data) / "domains.npz")
    first, second = train["x"][domains["half_a"]], domains[pair]
    n = min(len(first), len(second))  # the halves differ by a few images; pairs are never matched anyway
    data = tuple(scoring.to_model_input(x[:n]).to(dev) for x in (first, second))
    model = gan.CoupledGAN(cogan.CoupledGenerator(p["latent"], p["shared_layers"], p["width"]).to(dev),
                           cogan.CoupledDiscriminator().to(dev))

    config = gan.TrainConfig(epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], betas=tuple(p["betas"]),
                             seed=seed, train_limit=p["train_limit"], eval_every=p["eval_every"], bf16=p["bf16"],
                             compile=p["compile"])
    identity = {
        "family": "cogan", "pair": pair, "latent": p["latent"], "shared_layers": p["shared_layers"],
        "width": p["width"], "eval_samples": p["eval_samples"],
        "inputs": gan.file_digest([Path(args.data) / "train.npz", Path(args.data) / "domains.npz", __file__]),
        "code": gan.code_digest(),
    }
    name = f"train_cogan {pair}"
    with Live(args.live, dvcyaml=False, save_dvc_exp=False) as live:
        history = gan.train(
            model, data, config, name=name, identity=identity, checkpoint=args.checkpoint,
            evaluate=lambda: gan.agreement_scores(model.generator, pair, p["eval_samples"], seed + gan.EVAL_SEED,
                                                  params["scoring"]["batch_size"]),
            on_epoch=gan.dvclive_logger(live, name, p["epochs"]),
        )
        live.summary["epochs"] = p["epochs"]

    z = gan.latent_noise(GRID_BLOCKS * GRID_COLUMNS, p["latent"], seed + gan.GRID_SEED)
    pairs = gan.generate(model.generator, z).numpy().reshape(GRID_BLOCKS, GRID_COLUMNS, 2, 28, 28)
    rows = pairs.transpose(0, 2, 1, 3, 4).reshape(-1, 28, 28)  # block by block: domain-1 row, domain-2 row
    figures.save_grid(args.grid, rows, nrow=GRID_COLUMNS, title=f"CoGAN original / {pair}, epoch {p['epochs']}",
                      row_labels=["original", pair] * GRID_BLOCKS)
    gan.save_generator(args.out, model.generator, "cogan", {"pair": pair, "epochs": p["epochs"], "final": history[-1]})


def configure(parser):
    parser.add_argument("--pair", required=True, choices=COGAN_DOMAINS, help="the domain-2 transform")
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz and domains.npz")
    parser.add_argument("--out", required=True, help="generator directory, e.g. models/cogan/rotate")
    parser.add_argument("--live", required=True, help="dvclive directory, e.g. metrics/cogan/rotate")
    parser.add_argument("--grid", required=True, help="sample grid PNG, e.g. plots/cogan/rotate.png")
    parser.add_argument("--checkpoint", required=True, help="e.g. checkpoints/cogan/rotate.pt")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
