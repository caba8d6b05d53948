"""PCA as a generative model of digits (report 000, section 5, Fig 13), and probabilistic PCA.

PCA is fitted on the prepared training images (pca.fit_images of them, stratified; pixels
scaled to [-1, 1] like the GANs'). For every n in pca.components, three sets of
scoring.samples digits are scored:

* global: real test digits (stratified) rebuilt from n components of ONE basis fitted on all
  classes (the section's first paragraph). Rebuilding does not see the label;
* per_class: the same test digits rebuilt from n components of their own class's PCA -- the
  report's Fig 13. This leaks the label: with one component a digit becomes roughly its
  class mean, which LeNet reads correctly, so its accuracy saturates at n = 1;
* ppca (beyond the report, its "future work"): NEW digits sampled from the maximum-likelihood
  probabilistic PCA of each class with n components (class proportions of the training set),
  so PCA is compared as a generator and not only as a compressor.

Each set is scored with the fixed LeNet (models/lenet) like every generator: accuracy of the
intended label (lenet_acc, with its 95% interval), Inception Score (is) and LeNet-FID against
the real test set (fid), all on scoring.samples digits like the GANs' final scores.

Writes, under --plots (plots/pca):
  curve.csv           n, method (global | per_class | ppca), lenet_acc, is, fid
  reconstruction.png  one class per row: a test digit, then rebuilt from each n (per class)
  global.png          the same digits rebuilt from each n of the global basis
  ppca.png            one class per row: one new PPCA digit for each n
and --metrics (metrics/pca.json), per method: saturation_components (the smallest n whose
  lenet_acc is within pca.saturation_tolerance of the best), fid_saturation_components (the
  smallest n whose FID is within pca.fid_saturation_tolerance of the best), best.{n,
  lenet_acc}, the scores per n; and the scores of the real test digits themselves (the ceiling).
"""

from pathlib import Path

import numpy as np
import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan import classifier, pca
from mnistgan.data.mnist import allocate, stratified_subset
from mnistgan.files import load_npz, save_csv, save_json
from mnistgan.metrics import scores
from mnistgan.pipeline import device as devices, figures
from mnistgan.pipeline.stage import run_stage

METHODS = ("global", "per_class", "ppca")
SCORES = ("lenet_acc", "is", "fid")


def as_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 in [-1, 1], the scaling the GANs and the scorer use."""
    return scores.to_model_input(images).squeeze(1).numpy()


def main(args, params):
    p, seed, bs, n_scored = params["pca"], params["seed"], params["scoring"]["batch_size"], params["scoring"]["samples"]
    dev = devices.select(params["device"])
    train, test = load_npz(Path(args.data) / "train.npz"), load_npz(Path(args.data) / "test.npz")
    scorer, ref_stats = classifier.load_scorer(args.scorer, dev)

    fit = stratified_subset(train["y"], p["fit_images"], np.random.default_rng(seed))
    x_fit, y_fit = as_pixels(train["x"][fit]), train["y"][fit]
    per_class = pca.PerClassPCA.fit(x_fit, y_fit, (-1.0, 1.0))
    one_basis = pca.GlobalPCA.fit(x_fit, (-1.0, 1.0))
    keep = stratified_subset(test["y"], n_scored, np.random.default_rng(seed))
    x_test, y_test = as_pixels(test["x"][keep]), test["y"][keep].astype(np.int64)
    counts = allocate(np.bincount(train["y"], minlength=10), n_scored)
    print(f"pca_sweep: global and per-class PCA fitted on {len(fit)} training images; rebuilding {len(keep)} "
          f"test digits and sampling {n_scored} PPCA digits for n in {p['components']}", flush=True)

    def score(images, labels):
        return scores.score_samples(scorer, images, labels, ref_stats, bs, dev, intervals=True)

    first_of_class = [int(np.flatnonzero(y_test == c)[0]) for c in range(10)]
    grids = {"global": [x_test[first_of_class]], "per_class": [x_test[first_of_class]], "ppca": []}
    results = {m: {} for m in METHODS}
    for n in p["components"]:
        rebuilt = one_basis.reconstruct(x_test, n)
        results["global"][n] = score(rebuilt, y_test)
        grids["global"].append(rebuilt[first_of_class])
        rebuilt, labels = per_class.reconstruct(x_test, y_test, n)
        results["per_class"][n] = score(rebuilt, labels)
        grids["per_class"].append(rebuilt[first_of_class])
        # Each n gets its own stream, so adding or removing an n leaves the others' samples alone.
        samples, labels = per_class.sample(counts, n, np.random.default_rng([seed, n]))
        results["ppca"][n] = score(samples, labels)
        grids["ppca"].append(samples[np.searchsorted(labels, np.arange(10))])
        print(f"pca_sweep: n={n:3d}  " + "  |  ".join(
            f"{m}: acc {results[m][n]['lenet_acc']:.4f} FID {results[m][n]['fid']:.2f}" for m in METHODS), flush=True)

    plots = Path(args.plots)
    save_csv(plots / "curve.csv", ["n", "method", *SCORES],
             [(n, m, *(results[m][n][s] for s in SCORES)) for m in METHODS for n in p["components"]])
    ns = ", ".join(map(str, p["components"]))
    for m, png, title in (("per_class", "reconstruction", f"test digit, then rebuilt per class from n = {ns}"),
                          ("global", "global", f"test digit, then rebuilt from one global basis, n = {ns}"),
                          ("ppca", "ppca", f"new PPCA digits, n = {ns} components")):
        columns = np.stack(grids[m], axis=1)  # (10 classes, columns, 28, 28)
        figures.save_grid(plots / f"{png}.png", columns.reshape(-1, 28, 28), nrow=columns.shape[1],
                          title=title, row_labels=[str(c) for c in range(10)])
    save_json(args.metrics, summarise(results, p["saturation_tolerance"], p["fid_saturation_tolerance"],
                                      score(x_test, y_test)))


def summarise(results: dict, tolerance: float, fid_tolerance: float, real: dict) -> dict:
    """metrics/pca.json: per method, the saturation points (accuracy, FID), best n, scores per n."""
    out = {}
    for m in METHODS:
        ns = list(results[m])
        acc = [results[m][n]["lenet_acc"] for n in ns]
        fid = [results[m][n]["fid"] for n in ns]
        best = ns[int(np.argmax(acc))]
        out[m] = {
            "saturation_components": pca.saturation_point(ns, acc, tolerance),
            "fid_saturation_components": pca.saturation_point(ns, fid, fid_tolerance, higher_is_better=False),
            "best": {"n": best, "lenet_acc": results[m][best]["lenet_acc"]},
            **{f"n{n}": results[m][n] for n in ns},
        }
    return {**out, "real_test": real, "samples": real["samples"]}


def configure(parser):
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz and test.npz")
    parser.add_argument("--scorer", default="models/lenet", help="the fixed LeNet scorer")
    parser.add_argument("--plots", default="plots/pca")
    parser.add_argument("--metrics", default="metrics/pca.json")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
