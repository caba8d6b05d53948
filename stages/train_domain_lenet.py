"""Train a LeNet on one CoGAN domain's digits, to read the digits of a transform without an inverse.

The CoGAN's label agreement asks whether the two images of a generated pair show the same
digit. Domain 1 (original digits) is read by the fixed scorer (models/lenet); a domain-2 image
is mapped back to an original digit where the transform has an exact inverse (rotate,
negative: mnistgan.data.domains.INVERSES). The edge transform has none, so its digits are read by
this LeNet, trained on the edge images of training half B (the half the CoGAN's domain 2
learns from, data/prepared/domains.npz) with their true labels, and tested on the edge
images of the whole real test set. Same architecture and optimiser settings as the scorer
(lenet.*), cogan.domain_lenet_epochs epochs.

Writes:
  --out      models/lenet_<domain>/: the LeNet (mnistgan.classifier.load_scorer)
  --metrics  metrics/lenet_<domain>.json: test accuracy on the domain's test digits, its 95%
             interval, and the sizes
"""

from pathlib import Path

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan import classifier
from mnistgan.data import domains
from mnistgan.errors import PipelineError
from mnistgan.files import load_npz, save_json
from mnistgan.metrics import intervals, scores
from mnistgan.pipeline import device as devices
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    p, bs, domain = params["lenet"], params["scoring"]["batch_size"], args.domain
    dev = devices.select(params["device"])
    train, test = load_npz(Path(args.data) / "train.npz"), load_npz(Path(args.data) / "test.npz")
    halves = load_npz(Path(args.data) / "domains.npz")
    if domain not in halves:
        raise PipelineError(f"{args.data}/domains.npz has no {domain!r} images (rerun `dvc repro prepare`)")
    x_train, y_train = halves[domain], train["y"][halves["half_b"]]
    x_test, y_test = domains.transform(domain, test["x"]), test["y"]
    epochs = params["cogan"]["domain_lenet_epochs"]

    def on_epoch(s: classifier.EpochStats):
        print(f"train_domain_lenet {domain}: epoch {s.epoch}/{epochs} train acc {s.train_acc:.4f} | "
              f"test acc {s.test_acc:.4f}", flush=True)

    result = classifier.train_classifier(
        x_train, y_train, x_test, y_test, epochs=epochs, batch_size=p["batch_size"], lr=p["lr"],
        lr_decay=p["lr_decay"], channels=p["channels"], hidden=p["hidden"], seed=params["seed"], device=dev,
        eval_batch_size=bs, on_epoch=on_epoch, name=f"train_domain_lenet {domain}")
    features, probs = scores.lenet_outputs(result.model, x_test, bs, dev)
    classifier.save_scorer(Path(args.out), result.model, p["channels"], p["hidden"], features)
    right = probs.argmax(1) == y_test
    save_json(args.metrics, {"domain": domain, "test_acc": float(right.mean()),
                             "test_acc_ci95": intervals.proportion_ci95(right),
                             "train_images": int(len(y_train)), "test_images": int(len(y_test)), "epochs": epochs})
    print(f"train_domain_lenet {domain}: test accuracy on {domain} digits {right.mean():.4f}")


def configure(parser):
    parser.add_argument("--domain", required=True, choices=list(domains.TRANSFORMS), help="the domain-2 transform")
    parser.add_argument("--data", default="data/prepared", help="prepared train.npz, test.npz and domains.npz")
    parser.add_argument("--out", required=True, help="LeNet directory, e.g. models/lenet_edge")
    parser.add_argument("--metrics", required=True, help="e.g. metrics/lenet_edge.json")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
