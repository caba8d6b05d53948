"""Train the LeNet-5-style scorer (report 000, section 3.3) and save what scoring needs.

Logs train/test loss and accuracy per epoch with dvclive, writes the test confusion matrix
(plots/lenet/confusion.csv, DVC's `confusion` template) and models/lenet/: the state_dict,
its constructor arguments and the mean/covariance of its penultimate features on the real
test set (the LeNet-FID reference). Also checks the scorer itself: the Inception Score of
real test digits and the FID between real train and real test features.
"""

from pathlib import Path

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)
from dvclive import Live

from mnistgan import classifier
from mnistgan.files import load_npz, save_csv
from mnistgan.metrics import intervals, scores
from mnistgan.pipeline import device as devices
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    p = params["lenet"]
    dev = devices.select(params["device"])
    train, test = load_npz(Path(args.data) / "train.npz"), load_npz(Path(args.data) / "test.npz")

    with Live(args.live, dvcyaml=False, save_dvc_exp=False, report=None) as live:
        def on_epoch(s: classifier.EpochStats):
            for split, loss, acc in (("train", s.train_loss, s.train_acc), ("test", s.test_loss, s.test_acc)):
                live.log_metric(f"{split}/loss", loss)
                live.log_metric(f"{split}/acc", acc)
            live.next_step()
            print(f"train_lenet: epoch {s.epoch}/{p['epochs']} train loss {s.train_loss:.4f} "
                  f"acc {s.train_acc:.4f} | test loss {s.test_loss:.4f} acc {s.test_acc:.4f}", flush=True)

        result = classifier.train_classifier(
            train["x"], train["y"], test["x"], test["y"],
            epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], lr_decay=p["lr_decay"],
            channels=p["channels"], hidden=p["hidden"], seed=params["seed"], device=dev,
            eval_batch_size=params["scoring"]["batch_size"], on_epoch=on_epoch, name="train_lenet",
        )
        model, bs = result.model, params["scoring"]["batch_size"]
        f_test, p_test = scores.lenet_outputs(model, test["x"], bs, dev)
        f_train, _ = scores.lenet_outputs(model, train["x"], bs, dev)
        classifier.save_scorer(Path(args.out), model, p["channels"], p["hidden"], f_test)

        pred = p_test.argmax(1)
        save_csv(Path(args.plots) / "confusion.csv", ["actual", "predicted"], zip(test["y"].tolist(), pred.tolist()))
        mu_tr, s_tr = scores.gaussian_stats(f_train)
        mu_te, s_te = scores.gaussian_stats(f_test)
        live.summary.update({
            "train_acc": result.history[-1].train_acc,
            "test_acc": result.history[-1].test_acc,
            "test_acc_ci95": intervals.proportion_ci95(pred == test["y"]),
            "test_is": scores.inception_score(p_test),
            "fid_train_vs_test": scores.frechet_distance(mu_tr, s_tr, mu_te, s_te),
            "device": devices.describe(dev),
        })
        print(f"train_lenet: test accuracy {live.summary['test_acc']:.4f}, IS of real test digits "
              f"{live.summary['test_is']:.3f}, FID train vs test {live.summary['fid_train_vs_test']:.3f}")


def configure(parser):
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--out", default="models/lenet")
    parser.add_argument("--live", default="metrics/lenet", help="dvclive directory")
    parser.add_argument("--plots", default="plots/lenet")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
