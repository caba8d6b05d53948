"""LeNet classifiers trained on real + synthetic digits, tested on real ones (report 000, 4.2-4.3).

Every classifier is a LeNet of the scorer's architecture (lenet.channels, lenet.hidden) trained
from scratch with Adam, on a hybrid set in the prepared training set's class proportions drawn
from the real training images and the synthetic set (hybrid.hybrid_set: within class c a
fraction r_c of the images is real, the rest synthetic), and tested on the real test set (a
stratified subset of hybrid.test_images; 0 = all). Two budgets:

* The headline (hybrid.total images, 0 = the prepared training set's size, for hybrid.epochs):
  r = 0 ("train on synthetic, test on real") and r = 1 (the same LeNet on real digits only)
  -> acc_real_0.0 and acc_real_1.0 with their 95% intervals.
* Everything else (hybrid.curve_total images for hybrid.curve_epochs; 0 = the headline's):
  - Fig 9: one classifier per real fraction r in hybrid.real_fractions -> curve.acc_real_<r>
    and plots/hybrid/real_fraction.csv (r, test_acc); fig9_smallest_r, the smallest r within
    half a point (hybrid.FIG9_TOLERANCE) of r = 1.0 on this curve (report 000's Fig 9 claim).
  - Fig 10: learning rate x batch size (hybrid.sweep) on one hybrid set of real fraction
    hybrid.sweep.real_fraction -> plots/hybrid/lr_batch.csv (lr, batch_size, test_acc).
  - Figs 11-12: one classifier per named mix of per-class real fractions (hybrid.mixes, e.g.
    class 0 at 40% real, the rest at 10%) -> plots/hybrid/confusion/<name>.csv (actual,
    predicted on the test set).

--metrics (metrics/hybrid.json): the headline keys, curve {acc_real_<r>, acc_real_<r>_ci95}
(r with one decimal, e.g. acc_real_0.1), fig9_smallest_r, sweep.best {lr, batch_size,
test_acc}, per mix its test_acc and real share, and both budgets.
One progress line per classifier; a setting that recurs (the r = 0.1 classifier is also the
sweep's lr/batch default and the uniform_10 mix; in the paper profile the headline is the
curve's r = 0 and r = 1) is trained once and reported each time.
"""

import time
from pathlib import Path

import numpy as np
import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan import classifier, hybrid
from mnistgan.data.mnist import stratified_subset
from mnistgan.files import load_npz, save_csv, save_json
from mnistgan.metrics import intervals
from mnistgan.pipeline import device as devices
from mnistgan.pipeline.stage import run_stage


def fraction_key(r: float) -> str:
    """``acc_real_0.1``: one decimal, more only where r needs them (0.25 -> acc_real_0.25)."""
    return f"acc_real_{r:.1f}" if round(r, 1) == r else f"acc_real_{r:g}"


def main(args, params):
    h, seed = params["hybrid"], params["seed"]
    dev = devices.select(params["device"])
    train, syn = load_npz(Path(args.data) / "train.npz"), load_npz(args.synthetic)
    test = load_npz(Path(args.data) / "test.npz")
    keep = stratified_subset(test["y"], h["test_images"], np.random.default_rng(seed))
    x_test, y_test = test["x"][keep], test["y"][keep]
    total = h["total"] or len(train["y"])
    curve_total, curve_epochs = h["curve_total"] or total, h["curve_epochs"] or h["epochs"]
    n_jobs = (len(h["real_fractions"]) + len(h["sweep"]["lrs"]) * len(h["sweep"]["batch_sizes"]) + len(h["mixes"])
              + len(hybrid.HEADLINE_FRACTIONS))
    trained = {}  # (per-class fractions, lr, batch size, images, epochs) -> (model, test accuracy, real share)
    reported = 0

    def fit(real_fraction: hybrid.RealFraction, what: str, lr: float, batch_size: int,
            images: int = curve_total, epochs: int = curve_epochs):
        """Train one classifier on the hybrid set of ``real_fraction`` (once per distinct setting)."""
        nonlocal reported
        per_class = real_fraction if isinstance(real_fraction, dict) else hybrid.fractions_by_class(real_fraction)
        key = (tuple(per_class.values()), lr, batch_size, images, epochs)
        start, again = time.perf_counter(), key in trained
        if not again:
            # The same seed for every set: a set is a function of its fractions and size only, so
            # the sweep's classifiers all see one set, and an identical setting is not retrained.
            mix = hybrid.hybrid_set((train["x"], train["y"]), (syn["x"], syn["y"]), images, per_class,
                                    np.random.default_rng(seed))
            result = classifier.train_classifier(
                mix.x, mix.y, x_test, y_test, epochs=epochs, batch_size=batch_size, lr=lr,
                lr_decay=h["lr_decay"], channels=params["lenet"]["channels"], hidden=params["lenet"]["hidden"],
                seed=seed, device=dev, eval_batch_size=params["scoring"]["batch_size"],
                name=f"train_hybrid ({what})",
            )
            trained[key] = (result.model, result.history[-1].test_acc, float(mix.is_real.mean()))
        model, acc, share = trained[key]
        reported += 1
        print(f"train_hybrid: [{reported}/{n_jobs}] {what}: {share:.3f} real of {images}, {epochs} epoch(s), lr {lr:g}, "
              f"batch {batch_size} -> test accuracy {acc:.4f} "
              f"({'same setting as before, not retrained' if again else f'{time.perf_counter() - start:.1f}s'})",
              flush=True)
        return model, acc, share

    def with_ci(out: dict, r: float, acc: float) -> None:
        out[fraction_key(r)] = acc
        out[fraction_key(r) + "_ci95"] = intervals.wilson_ci95(round(acc * len(y_test)), len(y_test))

    plots, metrics, curve_metrics = Path(args.plots), {}, {}
    curve = []
    for r in h["real_fractions"]:
        acc = fit(r, f"real fraction {r:g}", h["lr"], h["batch_size"])[1]
        curve.append((r, acc))
        with_ci(curve_metrics, r, acc)
    save_csv(plots / "real_fraction.csv", ["r", "test_acc"], curve)

    r, sweep = h["sweep"]["real_fraction"], []
    for lr in h["sweep"]["lrs"]:
        for bs in h["sweep"]["batch_sizes"]:
            sweep.append((lr, bs, fit(r, f"sweep at real fraction {r:g}", lr, bs)[1]))
    save_csv(plots / "lr_batch.csv", ["lr", "batch_size", "test_acc"], sweep)
    best = max(sweep, key=lambda row: row[2])
    metrics["sweep"] = {"real_fraction": r, "best": {"lr": best[0], "batch_size": best[1], "test_acc": best[2]}}

    metrics["mixes"] = {}
    for name, spec in h["mixes"].items():
        model, acc, share = fit(hybrid.fractions_by_class(spec["default"], spec["per_class"]), f"mix {name}",
                                h["lr"], h["batch_size"])
        pred = classifier.predict(model, x_test, params["scoring"]["batch_size"], dev).argmax(1)
        save_csv(plots / "confusion" / f"{name}.csv", ["actual", "predicted"], zip(y_test.tolist(), pred.tolist()))
        metrics["mixes"][name] = {"test_acc": acc, "real_share": share}

    for r in hybrid.HEADLINE_FRACTIONS:
        with_ci(metrics, r, fit(r, f"headline r = {r:g}", h["lr"], h["batch_size"], total, h["epochs"])[1])
    fig9 = hybrid.smallest_fraction_near_all_real(dict(curve))
    print(f"train_hybrid: r = 0 {metrics['acc_real_0.0']:.4f}, r = 1 {metrics['acc_real_1.0']:.4f} "
          f"({total} images, {h['epochs']} epoch(s)); Fig 9: r >= {fig9:g} is within "
          f"{hybrid.FIG9_TOLERANCE * 100:g} points of r = 1 ({curve_total} images, {curve_epochs} epoch(s))", flush=True)
    save_json(args.metrics, {**metrics, "total": total, "epochs": h["epochs"],
                             "curve": curve_metrics, "curve_total": curve_total, "curve_epochs": curve_epochs,
                             "fig9_smallest_r": fig9, "test_images": int(len(y_test)),
                             "classifiers_trained": len(trained)})


def configure(parser):
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz (real pool) and test.npz")
    parser.add_argument("--synthetic", default="data/synthetic/train.npz", help="the synthetic pool")
    parser.add_argument("--plots", default="plots/hybrid")
    parser.add_argument("--metrics", default="metrics/hybrid.json")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
