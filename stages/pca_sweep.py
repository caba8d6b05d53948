"""PCA as a generative model of digits (report 000, section 5, Fig 13), and probabilistic PCA.

Per class, PCA is fitted on the prepared training images (pca.fit_images of them, stratified;
pixels scaled to [-1, 1] like the GANs'). For every n in pca.components:

* reconstruction: the real test images (pca.test_images of them, stratified) are rebuilt from n
  components of their own class's PCA -- the report's experiment;
* ppca (beyond the report, its "future work"): pca.ppca_samples NEW digits are sampled from the
  maximum-likelihood probabilistic PCA of each class with n components (class proportions of
  the training set), so PCA is compared as a generator and not only as a compressor.

Each set is scored with the fixed LeNet (models/lenet) like every generator: accuracy of the
intended label (lenet_acc), Inception Score (is) and LeNet-FID against the real test set (fid).

Writes, under --plots (plots/pca):
  curve.csv           n, method (reconstruction | ppca), lenet_acc, is, fid
  reconstruction.png  one class per row: a test digit, then rebuilt from each n
  ppca.png            one class per row: one new PPCA digit for each n
and --metrics (metrics/pca.json): saturation_components (the smallest n whose lenet_acc is within
  pca.saturation_tolerance of the best), best.{n, lenet_acc}, ppca.best.{n, lenet_acc},
  ppca.saturation_components, the scores per n of both methods, and those of the real test
  subset itself (the ceiling).
"""

from pathlib import Path

import numpy as np

import checkout  # noqa: F401  (first: this checkout's src/mnistgan, see checkout.py)
from mnistgan import classifier, device as devices, figures, pca, scoring
from mnistgan.cli import run_stage
from mnistgan.data import allocate, stratified_subset
from mnistgan.files import load_npz, save_csv, save_json

METHODS = ("reconstruction", "ppca")
SCORES = ("lenet_acc", "is", "fid")


def as_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 in [-1, 1], the scaling the GANs and the scorer use."""
    return scoring.to_model_input(images).squeeze(1).numpy()


def main(args, params):
    p, seed, bs = params["pca"], params["seed"], params["scoring"]["batch_size"]
    dev = devices.select(params["device"])
    train, test = load_npz(Path(args.data) / "train.npz"), load_npz(Path(args.data) / "test.npz")
    scorer, ref_stats = classifier.load_scorer(args.scorer, dev)

    fit = stratified_subset(train["y"], p["fit_images"], np.random.default_rng(seed))
    model = pca.PerClassPCA.fit(as_pixels(train["x"][fit]), train["y"][fit], (-1.0, 1.0))
    keep = stratified_subset(test["y"], p["test_images"], np.random.default_rng(seed))
    x_test, y_test = as_pixels(test["x"][keep]), test["y"][keep].astype(np.int64)
    counts = allocate(np.bincount(train["y"], minlength=10), p["ppca_samples"])
    print(f"pca_sweep: per-class PCA fitted on {len(fit)} training images; rebuilding {len(keep)} test "
          f"images and sampling {p['ppca_samples']} PPCA digits for n in {p['components']}", flush=True)

    def score(images, labels):
        return scoring.score_samples(scorer, images, labels, ref_stats, bs, dev)

    first_of_class = [int(np.flatnonzero(y_test == c)[0]) for c in range(10)]
    grids = {"reconstruction": [x_test[first_of_class]], "ppca": []}
    results = {m: {} for m in METHODS}
    for n in p["components"]:
        rebuilt, labels = model.reconstruct(x_test, y_test, n)
        results["reconstruction"][n] = score(rebuilt, labels)
        grids["reconstruction"].append(rebuilt[first_of_class])
        # Each n gets its own stream, so adding or removing an n leaves the others' samples alone.
        samples, labels = model.sample(counts, n, np.random.default_rng([seed, n]))
        results["ppca"][n] = score(samples, labels)
        grids["ppca"].append(samples[np.searchsorted(labels, np.arange(10))])
        print(f"pca_sweep: n={n:3d}  " + "  |  ".join(
            f"{m}: acc {results[m][n]['lenet_acc']:.4f} IS {results[m][n]['is']:.3f} FID {results[m][n]['fid']:.2f}"
            for m in METHODS), flush=True)

    plots = Path(args.plots)
    save_csv(plots / "curve.csv", ["n", "method", *SCORES],
             [(n, m, *(results[m][n][s] for s in SCORES)) for m in METHODS for n in p["components"]])
    ns = ", ".join(map(str, p["components"]))
    for m, title in (("reconstruction", f"test digit, then rebuilt from n = {ns} components"),
                     ("ppca", f"new PPCA digits, n = {ns} components")):
        columns = np.stack(grids[m], axis=1)  # (10 classes, columns, 28, 28)
        figures.save_grid(plots / f"{m}.png", columns.reshape(-1, 28, 28), nrow=columns.shape[1],
                          title=title, row_labels=[str(c) for c in range(10)])
    save_json(args.metrics, summarise(results, p["saturation_tolerance"], score(x_test, y_test)))


def summarise(results: dict, tolerance: float, real: dict) -> dict:
    """metrics/pca.json: saturation point, best n and the scores per n of both methods."""
    out = {}
    for m in METHODS:
        ns = list(results[m])
        acc = [results[m][n]["lenet_acc"] for n in ns]
        best = ns[int(np.argmax(acc))]
        out[m] = {
            "saturation_components": pca.saturation_point(ns, acc, tolerance),
            "best": {"n": best, "lenet_acc": results[m][best]["lenet_acc"]},
            **{f"n{n}": results[m][n] for n in ns},
        }
    return {
        "saturation_components": out["reconstruction"]["saturation_components"],
        "best": out["reconstruction"]["best"],
        "ppca": out["ppca"],
        "reconstruction": out["reconstruction"],
        "real_test": real,
    }


def configure(parser):
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz and test.npz")
    parser.add_argument("--scorer", default="models/lenet", help="the fixed LeNet scorer")
    parser.add_argument("--plots", default="plots/pca")
    parser.add_argument("--metrics", default="metrics/pca.json")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
