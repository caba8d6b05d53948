"""A tiny configuration of the whole pipeline for end-to-end tests (seconds, not minutes).

Overrides are applied on top of the repository's params.yaml, so a new params section is
picked up with its defaults and only the expensive knobs are turned down here.
"""

from __future__ import annotations

from mnistgan.pipeline.params import apply_overrides  # noqa: F401  (the tests' entry point)

TINY_OVERRIDES: dict[str, object] = {
    # one thread per stage: tiny models gain nothing from more, and queued or parallel stages on
    # a 2-core CI machine then never oversubscribe it (CPU results depend on it: a param)
    "cpu_threads": 1,
    "data.train_limit": 1200,
    "data.test_limit": 500,
    "data.tsne_samples": 100,
    "data.tsne_perplexity": 10,
    "lenet.epochs": 3,
    "lenet.batch_size": 32,
    "lenet.lr": 0.003,
    "lenet.channels": [8, 16],
    "lenet.hidden": [32, 24],
    # downstream: hybrid classifiers and the PCA sweep (the synthetic set's size follows data.train_limit)
    "hybrid.total": 600,
    "hybrid.test_images": 200,
    "hybrid.epochs": 1,
    "hybrid.curve_total": 300,  # a smaller budget for the curve, the sweep and the mixes, as in params.yaml
    "hybrid.curve_epochs": 1,
    "hybrid.real_fractions": [0.0, 0.1, 1.0],
    "hybrid.sweep.lrs": [0.001],
    "hybrid.sweep.batch_sizes": [32, 64],
    "pca.components": [1, 8, 64],
    "scoring.samples": 200,  # every final score: GAN runs, synthetic set, PCA rebuilds and PPCA samples
    # the GANs: a few steps each, enough to exercise every stage and output
    "gan.eval_samples": 100,
    # float32: on a CPU without native bfloat16 autocast emulates it, many times slower than
    # float32 (docs/performance.md); tests/unit/gan/test_fast_path.py covers the bf16 path
    "gan.bf16": False,
    "cogan.bf16": False,
    # no weight average for the image GANs: re-estimating the average's batch-norm statistics
    # (loop.BN_SAMPLES of noise through a full-size generator, at every scored epoch) would be
    # most of a tiny stage's time; tests/unit/gan/test_loop.py covers the average, and the
    # CoGAN keeps its own here
    "dcgan.ema": 0.0,
    "ccgan.ema": 0.0,
    "dcgan.epochs": 1,
    "dcgan.train_limit": 64,
    "dcgan.eval_every": 1,
    "ccgan.epochs": 2,
    "ccgan.train_limit": 64,
    "ccgan.eval_every": 1,
    "cogan.width": 0.0625,
    "cogan.epochs": 1,
    "cogan.train_limit": 64,
    "cogan.train_limit_by_pair": {},  # every pair at the tiny cogan.train_limit
    "cogan.eval_every": 1,
    "cogan.eval_samples": 100,
}
