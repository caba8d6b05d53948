"""`dvc repro` of the real pipeline in a temporary Git+DVC repository on a tiny configuration.

Uses the genuine MNIST files (from $MNIST_MIRROR or ../shared/mnist): the download stage
checks the canonical md5s, so fake files cannot stand in for them here. The pipeline runs
once per module (``tiny_repo``); tests that change things work on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mnistgan_tools import smoke

import browser
from conftest import ROOT, shared_mnist
from tiny import TINY_OVERRIDES, apply_overrides

pytestmark = pytest.mark.e2e

MNIST = shared_mnist()
if MNIST is None:
    pytest.skip("genuine MNIST files not available offline (set MNIST_MIRROR to a directory "
                "holding the four .gz files)", allow_module_level=True)


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def project_env(dest: Path) -> dict:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # the tmp repo's own library, and sitecustomize's hook that logs what each stage reads
        "PYTHONPATH": os.pathsep.join([str(dest / "src"), str(dest / "src/mnistgan_tools/hooks")]),
        "MNIST_MIRROR": str(MNIST),
        "MNISTGAN_PUBLIC_MIRRORS": "",
        "DVC_NO_ANALYTICS": "1",
        # every stage appends the params keys it read and the files it imported (mnistgan_tools.params_log)
        "MNISTGAN_PARAMS_LOG": str(dest.parent / f"{dest.name}.reads.jsonl"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
    }


def make_project(dest: Path, overrides: dict[str, object]) -> dict:
    """Copy the project's source files (not its outputs) into ``dest`` as a fresh Git+DVC repo."""
    for rel in smoke.project_files(ROOT):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    params = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env(dest)
    assert (dest / ".dvc/config").is_file()  # the project's own DVC config came along
    sh(["git", "init", "-q", "-b", "main"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh(["git", "commit", "-qm", "init"], dest, env)
    return env


def copy_repo(src: Path, dest: Path) -> dict:
    shutil.copytree(src, dest, symlinks=True)
    return project_env(dest)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    """The tiny pipeline reproduced once, its lock and results committed."""
    repo = tmp_path_factory.mktemp("tiny") / "repo"
    repo.mkdir()
    env = make_project(repo, TINY_OVERRIDES)
    t0 = time.perf_counter()
    r = sh(["dvc", "repro"], repo, env)
    print(f"tiny dvc repro: {time.perf_counter() - t0:.1f}s, stages {stages_run(r.stdout)}")
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "tiny run"], repo, env)
    return repo


def test_outputs_and_numbers(tiny_repo):
    lenet = json.loads((tiny_repo / "metrics/lenet/metrics.json").read_text())
    assert 0.5 < lenet["test_acc"] <= 1.0
    assert 1.0 <= lenet["test_is"] <= 10.0
    counts = (tiny_repo / "plots/data/class_counts_train.csv").read_text().splitlines()
    assert counts[0] == "digit,count" and sum(int(r.split(",")[1]) for r in counts[1:]) == 1200
    for png in ("plots/data/tsne.png", "plots/data/domains.png"):
        assert (tiny_repo / png).read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in (tiny_repo / "models/lenet").iterdir()} == {"lenet.pt", "config.json", "test_stats.npz"}
    timing = json.loads((tiny_repo / "metrics/timings/train_lenet.json").read_text())
    assert timing["wall_s"] > 0 and 10 < timing["peak_rss_mb"] < 4096


def test_every_stage_declares_what_it_reads(tiny_repo):
    """Each stage's params in dvc.yaml cover every key its run read, and its code deps are every
    project file its run imported: a stage whose inputs are not all declared could go stale."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    from mnistgan_tools.params_log import covers

    records = [json.loads(line) for line in (tiny_repo.parent / "repo.reads.jsonl").read_text().splitlines()]
    with Repo(str(tiny_repo)) as repo:
        stages = {" ".join(s.cmd.split()[1:]): s for s in repo.index.stages if getattr(s, "cmd", None)}
        # a params dep without keys (check_params' `params.yaml:`) is the whole file: it covers every key
        declared = {cmd: ([k for d in s.deps if isinstance(d, ParamsDependency) for k in d.params or ["*"]],
                          {d.def_path for d in s.deps if not isinstance(d, ParamsDependency)})
                    for cmd, s in stages.items()}
    seen, gaps = set(), []
    for rec in records:
        cmd = " ".join(rec["argv"])
        params, files = declared[cmd]
        name = stages[cmd].name
        seen.add(name)
        gaps += [f"{name} reads params key {k}, not declared" for k in rec["params"]
                 if "*" not in params and not covers(params, k)]
        gaps += [f"{name} imported {f}, not a dep" for f in rec["files"] if f not in files]
    assert not gaps, "\n".join(gaps)
    assert seen == {s.name for s in stages.values()}, "every stage ran and was logged"


def test_second_repro_reruns_only_evaluate_and_changes_nothing(tiny_repo, tmp_path):
    """`evaluate` is always_changed (it depends on constant done-markers, see dvc.yaml), so a second
    `dvc repro` runs it alone, in seconds, and it writes the same files (timings aside)."""
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    outputs = ["metrics/summary.json", "metrics/headlines.json", "REPORT.md", "plots/summary/dcgan_grid.csv"]
    before = {f: (repo / f).read_bytes() for f in outputs}
    t0 = time.perf_counter()
    r = sh(["dvc", "repro"], repo, env)
    elapsed = time.perf_counter() - t0
    assert stages_run(r.stdout) == ["evaluate"]
    assert elapsed < 30.0, f"dvc repro of an unchanged pipeline took {elapsed:.1f}s"
    assert {f: (repo / f).read_bytes() for f in outputs} == before
    status = sh(["dvc", "status"], repo, env).stdout
    assert "evaluate" in status and "always changed" in status and "train_" not in status, status


def test_metrics_and_plots_render(tiny_repo):
    env = project_env(tiny_repo)
    shown = sh(["dvc", "metrics", "show", "--json"], tiny_repo, env).stdout
    assert "test_acc" in shown
    out = tiny_repo.parent / "dvc_plots"
    sh(["dvc", "plots", "show", "-o", str(out)], tiny_repo, env)
    html = (out / "index.html").read_text()
    for title in ("class counts, train", "LeNet confusion matrix", "LeNet accuracy per epoch"):
        assert title in html, title


@pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.NO_CHROMIUM)
def test_plots_show_after_a_fresh_repro_draws_every_chart_offline(tiny_repo, tmp_path):
    """The page of `dvc plots show` right after `dvc repro` on a fresh copy, in Chromium with the
    network off: every Vega plot drew, nothing went wrong (tests/browser.py)."""
    assert "plots_template.html" in (tiny_repo / "build/.gitignore").read_text()  # made by dvc repro, not copied
    env = project_env(tiny_repo)
    sh(["dvc", "plots", "show", "-o", str(tmp_path / "out")], tiny_repo, env)
    page = browser.render(tmp_path / "out/index.html")
    assert page.probed and len(page.plots) > 10, page.plots
    assert not page.blank and page.errors == [], (page.blank, page.errors)


def test_rerun_gives_identical_metrics(tiny_repo, tmp_path):
    """Determinism on CPU: the same params and seed give the same metrics.json twice."""
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    before = (repo / "metrics/lenet/metrics.json").read_text()
    r = sh(["dvc", "repro", "-f", "-s", "train_lenet"], repo, env)
    assert stages_run(r.stdout) == ["train_lenet"]
    after = (repo / "metrics/lenet/metrics.json").read_text()
    strip = lambda s: {k: v for k, v in json.loads(s).items() if k != "device"}  # noqa: E731
    assert strip(after) == strip(before)


def test_experiments_queue_push_and_pull_into_a_second_clone(tiny_repo, tmp_path):
    """Share experiments with DVC's own machinery: queue, push to Git + DVC remotes, pull elsewhere."""
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    git_remote, dvc_remote = tmp_path / "remote.git", tmp_path / "dvcstore"
    sh(["git", "init", "-q", "--bare", "-b", "main", str(git_remote)], tmp_path, env)
    sh(["git", "remote", "add", "origin", str(git_remote)], repo, env)
    sh(["dvc", "remote", "add", "-d", "store", str(dvc_remote)], repo, env)
    sh(["git", "commit", "-qam", "remotes"], repo, env)
    sh(["git", "push", "-q", "origin", "main"], repo, env)
    sh(["dvc", "push"], repo, env)

    for lr in ("0.002", "0.004"):  # a DCGAN learning rate: each experiment retrains one GAN run
        sh(["dvc", "exp", "run", "--queue", "-S", f"dcgan.lr={lr}", "-n", f"lr-{lr}"], repo, env)
    sh(["dvc", "queue", "start", "-j", "2"], repo, env)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = sh(["dvc", "queue", "status"], repo, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status

    shown = json.loads(sh(["dvc", "exp", "show", "--json"], repo, env).stdout)
    names = sorted(e["name"] for rev in shown for e in (rev.get("experiments") or []) if e.get("name"))
    assert names == ["lr-0.002", "lr-0.004"], names
    sh(["dvc", "exp", "push", "origin", "lr-0.002", "lr-0.004"], repo, env)

    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(git_remote), str(clone)], tmp_path, env)
    cenv = project_env(clone)
    sh(["dvc", "exp", "pull", "origin", "lr-0.002", "lr-0.004"], clone, cenv)
    table = sh(["dvc", "exp", "show", "--csv"], clone, cenv).stdout
    assert "lr-0.002" in table and "lr-0.004" in table
    sh(["dvc", "exp", "apply", "lr-0.004"], clone, cenv)
    sh(["dvc", "pull"], clone, cenv)
    assert (clone / "models/lenet/lenet.pt").is_file() and (clone / "models/dcgan").is_dir()
    r = sh(["dvc", "repro"], clone, cenv)
    assert stages_run(r.stdout) == ["evaluate"], "pulled experiment should not need retraining"


def _stamp(path: Path) -> tuple[int, int] | None:
    return (path.stat().st_ino, path.stat().st_mtime_ns) if path.exists() else None


def _interrupted_repro(repo: Path, env: dict, stage: str, checkpoint: Path, sig: int) -> str:
    """Start `dvc repro -f -s <stage>`, wait until it writes a checkpoint (a new one, if one is there),
    then send ``sig`` to the whole process group (DVC and the stage's Python), as a user's kill or
    a scheduler would. Returns what the run printed."""
    before = _stamp(checkpoint)
    proc = subprocess.Popen(["dvc", "repro", "-f", "-s", stage], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while _stamp(checkpoint) in (before, None):
        assert proc.poll() is None, f"stage ended before a new checkpoint:\n{proc.stdout.read()}"
        assert time.time() < deadline, "no new checkpoint within 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    return out


@pytest.fixture(scope="module")
def long_ccgan(tiny_repo, tmp_path_factory) -> Path:
    """The tiny repo with a CCGAN run long enough to kill twice mid-training, reproduced
    uninterrupted once: the reference the kill test compares with."""
    repo = tmp_path_factory.mktemp("long") / "repo"
    env = copy_repo(tiny_repo, repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ccgan"].update(epochs=4, train_limit=320, eval_every=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(repo / "checkpoints", ignore_errors=True)
    sh(["dvc", "repro", "-s", f"train_ccgan@{params['ccgan']['runs'][0]}"], repo, env)
    shutil.rmtree(repo / "checkpoints")
    return repo


def test_killed_gan_resumes_and_ends_with_the_same_metrics(long_ccgan, tmp_path):
    """Kill a CCGAN run mid-training, by SIGTERM and then, resumed, by SIGKILL: neither time is
    the stage accepted, and the next `dvc repro` resumes from the last checkpoint and ends with
    exactly the metrics of an uninterrupted run."""
    repo = tmp_path / "repo"
    env = copy_repo(long_ccgan, repo)
    run = yaml.safe_load((repo / "params.yaml").read_text())["ccgan"]["runs"][0]
    stage, ckpt = f"train_ccgan@{run}", repo / f"checkpoints/ccgan/{run}.pt"
    outputs = [f"metrics/ccgan/{run}/metrics.json", f"metrics/ccgan/{run}/plots/metrics/g_loss.tsv",
               f"metrics/ccgan/{run}/plots/metrics/lenet_acc.tsv"]
    reference = {p: (repo / p).read_text() for p in outputs}

    _interrupted_repro(repo, env, stage, ckpt, signal.SIGTERM)
    assert stage in json.loads(sh(["dvc", "status", "--json", stage], repo, env).stdout), \
        "a killed stage must not be accepted as up to date"
    assert not list(repo.rglob(".*.tmp"))  # SIGTERM cleans its temporaries
    out = _interrupted_repro(repo, env, stage, ckpt, signal.SIGKILL)
    assert "resuming after epoch 1" in out, out[-2000:]
    assert stage in json.loads(sh(["dvc", "status", "--json", stage], repo, env).stdout)

    r = sh(["dvc", "repro", "-s", stage], repo, env)
    assert "resuming after epoch 2" in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]
    for p in outputs:
        assert (repo / p).read_text() == reference[p], p
    assert stage not in json.loads(sh(["dvc", "status", "--json", stage], repo, env).stdout)


@pytest.mark.parametrize("change, expected", [
    # a LeNet change: both LeNets (the edge reader shares lenet.*); their dependants follow later
    ({"lenet.lr": 0.002}, {"train_lenet", "train_edge_lenet"}),
    # a CCGAN learning rate: every CCGAN run; no DCGAN, CoGAN, LeNet or PCA stage
    ({"ccgan.lr": 0.001}, {"train_ccgan@{run}"}),
    # one more CCGAN config: only the new run trains; generate_synthetic reads ccgan.runs, since
    # the new run may be the best one
    ({"ccgan.runs": ["{run}", "F1-D2-B32"]}, {"train_ccgan@F1-D2-B32", "generate_synthetic"}),
    # a CoGAN setting: the CoGAN pairs only
    ({"cogan.shared_layers": 2}, {"train_cogan@rotate", "train_cogan@negative", "train_cogan@edge"}),
], ids=["lenet", "ccgan-lr", "ccgan-more", "cogan"])
def test_a_param_change_reruns_exactly_the_stages_that_read_it(tiny_repo, tmp_path, change, expected):
    """`dvc repro --dry` after a params edit: the stages whose own inputs changed (their dependants
    follow as DVC finds their inputs changed), besides check_params and evaluate, which always run."""
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    run = params["ccgan"]["runs"][0]
    fill = lambda v: [x.format(run=run) for x in v] if isinstance(v, list) else v  # noqa: E731
    params = apply_overrides(params, {k: fill(v) for k, v in change.items()})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = set(stages_run(sh(["dvc", "repro", "--dry"], repo, env).stdout))
    assert ran == {s.format(run=run) for s in expected} | {"check_params", "evaluate"}, ran


def test_summary_has_every_headline_key_in_range_and_report_is_reproduced_exactly(tiny_repo, tmp_path):
    """Every key the summary schema promises is there and every headline is in its range (the
    same check as the smoke run's), and REPORT.md is exactly what the renderer makes of it."""
    from mnistgan.pipeline import params as params_mod, report, summary as schema

    summary = json.loads((tiny_repo / "metrics/summary.json").read_text())
    info = json.loads((tiny_repo / "metrics/run_info.json").read_text())
    assert schema.problems(summary, params_mod.load(tiny_repo / "params.yaml"), info) == []

    text = (tiny_repo / "REPORT.md").read_text()
    assert text == report.render(summary, info)  # the file is exactly what the renderer makes of them
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    r = sh(["dvc", "repro", "-f", "-s", "evaluate"], repo, env)
    assert stages_run(r.stdout) == ["evaluate"]
    assert (repo / "REPORT.md").read_text() == text  # and rerunning the stage reproduces it byte for byte
    assert (repo / "results/quick/REPORT.md").read_text() == text
    assert json.loads((repo / "results/quick/provenance.json").read_text())["profile"] == "quick"


def test_a_one_param_experiment_is_compared_at_a_glance(tiny_repo, tmp_path):
    """The README's compare section, run as a user would: plain `dvc exp show --only-changed`
    fits in 120 columns with the changed param and the headline it moved; `dvc metrics diff`
    shows scores and no timings; every score is still one `--targets` away."""
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    epochs = yaml.safe_load((repo / "params.yaml").read_text())["dcgan"]["epochs"]
    sh(["dvc", "exp", "run", "-n", "try-dcgan", "-S", f"dcgan.epochs={epochs + 1}"], repo, env)

    wide = {**env, "COLUMNS": "400"}  # room to spare: the table's own width is what is measured
    shown = sh(["dvc", "exp", "show", "--only-changed", "--no-pager"], repo, wide).stdout
    print(shown)
    lines = [line for line in shown.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= 120, shown
    header = " ".join(lines[:3])
    assert "dcgan.epochs" in header and "dcgan.best.fid" in header, shown
    assert "wall_s" not in shown and "metrics/" not in header and "…" not in shown, shown

    diff = sh(["dvc", "metrics", "diff", "main"], repo, env).stdout
    assert "dcgan.best.fid" in diff and "wall_s" not in diff and "peak_rss" not in diff, diff
    every = sh(["dvc", "metrics", "diff", "main", "--targets", "metrics/summary.json"], repo, env).stdout
    assert "dcgan.runs." in every, every
    timings = sh(["dvc", "metrics", "diff", "main", "--targets", "metrics/run_info.json"], repo, env).stdout
    assert "wall_s" in timings, timings

    # `dvc plots diff` draws both sides of every curve on one page, which renders offline
    sh(["dvc", "plots", "diff", "main", "try-dcgan", "-o", str(tmp_path / "diff")], repo, env)
    html = (tmp_path / "diff/index.html").read_text()
    assert "DCGAN LeNet-FID per epoch" in html and "try-dcgan" in html and "main" in html
    if browser.CHROMIUM:  # test_plots_page.py checks the same page mechanics without MNIST
        page = browser.render(tmp_path / "diff/index.html")
        assert page.plots and not page.blank and page.errors == [], (page.blank, page.errors)


def test_parallel_runner_matches_dvc_repro_and_leaves_nothing_to_run(tiny_repo, tmp_path):
    """`python -m mnistgan_tools.parallel -j 2` gives the same results as `dvc repro` and commits them.

    Two new DCGAN runs at once; both sides run at the tiny config's
    cpu_threads = 1 (CPU results depend on the thread count, a param), so the numbers must
    match exactly.
    """
    results = {}
    for how in ("parallel", "repro"):
        repo = tmp_path / how
        env = copy_repo(tiny_repo, repo)
        params = apply_overrides(yaml.safe_load((repo / "params.yaml").read_text()), {
            "dcgan.runs": ["F1-D1-B32", "F1-D2-B32", "F1-D3-B32"]})
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        cmd = [sys.executable, "-m", "mnistgan_tools.parallel", "-j", "2"] if how == "parallel" else ["dvc", "repro"]
        r = sh(cmd, repo, env)
        if how == "parallel":
            started = [line.split()[2] for line in r.stdout.splitlines() if line.startswith("parallel: start")]
            assert {"train_dcgan@F1-D2-B32", "train_dcgan@F1-D3-B32"} <= set(started), started
            assert "train_lenet" not in started, started
            assert "(2 running" in r.stdout  # two stages did run side by side
            # evaluate is always changed by design (dvc.yaml); every other stage is recorded
            assert json.loads(sh(["dvc", "status", "--json"], repo, env).stdout) == {"evaluate": ["always changed"]}
            assert stages_run(sh(["dvc", "repro"], repo, env).stdout) == ["evaluate"]
        results[how] = {p.relative_to(repo).as_posix(): p.read_text()
                        for p in sorted(repo.glob("metrics/*/*/metrics.json")) + [repo / "metrics/hybrid.json"]}
    assert "metrics/dcgan/F1-D2-B32/metrics.json" in results["parallel"]
    assert results["parallel"] == results["repro"]


def test_a_bad_param_stops_dvc_repro_before_any_output_is_touched(tiny_repo, tmp_path):
    """The typo a new user makes (a negative learning rate): `dvc repro` ends in check_params with
    one line naming the key, and the CCGAN run's committed outputs are all still there, unchanged."""
    repo = tmp_path / "repo"
    env = copy_repo(tiny_repo, repo)
    run = yaml.safe_load((repo / "params.yaml").read_text())["ccgan"]["runs"][0]
    outputs = [f"metrics/ccgan/{run}/metrics.json", f"metrics/ccgan/{run}/plots/metrics/d_loss.tsv",
               f"plots/ccgan/{run}.png", f"metrics/timings/train_ccgan@{run}.json", f"models/ccgan/{run}/generator.pt"]
    before = {f: (repo / f).read_bytes() for f in outputs}
    text = (repo / "params.yaml").read_text()
    ccgan = text.index("ccgan:")
    lr = text.index("lr:", ccgan)
    (repo / "params.yaml").write_text(text[:lr] + "lr: -1\n" + text[text.index("\n", lr) + 1:])

    r = sh(["dvc", "repro"], repo, env, check=False)
    assert r.returncode != 0
    assert stages_run(r.stdout) == ["check_params"]
    errors = [line for line in r.stderr.splitlines() if "error:" in line and "check_params" in line]
    assert errors == ["check_params: error: params.yaml: ccgan.lr must be > 0.0 (got -1.0)"], r.stderr
    assert {f: (repo / f).read_bytes() for f in outputs} == before
