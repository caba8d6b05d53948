"""Train the Coupled GAN of report 004 on one domain pair and score its pixel agreement.

Domain 1 is the original digits of half A of the training set, domain 2 the transformed
(--pair: rotate, negative or edge) digits of the disjoint half B (data/prepared/domains.npz):
no pair is ever shown, the joint distribution comes from weight sharing alone. Settings come
from the `cogan` section of params.yaml (epochs and pairs per epoch: cogan.epochs_by_pair[pair] and
cogan.train_limit_by_pair[pair] where named, else cogan.epochs and cogan.train_limit).

Per epoch, dvclive logs d_loss and g_loss (sums over both domains), d_acc_real and d_acc_fake
(means over both); every cogan.eval_every epochs also the scores of cogan.eval_samples pairs
from fixed noise (mnistgan.metrics.agreement): `agreement`, the average pixel agreement ratio, beside
`agreement_chance` (the same samples re-paired at random) and `agreement_normalised`; and
`label_agreement`, the fraction of pairs whose two images show the same digit, beside its
chance. Domain-1 digits are read by the fixed LeNet (--scorer); a domain-2 image is mapped
back by the transform's exact inverse (rotate, negative) and read by the same LeNet, or,
without an inverse (edge), read by a LeNet trained on that domain (--domain-scorer,
stages/train_domain_lenet.py). The final scores, with 95% intervals, are the run's metrics,
with each domain's LeNet-FID in one feature space (fid_domain1, fid_domain2: which domain's
images are further from real digits; mnistgan.gan.coupled.domain_fids).

Writes:
  --out         models/cogan/<pair>/: generator.pt and config.json (mnistgan.gan.store.load_generator)
  --live        metrics/cogan/<pair>/: dvclive's metrics.json and plots/metrics/*.tsv
  --grid        plots/cogan/<pair>.png: 4 x 10 pairs from fixed noise, each row of domain-1
                samples above the row of domain-2 samples from the same z
  --checkpoint  a checkpoint after every epoch: a rerun of a killed stage resumes from it
"""

from pathlib import Path

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)
from dvclive import Live

from mnistgan import classifier
from mnistgan.data import domains
from mnistgan.files import load_npz
from mnistgan.gan import checkpoints, coupled, loop, registry, sampling, store
from mnistgan.metrics import scores
from mnistgan.pipeline import device as devices, figures
from mnistgan.pipeline.params import pair_budget
from mnistgan.pipeline.seeding import seed_everything
from mnistgan.pipeline.stage import run_stage

GRID_BLOCKS, GRID_COLUMNS = 4, 10


def main(args, params):
    spec = registry.get(args.family)
    p, seed, pair = params[spec.name], params["seed"], args.pair
    epochs, train_limit = pair_budget(p, pair)
    dev = devices.select(params["device"])
    seed_everything(seed)

    train, halves = load_npz(Path(args.data) / "train.npz"), load_npz(Path(args.data) / "domains.npz")
    first, second = train["x"][halves["half_a"]], halves[pair]
    n = min(len(first), len(second))  # the halves differ by a few images; pairs are never matched anyway
    data = tuple(scores.to_model_input(x[:n]).to(dev) for x in (first, second))
    model = spec.build(data, params, pair, seed)

    config = loop.TrainConfig(epochs=epochs, batch_size=p["batch_size"], lr=p["lr"],
                              betas=tuple(p["betas"]), seed=seed, train_limit=train_limit,
                              eval_every=p["eval_every"], bf16=p["bf16"], compile=p["compile"],
                              lr_decay=p["lr_decay"], ema=p["ema"])
    identity = {
        "family": spec.name, "pair": pair, "latent": p["latent"], "shared_layers": p["shared_layers"],
        "output_layer": p["output_layer"], "width": p["width"], "eval_samples": p["eval_samples"],
        "inputs": checkpoints.file_digest([Path(args.data) / "train.npz", Path(args.data) / "domains.npz", __file__,
                                           args.scorer, *([] if pair in domains.INVERSES else [args.domain_scorer])]),
        "code": checkpoints.code_digest(),
    }
    name = f"train_cogan {pair}"
    classify = digit_reader(pair, args.scorer, args.domain_scorer, params["scoring"]["batch_size"], dev)
    # the fixed LeNet and, for a transform without an inverse, the domain's own: each domain's FID
    scorers = (*classifier.load_scorer(args.scorer, dev),
               *(classifier.load_scorer(args.domain_scorer, dev) if pair not in domains.INVERSES else (None, None)))

    def pair_scores(generator) -> dict:
        return coupled.agreement_scores(generator, pair, p["eval_samples"], seed + sampling.EVAL_SEED,
                                        params["scoring"]["batch_size"], classify)

    with Live(args.live, dvcyaml=False, save_dvc_exp=False) as live:
        trained = loop.train(
            model, data, config, name=name, identity=identity, checkpoint=args.checkpoint,
            # the per-epoch curves: the numbers only (no intervals, counts or labels)
            evaluate=lambda g: {k: v for k, v in pair_scores(g).items() if isinstance(v, float)},
            on_epoch=loop.dvclive_logger(live, name, epochs),
        )
        final = pair_scores(trained.generator)
        final.update(coupled.domain_fids(trained.generator, pair, p["eval_samples"], seed + sampling.EVAL_SEED,
                                         params["scoring"]["batch_size"], *scorers, device=dev))
        live.summary.update({**final, "epochs": epochs})
    print(f"{name}: pixel agreement {final['agreement']:.4f} (chance {final['agreement_chance']:.4f}, "
          f"normalised {final['agreement_normalised']:.3f}); label agreement {final['label_agreement']:.4f} "
          f"(chance {final['label_agreement_chance']:.4f}) on {final['pairs']} pairs; LeNet-FID domain 1 "
          f"{final['fid_domain1']:.2f}, domain 2 {final['fid_domain2']:.2f} ({final['fid_space']} digits)", flush=True)

    z = sampling.latent_noise(GRID_BLOCKS * GRID_COLUMNS, p["latent"], seed + sampling.GRID_SEED)
    pairs = sampling.generate(trained.generator, z).numpy().reshape(GRID_BLOCKS, GRID_COLUMNS, 2, 28, 28)
    rows = pairs.transpose(0, 2, 1, 3, 4).reshape(-1, 28, 28)  # block by block: domain-1 row, domain-2 row
    figures.save_grid(args.grid, rows, nrow=GRID_COLUMNS, title=f"CoGAN original / {pair}, epoch {epochs}",
                      row_labels=["original", pair] * GRID_BLOCKS)
    store.save_generator(args.out, trained.generator, spec.name,
                         {"pair": pair, "epochs": epochs, "final": trained.history[-1]})


def digit_reader(pair: str, scorer_dir: str, domain_scorer_dir: str, batch_size: int, dev):
    """``classify(x1, x2)`` -> the digit labels of domain-1 and domain-2 images (uint8)."""
    scorer, _ = classifier.load_scorer(scorer_dir, dev)
    if pair in domains.INVERSES:
        second, back = scorer, domains.INVERSES[pair]
    else:
        second, back = classifier.load_scorer(domain_scorer_dir, dev)[0], (lambda x: x)

    def classify(x1, x2):
        return (classifier.predict(scorer, x1, batch_size, dev).argmax(1),
                classifier.predict(second, back(x2), batch_size, dev).argmax(1))
    return classify


def configure(parser):
    parser.add_argument("--family", required=True, choices=[f.name for f in registry.coupled_families()])
    parser.add_argument("--pair", required=True, choices=registry.PAIRS, help="the domain-2 transform")
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz and domains.npz")
    parser.add_argument("--scorer", default="models/lenet", help="the fixed LeNet: reads domain-1 digits")
    parser.add_argument("--domain-scorer", default="models/lenet_edge",
                        help="a LeNet trained on domain-2 digits, for a transform without an inverse (edge)")
    parser.add_argument("--out", required=True, help="generator directory, e.g. models/cogan/rotate")
    parser.add_argument("--live", required=True, help="dvclive directory, e.g. metrics/cogan/rotate")
    parser.add_argument("--grid", required=True, help="sample grid PNG, e.g. plots/cogan/rotate.png")
    parser.add_argument("--checkpoint", required=True, help="e.g. checkpoints/cogan/rotate.pt")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
