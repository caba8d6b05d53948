"""The claims ledger: every claim of both reports, with a verdict computed from our numbers.

Each :class:`Claim` names its source and states the rule that decides it; :func:`judge`
applies every rule to the summary of this run (``summary``), the spread of the headlines over
seeds (``spread``: results/spread/<profile>.json, when there is one) and the summaries of the
study profile's seeds (``study``: results/seeds/study/seed<k>.json). A rule never reads a typed
verdict: it compares numbers, mostly through their 95% intervals, so a verdict flips only when
the numbers do, and ``dvc metrics diff`` shows it (``claims.<id>.verdict`` in
metrics/headlines.json; ``holds`` is 1, 0.5 or 0).

Verdicts: ``holds``; ``holds partly`` (the rule says which part); ``does not hold``; ``not
testable here`` (what would test it is in the evidence); ``pending`` (the rule needs seeds 0-2
of the study profile and fewer have run: the evidence shows the seeds there are). The study
profile varies one factor at a time around each family's best config, at one budget for every
run; its verdicts say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from mnistgan.gan.registry import PAIRS
from mnistgan.metrics.intervals import wilson_ci95
from mnistgan.pipeline.summary import PAIR_THEIRS, get, headline

HOLDS, PARTLY, FAILS, UNTESTED, PENDING = "holds", "holds partly", "does not hold", "not testable here", "pending"
SCORE = {HOLDS: 1.0, PARTLY: 0.5, FAILS: 0.0}
STUDY_SEEDS = 3  # a grid verdict needs this many seeds of the study profile


@dataclass(frozen=True)
class Verdict:
    verdict: str
    evidence: str
    profile: str | None = None  # the profile the numbers come from (None: this run's)


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    text: str
    rule: str
    judge: Callable[..., Verdict]


def _f(x: Any, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _ci(value: float | None, ci: list | None, digits: int = 4) -> str:
    return f"{_f(value, digits)} [{_f(ci[0], digits)}, {_f(ci[1], digits)}]" if ci else _f(value, digits)


def _worst(spread: dict | None, key: str) -> tuple[float | None, int]:
    m = ((spread or {}).get("metrics") or {}).get(key)
    return (m["worst"], m["n"]) if m else (None, 0)


def _seeds_note(spread: dict | None, key: str, digits: int = 4) -> str:
    worst, n = _worst(spread, key)
    return f"; worst of {n} seeds {_f(worst, digits)}" if n else ""


def _apart(a: list, b: list) -> int:
    """+1 if interval a lies wholly above b, -1 if wholly below, 0 if they overlap."""
    return 1 if a[0] > b[1] else -1 if a[1] < b[0] else 0


# ----------------------------------------------------------------------------- default-run claims
def _lenet(s, spread, study):
    acc, ci, train = get(s, "lenet.test_acc"), get(s, "lenet.test_acc_ci95"), get(s, "lenet.train_acc")
    worst, _ = _worst(spread, "lenet.test_acc")
    ok = ci[0] >= 0.988 and (worst is None or worst >= 0.988) and train >= 0.994
    return Verdict(HOLDS if ok else FAILS, f"test {_ci(acc, ci)}{_seeds_note(spread, 'lenet.test_acc')}; "
                   f"train {_f(train)} after {len(get(s, 'lenet.test_acc_by_epoch') or {})} epochs")


def _param_counts(s, spread, study):
    r = get(s, "dcgan.runs.F1-D1-B32") or {}
    g, d = r.get("params_generator"), r.get("params_discriminator")
    if g is None:
        return Verdict(UNTESTED, "needs the DCGAN run F1-D1-B32 in dcgan.runs")
    ok_g, ok_d = abs(g / 7e6 - 1) <= 0.1, abs(d / 3.1e5 - 1) <= 0.1
    return Verdict(HOLDS if ok_g and ok_d else PARTLY if ok_g or ok_d else FAILS,
                   f"G {g:,} (report ~7M), D {d:,} (report ~310k) parameters at F1-D1")


def _worst_digits(s, spread, study):
    best = get(s, "ccgan.best") or {}
    acc, n = best.get("lenet_acc_by_class"), best.get("samples_by_class")
    if not acc:
        return Verdict(UNTESTED, "needs the per-class accuracy of the best CCGAN")
    order = sorted(range(10), key=lambda c: acc[c])
    low2 = set(order[:2])
    cis = {c: wilson_ci95(round(acc[c] * n[c]), n[c]) for c in order[:3]}
    verdict = HOLDS if low2 == {2, 4} else PARTLY if low2 & {2, 4} else FAILS
    return Verdict(verdict, "lowest per-class LeNet accuracy of the best CCGAN " + best.get("config", "") + ": "
                   + ", ".join(f"{c}: {_ci(acc[c], cis[c], 3)}" for c in order[:3]) + " (seed 0)")


def _real_fraction(s, spread, study):
    rf, ci = get(s, "hybrid.real_fraction") or {}, get(s, "hybrid.real_fraction_ci95") or {}
    if not {"0.0", "0.1", "1.0"} <= set(rf):
        return Verdict(UNTESTED, "needs hybrid.real_fractions 0, 0.1 and 1")
    more_is_better = _apart(ci["1.0"], ci["0.0"]) == 1
    tenth_enough = rf["1.0"] - rf["0.1"] <= 0.01
    verdict = HOLDS if more_is_better and tenth_enough else PARTLY if more_is_better or tenth_enough else FAILS
    return Verdict(verdict, f"r = 0: {_ci(rf['0.0'], ci['0.0'])}, r = 0.1: {_ci(rf['0.1'], ci['0.1'])}, "
                   f"r = 1: {_ci(rf['1.0'], ci['1.0'])} ({get(s, 'hybrid.curve_total')} images, "
                   f"{get(s, 'hybrid.curve_epochs')} epoch per point)")


def _ends_beat_middle(s, spread, study):
    rf, ci = get(s, "hybrid.real_fraction") or {}, get(s, "hybrid.real_fraction_ci95") or {}
    ends = [r for r in ("0.1", "0.9") if r in rf]
    middle = [r for r in rf if 0.3 <= float(r) <= 0.7]
    if len(ends) < 2 or not middle:
        return Verdict(UNTESTED, "needs r = 0.1, 0.9 and mixes in 0.3-0.7 in hybrid.real_fractions")
    beaten = [m for m in middle if all(_apart(ci[e], ci[m]) == 1 for e in ends)]
    verdict = HOLDS if len(beaten) == len(middle) else PARTLY if beaten else FAILS
    return Verdict(verdict, f"r = 0.1: {_f(rf['0.1'])}, 0.9: {_f(rf['0.9'])}; the mixes 0.3-0.7: "
                   + ", ".join(_f(rf[m]) for m in sorted(middle))
                   + f"; below both ends: {len(beaten)} of {len(middle)}")


def _lr_batch(s, spread, study):
    rows = get(s, "hybrid.lr_batch") or []
    if not rows:
        return Verdict(UNTESTED, "needs the learning-rate x batch-size sweep")
    n = get(s, "hybrid.test_images")
    rows = [{**r, "ci": wilson_ci95(round(r["test_acc"] * n), n)} for r in rows]
    best = max(rows, key=lambda r: r["test_acc"])
    others = [r for r in rows if r["lr"] == best["lr"] and r["batch_size"] != best["batch_size"]]
    batch_matters = any(_apart(best["ci"], o["ci"]) != 0 for o in others)
    lr_best, b32_best = best["lr"] == 0.001, best["batch_size"] == 32
    verdict = HOLDS if lr_best and b32_best and not batch_matters else PARTLY if lr_best or b32_best else FAILS
    return Verdict(verdict, f"best lr {best['lr']}, batch {best['batch_size']}: {_ci(best['test_acc'], best['ci'])}"
                   + "".join(f"; batch {o['batch_size']}: {_ci(o['test_acc'], o['ci'])}" for o in others)
                   + ("; the batch size makes a difference beyond the intervals" if batch_matters else ""))


def _class0(s, spread, study):
    conf = get(s, "hybrid.class0_errors") or {}
    if not {"uniform_10", "class0_40"} <= set(conf):
        return Verdict(UNTESTED, "needs the mixes uniform_10 and class0_40")
    u, c = conf["uniform_10"], conf["class0_40"]
    often = max(range(1, 10), key=lambda k: u["as"][k]) == 2
    cu, cc = wilson_ci95(u["as"][2], u["n"]), wilson_ci95(c["as"][2], c["n"])
    fixed = _apart(cu, cc) == 1
    verdict = HOLDS if often and fixed else PARTLY if often or fixed else FAILS
    return Verdict(verdict, f"class-0 test digits read as 2: {u['as'][2]} of {u['n']} at 10% real "
                   f"({_ci(u['as'][2] / u['n'], cu, 3)}), {c['as'][2]} at 40% ({_ci(c['as'][2] / c['n'], cc, 3)}); "
                   f"class 0's most frequent error at 10%: {max(range(1, 10), key=lambda k: u['as'][k])}")


def _pca_saturation(s, spread, study):
    n = get(s, "pca.global.saturation_components")
    values = ((spread or {}).get("metrics") or {}).get("pca.global.saturation_components", {}).get("values", {})
    seeds = list(values.values()) or [n]
    verdict = HOLDS if all(v == 64 for v in seeds) else PARTLY if 64 in seeds else FAILS
    return Verdict(verdict, f"global basis, LeNet accuracy within 0.005 of its best from n = {n} "
                   f"(seeds: {', '.join(_f(v, 0) for v in seeds)}); "
                   f"by LeNet-FID: n = {get(s, 'pca.global.fid_saturation_components')}")


def _pca_one_component(s, spread, study):
    one = get(s, "pca.global.curve.1.lenet_acc")
    best = get(s, "ccgan.best.lenet_acc")
    if one is None or best is None:
        return Verdict(UNTESTED, "needs n = 1 in pca.components and a CCGAN")
    return Verdict(HOLDS if best - one > 0.10 else FAILS,
                   f"global PCA, 1 component: {_f(one)}; best CCGAN: {_f(best)}; {100 * (best - one):.1f} points apart")


def _class_counts(s, spread, study):
    ours = get(s, "data.class_counts.train") or []
    theirs = [5932, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # report 004, Table 1
    differ = [c for c in range(10) if ours[c] != theirs[c]]
    verdict = HOLDS if not differ else PARTLY if len(differ) <= 1 else FAILS
    evidence = "; ".join(f"digit {c}: ours {ours[c]}, theirs {theirs[c]}" for c in differ)
    return Verdict(verdict, f"{evidence} (a typo in the table)" if differ else "every count equal")


def _tsne(s, spread, study):
    p = get(s, "data.tsne_purity") or {}
    if len(p) < 10:
        return Verdict(UNTESTED, "needs the t-SNE purity of every digit")
    sep, scat = [p[str(c)]["purity"] for c in (0, 1, 6)], [p[str(c)]["purity"] for c in (3, 8, 9)]
    verdict = HOLDS if min(sep) > max(scat) else PARTLY if sum(sep) > sum(scat) else FAILS
    order = sorted(p, key=lambda c: p[c]["purity"])
    return Verdict(verdict, "10-nearest-neighbour purity: 0, 1, 6: " + ", ".join(_f(x, 3) for x in sep)
                   + "; 3, 8, 9: " + ", ".join(_f(x, 3) for x in scat) + f"; lowest three: {', '.join(order[:3])}")


def _domain_quality(s, spread, study):
    pairs = {p: get(s, f"cogan.{p}") for p in PAIRS}
    if not all(pairs.values()) or any("fid_domain2" not in v for v in pairs.values()):
        return Verdict(UNTESTED, "needs the rotate, negative and edge CoGANs")
    ratio = {p: v["fid_domain2"] / v["fid_domain1"] for p, v in pairs.items()}
    clear = {p: ratio[p] <= 1.25 for p in ratio}
    ok = clear["rotate"] and clear["negative"] and not clear["edge"]
    verdict = HOLDS if ok else PARTLY if clear["rotate"] and clear["negative"] or not clear["edge"] else FAILS
    return Verdict(verdict, "; ".join(f"{p}: FID {_f(v['fid_domain2'], 1)} vs domain 1's {_f(v['fid_domain1'], 1)}"
                                      for p, v in pairs.items()))


def _joint(s, spread, study):
    pairs = get(s, "cogan") or {}
    if not pairs:
        return Verdict(UNTESTED, "needs the CoGANs")
    # coupled: the label agreement's interval above its chance level, and the pixel agreement above
    # chance on every seed there is (its normalised score > 0)
    coupled = {p: v["label_agreement_ci95"][0] > v["label_agreement_chance"]
               and (_worst(spread, f"cogan.{p}.agreement_normalised")[0] or v["agreement_normalised"]) > 0
               for p, v in pairs.items()}
    verdict = HOLDS if all(coupled.values()) else PARTLY if any(coupled.values()) else FAILS
    return Verdict(verdict, "; ".join(
        f"{p}: label agreement {_ci(v['label_agreement'], v['label_agreement_ci95'], 3)}, chance "
        f"{_f(v['label_agreement_chance'], 3)}, normalised pixel agreement {_f(v['agreement_normalised'], 2)}"
        f"{_seeds_note(spread, f'cogan.{p}.agreement_normalised', 2)}" for p, v in pairs.items()))


def _pixel_agreement(s, spread, study):
    out, met = [], []
    for pair, bar in PAIR_THEIRS.items():
        a, ci = get(s, f"cogan.{pair}.agreement"), get(s, f"cogan.{pair}.agreement_ci95")
        if a is None:
            return Verdict(UNTESTED, f"needs the {pair} CoGAN")
        worst, _ = _worst(spread, f"cogan.{pair}.agreement")
        met.append(a >= bar and (worst is None or worst >= bar))
        out.append(f"{pair} {_ci(a, ci)}{_seeds_note(spread, f'cogan.{pair}.agreement')} (paper {bar}; "
                   f"chance {_f(get(s, f'cogan.{pair}.agreement_chance'))})")
    return Verdict(HOLDS if all(met) else PARTLY if any(met) else FAILS, "; ".join(out))


# ----------------------------------------------------------------------------- study-profile claims
STUDY_NOTE = ("the study profile (profiles/study.yaml): one factor at a time around the best config, "
              "2 epochs x 5,760 images per run")


def _study(study: list[dict], needs: str, judge_seed: Callable[[dict], tuple[str, str]]) -> Verdict:
    """A grid verdict: ``judge_seed`` gives (verdict, evidence) on one seed's summary; the claim holds
    (or fails) only if it does on every one of :data:`STUDY_SEEDS` seeds."""
    if not study:
        return Verdict(UNTESTED, f"needs {STUDY_NOTE}; not run yet", "study")
    seen = [(r.get("seed"), *judge_seed(r)) for r in study]
    evidence = "; ".join(f"seed {seed}: {ev} ({v})" for seed, v, ev in seen)
    if len(seen) < STUDY_SEEDS:
        return Verdict(PENDING, f"{evidence}; seeds {len(seen)} of {STUDY_SEEDS}", "study")
    verdicts = {v for _, v, _ in seen}
    return Verdict(verdicts.pop() if len(verdicts) == 1 else PARTLY, evidence, "study")


def _runs(r: dict, family: str) -> dict:
    return get(r, f"{family}.runs") or {}


def _center(family: str) -> str:
    """The report's best config of ``family`` (the summary schema's ``theirs``): the study profile
    varies one factor at a time around it, so every grid rule compares against it."""
    return headline(f"{family}.best.config").theirs


def _score(run: dict, key: str) -> str:
    """A run's score with its 95% interval where the summary has one (LeNet accuracy; FID has none)."""
    return _ci(run[key], run.get(f"{key}_ci95"), 3)


def _bigger(runs: dict, base: str) -> list[str]:
    """The runs one step larger in F or D than ``base``, at its batch size."""
    b = base.split("-")[2]
    return [n for n in runs if n in (f"F2-D1-{b}", f"F3-D1-{b}", f"F1-D2-{b}", f"F1-D3-{b}")]


def _best_config(family: str, key: str, lower: bool):
    claimed = _center(family)

    def judge(r):
        runs = {n: v for n, v in _runs(r, family).items() if n.count("-") == 2}  # plain runs: no -vbn, -ls
        if not runs:
            return UNTESTED, "no runs"
        best = (min if lower else max)(runs, key=lambda n: runs[n][key])
        return (HOLDS if best == claimed else FAILS), f"best by {key}: {best} ({_score(runs[best], key)})"
    return judge


def _simpler_better(family: str, key: str, lower: bool):
    def judge(r):
        runs, base = _runs(r, family), _center(family)
        bigger = _bigger(runs, base)
        if base not in runs or not bigger:
            return UNTESTED, f"needs {base} and a run with a larger F or D at its batch size"
        better = [n for n in bigger if (runs[n][key] > runs[base][key]) == lower]  # worse than the simple one
        verdict = HOLDS if len(better) == len(bigger) else PARTLY if better else FAILS
        return verdict, f"{base} {_score(runs[base], key)}; bigger F or D worse in {len(better)} of {len(bigger)}"
    return judge


def _variant(family: str, suffix: str, key: str, expect: str):
    """A -vbn or -ls run against the report's best config (:func:`_center`). A gain: LeNet
    accuracy above beyond both intervals, or LeNet-FID (no interval) more than 10% lower.
    ``expect``: "gain" or "no gain"."""
    def judge(r):
        runs, base = _runs(r, family), _center(family)
        var = f"{base}-{suffix}"
        if base not in runs or var not in runs:
            return UNTESTED, f"needs {base} and {var}"
        a, b = runs[base], runs[var]
        if key == "lenet_acc":
            gain = _apart(b["lenet_acc_ci95"], a["lenet_acc_ci95"]) == 1
        else:
            gain = b[key] < 0.9 * a[key]
        ok = gain if expect == "gain" else not gain
        return (HOLDS if ok else FAILS), f"{base} {_score(a, key)}, {var} {_score(b, key)}"
    return judge


def _complex_better(family: str, key: str, lower: bool):
    """Some run with a larger F or D beats F1-D1, by under 2 points of accuracy (or 10% of FID)."""
    def judge(r):
        runs, base = _runs(r, family), _center(family)
        bigger = _bigger(runs, base)
        if base not in runs or not bigger:
            return UNTESTED, f"needs {base} and a run with a larger F or D at its batch size"
        margin = [(n, runs[n][key] - runs[base][key]) for n in bigger]
        better = [(n, d) for n, d in margin if (d < 0 if lower else d > 0)]
        mere = all(abs(d) < (0.1 * runs[base][key] if lower else 0.02) for _, d in better)
        verdict = HOLDS if better and mere else PARTLY if better else FAILS
        named = ", ".join(f"{n} ({d:+.3f})" for n, d in better) or "none"
        return verdict, f"{base} {_score(runs[base], key)}; better: {named}"
    return judge


CLAIMS: tuple[Claim, ...] = (
    Claim("c01", "000, 3.3", "LeNet: 99.4% train, 98.8% test after 5 epochs",
          "holds if the test accuracy's interval and its worst seed are >= 0.988 and train >= 0.994", _lenet),
    Claim("c02", "000, 2.3, Figs 2-4", "DCGAN F1-D1-B32 is the best config",
          "holds if F1-D1-B32 has the lowest LeNet-FID of the plain runs on every seed",
          lambda s, sp, st: _study(st, "dcgan", _best_config("dcgan", "fid", True))),
    Claim("c03", "000, 2.1", "G ~7M and D ~310k parameters at F1-D1",
          "holds if both counts are within 10% of the report's", _param_counts),
    Claim("c04", "000, 2.3", "simpler DCGANs beat the more complex ones",
          "holds if every run with a larger F or D has a higher LeNet-FID than F1-D1 on every seed",
          lambda s, sp, st: _study(st, "dcgan", _simpler_better("dcgan", "fid", True))),
    Claim("c05", "000, 2.4, Figs 14-16", "VBN gives the DCGAN no considerable improvement",
          "holds if the -vbn run's LeNet-FID is not 10% below the plain run's on every seed",
          lambda s, sp, st: _study(st, "dcgan", _variant("dcgan", "vbn", "fid", "no gain"))),
    Claim("c06", "000, 3.3, Fig 6", "CCGAN F1-D1-B64 is the best config (94.7%); simpler configs marginally better",
          "holds if F1-D1-B64 has the highest LeNet accuracy of the plain runs on every seed",
          lambda s, sp, st: _study(st, "ccgan", _best_config("ccgan", "lenet_acc", False))),
    Claim("c07", "000, Figs 2, 17", "the CCGAN's D accuracy stays almost constant, the DCGAN's is volatile",
          "needs per-epoch D accuracy over many epochs: not decided at 2-3 epochs per run",
          lambda s, sp, st: Verdict(UNTESTED, "2-3 epochs per run here; the paper profile (25 epochs) tests it",
                                    "paper")),
    Claim("c08", "000, 3.4", "VBN does not help the CCGAN",
          "holds if the -vbn run's LeNet accuracy is not above the plain run's beyond both intervals on every seed",
          lambda s, sp, st: _study(st, "ccgan", _variant("ccgan", "vbn", "lenet_acc", "no gain"))),
    Claim("c09", "000, 3.4", "one-sided label smoothing adds about 3 points, to 97.6%",
          "holds if the -ls run's LeNet accuracy is above the plain run's beyond both intervals on every seed",
          lambda s, sp, st: _study(st, "ccgan", _variant("ccgan", "ls", "lenet_acc", "gain"))),
    Claim("c10", "000, 3.3, Fig 8", "2 and 4 are the digits the CCGAN gets most wrong",
          "holds if 2 and 4 have the two lowest per-class accuracies; partly if one of them does", _worst_digits),
    Claim("c11", "000, 4.2, Fig 9", "more real data is better, and about 10% real already does well",
          "holds if r = 1 is above r = 0 beyond both intervals and r = 0.1 is within 1 point of r = 1", _real_fraction),
    Claim("c12", "000, 4.2", "mostly-real or mostly-synthetic sets beat the mixes in between",
          "holds if every mix with r in 0.3-0.7 is below both r = 0.1 and r = 0.9 beyond the intervals",
          _ends_beat_middle),
    Claim("c13", "000, 4.3, Fig 10", "lr 0.001 is best; batch size makes no significant difference, 32 is better",
          "holds if lr 0.001 with batch 32 is best and the other batch sizes at that lr are within its interval",
          _lr_batch),
    Claim("c14", "000, 4.3, Figs 11-12", "at 10% real, class 0 is often read as 2; 40% real for class 0 fixes it",
          "holds if 2 is class 0's most frequent error at 10% real and the 0->2 rate drops beyond both "
          "intervals at 40%",
          _class0),
    Claim("c15", "000, 5.2, Fig 13", "PCA gains saturate at 64 components",
          "holds if the global basis's LeNet accuracy saturates at n = 64 on every seed", _pca_saturation),
    Claim("c16", "000, 5.2", "1-component PCA scores more than 10 points below the best CGAN",
          "holds if the best CCGAN's accuracy exceeds 1-component global PCA's by more than 0.10", _pca_one_component),
    Claim("c17", "000, 6", "more complicated models gave better performance by a mere margin",
          "holds if some CCGAN with a larger F or D beats F1-D1, each by under 2 points of LeNet accuracy, on "
          "every seed (it contradicts c04 and c06: the data decides)",
          lambda s, sp, st: _study(st, "ccgan", _complex_better("ccgan", "lenet_acc", False))),
    Claim("c18", "004, Table 1", "the class counts of MNIST train", "holds if every count equals the data's",
          _class_counts),
    Claim("c19", "004, Figs 2-3", "t-SNE: 3, 8, 9 scatter; 0, 1, 6 form their own clusters",
          "holds if each of 0, 1, 6 has a higher kNN purity than each of 3, 8, 9; partly if on average", _tsne),
    Claim("c20", "004, Figs 7-9", "rotated and negative images are good and clear, edge a little blurry",
          "holds if domain 2's LeNet-FID is within 1.25x domain 1's for rotate and negative, and not for edge",
          _domain_quality),
    Claim("c21", "004, 3", "the CoGAN learns each pair's joint distribution from unpaired halves",
          "holds if every pair's label agreement interval lies above its chance level and its pixel agreement "
          "is above chance on every seed; partly if some pairs are", _joint),
    Claim("c22", "CoGAN paper, 5", "pixel agreement 0.952 edge, 0.967 negative",
          "holds if ours and our worst seed reach the paper's number for both pairs", _pixel_agreement),
    Claim("c23", "this project", "a domain-specific layer that can move strokes couples a rotation",
          "holds if the rotate CoGAN with a linear output layer has label agreement above chance beyond its "
          "interval on every seed", lambda s, sp, st: _study(st, "cogan", _rotate_linear)),
)


def _rotate_linear(r):
    v = get(r, "cogan.rotate")
    if not v:
        return UNTESTED, "no rotate CoGAN"
    coupled = v["label_agreement_ci95"][0] > v["label_agreement_chance"]
    evidence = (f"label agreement {_ci(v['label_agreement'], v['label_agreement_ci95'], 3)}, chance "
                f"{_f(v['label_agreement_chance'], 3)}; pixel normalised {_f(v['agreement_normalised'], 3)}")
    return (HOLDS if coupled else FAILS), evidence


def judge(summary: dict, spread: dict | None = None, study: list[dict] | None = None) -> dict[str, dict]:
    """{claim id: {verdict, holds?, evidence, rule, source, claim, profile}} for every claim."""
    out = {}
    for c in CLAIMS:
        v = c.judge(summary, spread, sorted(study or [], key=lambda r: r.get("seed", 0)))
        entry = {"verdict": v.verdict, "evidence": v.evidence, "rule": c.rule, "source": c.source,
                 "claim": c.text, "profile": v.profile or summary.get("profile")}
        if v.verdict in SCORE:
            entry["holds"] = SCORE[v.verdict]
        out[c.id] = entry
    return out


def tally(claims: dict[str, dict]) -> dict[str, int]:
    counts = {k: 0 for k in (HOLDS, PARTLY, FAILS, PENDING, UNTESTED)}
    for c in claims.values():
        counts[c["verdict"]] += 1
    return counts
