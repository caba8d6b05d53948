"""mnistgan_tools.plan: the profiles' training work as numbers, memory estimates, the list schedule.

Pure arithmetic on hand-made params and numbers; the networks' shapes come from the project's
own models on PyTorch's meta device (checked here against the real models' parameter counts).
"""

from __future__ import annotations

import pytest
import torch

from mnistgan.errors import PipelineError
from mnistgan.models import cogan, dcgan, lenet
from mnistgan.pipeline import params as params_mod
from mnistgan.pipeline.params import apply_overrides
from mnistgan_tools import plan

from conftest import ROOT

QUICK = params_mod.load(ROOT / "params.yaml")
PAPER = params_mod.load(ROOT / "profiles/paper.yaml")


def test_paper_gan_work_is_one_entry_per_stage_with_the_profiles_budgets():
    work = plan.gan_work(PAPER)
    assert [w.stage for w in work] == ([f"train_dcgan@{r}" for r in PAPER["dcgan"]["runs"]]
                                       + [f"train_ccgan@{r}" for r in PAPER["ccgan"]["runs"]]
                                       + [f"train_cogan@{p}" for p in PAPER["cogan"]["pairs"]])
    by = {w.stage: w.parts[0] for w in work}
    f3 = by["train_ccgan@F3-D2-B128"]
    assert (f3.config.width, f3.config.depth, f3.config.batch, f3.epochs) == (3, 2, 128, 25)
    assert f3.images == 60000 // 128 * 128            # whole batches of all 60,000 images, every epoch
    assert f3.scored == 25 * 10000 + 10000            # a 10,000-digit scoring each epoch, then the final one
    assert by["train_ccgan@F1-D1-B64-ls"].config == by["train_ccgan@F1-D1-B64"].config  # -ls costs the same
    assert by["train_ccgan@F1-D1-B64-vbn"].config.vbn
    co = by["train_cogan@edge"]
    assert (co.config.width, co.config.batch, co.images, co.scored) == (1.0, 64, 30000 // 64 * 64, 6 * 10000)
    assert {w.data_images for w in work} == {60000}
    # 27 F x D x B configs per family, + the vbn variants, + one CoGAN config for the three pairs
    assert len(plan.configs(work)) == 27 + 1 + 27 + 1 + 1


def test_a_weight_average_adds_its_batch_norm_re_estimates_to_the_scored_work():
    """With ``ema`` on, every scored epoch re-estimates the average's batch-norm statistics from
    loop.BN_SAMPLES noise vectors through G: work the plan counts with the scoring."""
    from mnistgan.gan.loop import BN_SAMPLES

    on = apply_overrides(PAPER, {"ccgan.ema": 0.99, "cogan.ema": 0.99})  # the paper's: 25 epochs
    off = {w.stage: w.parts[0].scored for w in plan.gan_work(PAPER)}
    evals = {"dcgan": 0, "ccgan": 25, "cogan": 25 // PAPER["cogan"]["eval_every"]}  # dcgan: ema stays off
    for w in plan.gan_work(on):
        family = w.stage.removeprefix("train_").split("@")[0]
        assert w.parts[0].scored - off[w.stage] == evals[family] * BN_SAMPLES, w.stage


def test_quick_work_follows_the_train_limits():
    p = apply_overrides(QUICK, {"dcgan.train_limit": 100, "dcgan.runs": ["F1-D1-B32", "F2-D3-B64-vbn"]})
    work = {w.stage: w.parts[0] for w in plan.gan_work(p)}
    assert work["train_dcgan@F1-D1-B32"].images == 96            # 3 whole batches of the 100
    assert work["train_dcgan@F2-D3-B64-vbn"].images == 64
    assert work["train_dcgan@F2-D3-B64-vbn"].config.name == "dcgan/F2-D3-B64-vbn"
    assert work["train_cogan@edge"].images == 29984               # all of the smaller half, whole batches of 32
    assert work["train_cogan@rotate"].images == 15000 // 32 * 32  # cogan.train_limit_by_pair.rotate
    assert QUICK["cogan"]["train_limit_by_pair"] == {"rotate": 15000}
    assert work["train_cogan@rotate"].epochs == QUICK["cogan"]["epochs_by_pair"]["rotate"]
    assert work["train_cogan@edge"].epochs == QUICK["cogan"]["epochs"]


def test_pair_budget_is_a_pairs_own_epochs_and_pairs_per_epoch_where_named():
    c = {"epochs": 2, "train_limit": 0, "epochs_by_pair": {"rotate": 1}, "train_limit_by_pair": {"rotate": 100, "edge": 0}}
    assert params_mod.pair_budget(c, "rotate") == (1, 100)
    assert params_mod.pair_budget(c, "edge") == (2, 0)  # named with 0: all of the smaller half
    assert params_mod.pair_budget(c, "negative") == (2, 0)


def test_hybrid_trains_each_recurring_setting_once():
    stages = {w.stage: w for w in plan.lenet_work(QUICK)}
    hybrid = stages["train_hybrid"]
    # the headline r = 0 and r = 1 on all 60,000 images; 11 real fractions on the curve's budget;
    # the sweep (0.1 x 3 lrs x 2 batches) repeats r = 0.1 at lr 0.001, batch 32; the uniform_10
    # mix repeats it too; class0_40 is new
    assert len(hybrid.parts) == 2 + 11 + 5 + 1
    assert {p.config.batch for p in hybrid.parts} == {32, 128}
    h = QUICK["hybrid"]
    assert [(p.images, p.epochs) for p in hybrid.parts[:2]] == [(60000, h["epochs"])] * 2
    assert all(p.images == h["curve_total"] and p.epochs == h["curve_epochs"] for p in hybrid.parts[2:])
    assert stages["train_lenet"].parts[0].images == 60000
    assert stages["train_edge_lenet"].parts[0].epochs == QUICK["cogan"]["domain_lenet_epochs"]
    paper = {w.stage: w for w in plan.lenet_work(PAPER)}["train_hybrid"]
    assert len(paper.parts) == 11 + 8 + 1  # one budget: the headline is the curve's r = 0 and r = 1


def _real_params(*nets) -> int:
    return sum(p.numel() for n in nets for p in n.parameters())


@pytest.mark.parametrize("family,width,depth", [("dcgan", 1, 1), ("ccgan", 2, 3)])
def test_meta_footprint_counts_the_real_networks_parameters(family, width, depth):
    n_classes = 10 if family == "ccgan" else 0
    real = _real_params(dcgan.Generator(100, width, n_classes), dcgan.Discriminator(width, depth, n_classes))
    assert plan.footprint(plan.Config(family, 64, width, depth)).params == real


def test_meta_footprint_of_the_cogan_and_lenet():
    assert plan.footprint(plan.Config("cogan", 64, 0.25, shared_layers=4)).params == _real_params(
        cogan.CoupledGenerator(100, 4, 0.25), cogan.CoupledDiscriminator())
    assert plan.footprint(plan.Config("lenet", 64)).params == _real_params(lenet.LeNet())


def test_activations_grow_with_width_and_depth_and_vbn_doubles_them():
    a = {c: plan.footprint(plan.Config("dcgan", 64, *c)).activations for c in ((1, 1), (2, 1), (1, 2))}
    assert a[(2, 1)] > a[(1, 1)] and a[(1, 2)] > a[(1, 1)]
    vbn = plan.footprint(plan.Config("dcgan", 64, 1, 1, vbn=True)).activations
    assert vbn == pytest.approx(2 * a[(1, 1)], rel=0.05)  # the reference batch rides along every pass
    assert plan.footprint(plan.Config("dcgan", 32)) == plan.footprint(plan.Config("dcgan", 128))  # per image


def test_step_flops_scale_with_the_model():
    small, big = plan.step_flops(plan.Config("dcgan", 64, 1, 1)), plan.step_flops(plan.Config("dcgan", 64, 3, 3))
    assert 1e8 < small < big


def test_memory_estimate_is_data_plus_model_plus_batch():
    work = plan.StageWork("s", (plan.Part(plan.Config("dcgan", 64), 1, 64),), data_images=1000)
    fp = plan.footprint(plan.Config("dcgan", 64))
    expected = (plan.BASE_BYTES["cpu"] + 1000 * 784 * 5 + 16 * fp.params
                + plan.ACTIVATION_FACTOR * 4 * fp.activations * 64)
    assert plan.memory_bytes(work, "cpu") == int(expected)
    bigger = plan.StageWork("s", (plan.Part(plan.Config("dcgan", 128), 1, 128),), data_images=1000)
    assert plan.memory_bytes(bigger) > plan.memory_bytes(work)


def test_the_paper_grid_fits_a_16_gib_machine_and_a_huge_batch_does_not_fit_in_one_line():
    need = plan.check_memory(plan.gan_work(PAPER), 16 * 2**30, "a 16 GiB machine")
    assert need[0][0] in ("train_ccgan@F3-D3-B128", "train_dcgan@F3-D3-B128")
    assert 1 * 2**30 < need[0][1] < 8 * 2**30
    p = apply_overrides(PAPER, {"dcgan.runs": ["F1-D1-B32", "F8-D8-B4096"]})
    with pytest.raises(PipelineError) as err:
        plan.check_memory(plan.gan_work(p), 16 * 2**30, "a 16 GiB machine")
    message = str(err.value)
    assert "\n" not in message and "train_dcgan@F8-D8-B4096 alone needs about" in message
    assert "a 16 GiB machine has 16.0 GiB free" in message


def test_stages_at_a_time_add_up():
    work = plan.gan_work(PAPER)
    one = plan.check_memory(work, 64 * 2**30, "m", at_once=1)[0][1]
    with pytest.raises(PipelineError, match=r"^the grid does not fit in memory: 8 stages at a time need about"):
        plan.check_memory(work, int(one * 4), "m", at_once=8)
    plan.check_memory(work, int(one * 4), "m", at_once=2)


def test_longest_first_list_schedule_on_hand_made_numbers():
    jobs = {"a": 5, "b": 4, "c": 3, "d": 3, "e": 3}
    makespan, slots = plan.lpt(jobs, 2)
    assert slots == [["a", "d"], ["b", "c", "e"]] and makespan == 10  # optimum 9 ({a, b} | {c, d, e}): <= 4/3 of it
    assert plan.lpt(jobs, 1) == (18, [["a", "b", "c", "d", "e"]])
    assert plan.lpt(jobs, 10)[0] == 5                                  # more slots than jobs: the longest job
    assert plan.lpt({}, 3) == (0.0, [[], [], []])
    with pytest.raises(ValueError):
        plan.lpt(jobs, 0)


def test_meta_models_leave_no_real_tensors():
    # building on the meta device must not touch the default device's memory or RNG
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    plan.footprint(plan.Config("ccgan", 32, 1, 2))
    assert torch.equal(torch.rand(1), before)
