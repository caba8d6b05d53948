"""Decode MNIST into compact arrays and build the domains of report 004.

Writes data/prepared/{train,test}.npz (x uint8 (N,28,28), y uint8), and domains.npz: the two
disjoint class-stratified halves of the training set (half_a, half_b indices) and the
domain-2 images (rotate, edge, negative) of half B for the CoGAN. Also the class-count table
(Table 1 of report 004; plots/data/class_counts_*.csv), a figure of the four domains (Fig 1),
a seeded t-SNE of a stratified subsample (Figs 2-3) and how well it separates each digit
(plots/data/tsne_purity.csv: the k-nearest-neighbour purity of each class in the embedding,
mnistgan.metrics.embedding).
"""

from pathlib import Path

import numpy as np
import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)
from sklearn.manifold import TSNE

from mnistgan.data import domains, mnist
from mnistgan.files import save_csv, save_npz
from mnistgan.metrics.embedding import knn_purity
from mnistgan.pipeline import figures
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    p = params["data"]
    rng = np.random.default_rng(params["seed"])
    raw, out, plots = Path(args.raw), Path(args.out), Path(args.plots)

    splits = {}
    for name, limit in (("train", p["train_limit"]), ("test", p["test_limit"])):
        s = mnist.read_split(raw, name)
        keep = mnist.stratified_subset(s.y, limit, rng)
        splits[name] = mnist.Split(s.x[keep], s.y[keep])
        save_npz(out / f"{name}.npz", x=splits[name].x, y=splits[name].y)
        counts = mnist.class_counts(splits[name].y)
        save_csv(plots / f"class_counts_{name}.csv", ["digit", "count"], enumerate(counts.tolist()))
        print(f"prepare: {name}: {len(splits[name].y)} images, per class {counts.tolist()}")

    train = splits["train"]
    half_a, half_b = mnist.disjoint_halves(train.y, rng)
    xb = train.x[half_b]
    save_npz(out / "domains.npz", half_a=half_a, half_b=half_b,
             **{name: fn(xb) for name, fn in domains.TRANSFORMS.items()})

    # Fig 1 of report 004: the same 10 digits in each domain.
    first = [int(np.flatnonzero(train.y == c)[0]) for c in range(10)]
    rows = [train.x[first]] + [fn(train.x[first]) for fn in domains.TRANSFORMS.values()]
    figures.save_grid(plots / "domains.png", np.concatenate(rows), nrow=10,
                      row_labels=["original", *domains.TRANSFORMS])

    # Figs 2-3 of report 004: t-SNE of a stratified subsample, coloured by class.
    sub = mnist.stratified_subset(train.y, p["tsne_samples"], rng)
    xy = TSNE(n_components=2, perplexity=p["tsne_perplexity"], init="pca",
              random_state=params["seed"]).fit_transform(train.x[sub].reshape(len(sub), -1) / 255.0)
    figures.save_scatter(plots / "tsne.png", xy, train.y[sub],
                         f"t-SNE of {len(sub)} training digits (perplexity {p['tsne_perplexity']:g})")
    purity = knn_purity(xy, train.y[sub], k=min(TSNE_NEIGHBOURS, len(sub) - 1))
    save_csv(plots / "tsne_purity.csv", ["digit", "purity", "low", "high", "n", "chance"],
             ([c, r["purity"], *(r["purity_ci95"] or ["", ""]), r["n"], r["chance"]] for c, r in purity.items()))


TSNE_NEIGHBOURS = 10  # k of the purity: a point's neighbourhood in the t-SNE figure


def configure(parser):
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data/prepared")
    parser.add_argument("--plots", default="plots/data")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
