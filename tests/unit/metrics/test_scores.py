import numpy as np
import pytest
import torch

from mnistgan.metrics import scores
from mnistgan.models.lenet import LeNet


def test_fid_of_identical_sets_is_zero_and_grows_with_shift():
    f = np.random.default_rng(0).normal(size=(500, 8))
    mu, sigma = scores.gaussian_stats(f)
    assert scores.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    mu2, sigma2 = scores.gaussian_stats(f + 1.0)
    assert scores.frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(8.0, rel=1e-6)


def test_fid_matches_closed_form_for_diagonal_gaussians():
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    # sum (sqrt(a) - sqrt(b))^2 for commuting covariances
    assert scores.frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx((1 - 3) ** 2 + (2 - 1) ** 2)


def test_inception_score_bounds():
    confident_uniform = np.eye(10)[np.arange(1000) % 10]
    assert scores.inception_score(confident_uniform) == pytest.approx(10.0, rel=1e-6)
    one_class = np.tile(np.eye(10)[3], (100, 1))
    assert scores.inception_score(one_class) == pytest.approx(1.0, rel=1e-6)
    unsure = np.full((100, 10), 0.1)
    assert scores.inception_score(unsure) == pytest.approx(1.0, rel=1e-6)


def test_label_accuracy():
    probs = np.eye(10)[[0, 1, 2, 2]]
    assert scores.label_accuracy(probs, [0, 1, 2, 3]) == 0.75


def test_to_model_input_scales_uint8_to_minus_one_one():
    x = scores.to_model_input(np.array([[[0, 255]]], dtype=np.uint8))
    assert x.shape == (1, 1, 1, 2) and x.min() == -1 and x.max() == 1


def test_scores_do_not_depend_on_batch_size():
    torch.manual_seed(0)
    model = LeNet((4, 8), (16, 12))
    images = np.random.default_rng(0).integers(0, 256, size=(103, 28, 28), dtype=np.uint8)
    f1, p1 = scores.lenet_outputs(model, images, batch_size=7)
    f2, p2 = scores.lenet_outputs(model, images, batch_size=103)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-7)
    ref = scores.gaussian_stats(f2)
    a = scores.score_samples(model, images, labels=np.zeros(103, int), ref_stats=ref, batch_size=7)
    b = scores.score_samples(model, images, labels=np.zeros(103, int), ref_stats=ref, batch_size=50)
    assert a["fid"] == pytest.approx(b["fid"], abs=1e-4) and a["fid"] < 1e-3
    assert a["is"] == pytest.approx(b["is"], rel=1e-6) and a["lenet_acc"] == b["lenet_acc"]


def test_lenet_outputs_restore_training_mode():
    model = LeNet((4, 8), (16, 12)).train()
    scores.lenet_outputs(model, np.zeros((2, 28, 28), np.uint8))
    assert model.training


def test_wilson_interval_is_inside_0_1_and_shrinks_with_n():
    from mnistgan.metrics import intervals

    lo, hi = intervals.wilson_ci95(976, 1000)
    assert lo < 0.976 < hi and abs((hi - lo) - 0.019) < 0.003
    lo5, hi5 = intervals.wilson_ci95(4880, 5000)
    assert hi5 - lo5 < (hi - lo) / 2
    assert intervals.wilson_ci95(100, 100)[1] == 1.0 and intervals.wilson_ci95(100, 100)[0] < 1.0
    assert intervals.wilson_ci95(0, 100)[0] == 0.0 and intervals.wilson_ci95(0, 100)[1] > 0.0
    with pytest.raises(ValueError):
        intervals.wilson_ci95(5, 4)


def test_mean_interval_covers_the_mean_about_95_percent_of_the_time():
    from mnistgan.metrics import intervals

    rng = np.random.default_rng(0)
    hits = sum(lo <= 0.5 <= hi for lo, hi in (intervals.mean_ci95(rng.uniform(0, 1, 200)) for _ in range(400)))
    assert 0.92 < hits / 400 < 0.98


def test_scores_with_intervals_report_the_sample_count_and_the_accuracy_interval():
    model = LeNet((4, 8), (16, 12))
    images = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    labels = np.zeros(300, dtype=int)
    out = scores.score_samples(model, images, labels, intervals=True)
    assert out["samples"] == 300
    lo, hi = out["lenet_acc_ci95"]
    assert lo <= out["lenet_acc"] <= hi
    assert "samples" not in scores.score_samples(model, images, labels)  # per-epoch curves: numbers only


def test_the_scoring_batch_benchmark_times_each_size_and_checks_the_outputs_agree(tmp_path, capsys):
    from mnistgan.files import save_npz

    from conftest import ROOT, load_script

    bench = load_script(ROOT / "benchmarks" / "scoring_batch.py", "scoring_batch")
    data = tmp_path / "test.npz"
    save_npz(data, x=np.random.default_rng(0).integers(0, 256, size=(300, 28, 28), dtype=np.uint8),
             y=np.zeros(300, np.uint8))
    assert bench.main(["--data", str(data), "--sizes", "8", "64", "300", "--rounds", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "300 images on cpu" in out and "DIFFER" not in out
    assert [line.split(":")[0] for line in out.splitlines()[1:]] == ["batch     8", "batch    64", "batch   300"]
    # batches under 8 images take another CPU kernel: the same numbers to ~1e-7, not bit for bit
    assert bench.main(["--data", str(data), "--sizes", "7", "300", "--rounds", "1", "--device", "cpu"]) == 1
    assert "batch     7" in (line := capsys.readouterr().out.splitlines()[1]) and "DIFFER" in line


def test_knn_purity_is_one_for_separate_clusters_and_near_chance_when_mixed():
    from mnistgan.metrics.embedding import knn_purity

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 50)
    apart = rng.normal(size=(150, 2)) * 0.1 + labels[:, None] * 10.0  # three far-apart clusters
    assert all(r["purity"] == 1.0 and r["n"] == 50 for r in knn_purity(apart, labels, k=5).values())
    mixed = rng.normal(size=(150, 2))  # one cloud: neighbours are of any class
    for r in knn_purity(mixed, labels, k=5).values():
        assert abs(r["purity"] - 1 / 3) < 0.15 and r["purity_ci95"][0] < r["purity"] < r["purity_ci95"][1]
        assert r["chance"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="more than k=5"):
        knn_purity(apart[:5], labels[:5], k=5)
