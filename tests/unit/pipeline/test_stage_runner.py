"""Stage scripts as a user runs them: --help, and one clear error line with no output left."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT  # noqa: E402

STAGES = sorted(p.name for p in (ROOT / "stages").glob("*.py") if p.name != "src_path.py")


def run(script, *args, cwd=ROOT, env=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / script), *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("script", STAGES)
def test_every_stage_explains_itself(script):
    r = run(script, "--help")
    assert r.returncode == 0, r.stderr
    assert "--params" in r.stdout and len(r.stdout.splitlines()) > 3


@pytest.mark.parametrize("script", STAGES)
def test_every_stage_puts_its_src_first_before_importing_the_library(script):
    lines = (ROOT / "stages" / script).read_text().splitlines()
    first_lib = next(i for i, line in enumerate(lines) if line.startswith(("from mnistgan", "import mnistgan")))
    assert any(line.startswith("import src_path") for line in lines[:first_lib]), script


def test_a_stage_in_another_copy_runs_that_copys_library(tmp_path):
    """As in `dvc exp run --queue`: a copy of the repository in a temp dir, with mnistgan also
    installed (editable) from the original. The copy's stage must import the copy's library."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for d in ("stages", "src"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=ignore)
    init = tmp_path / "src/mnistgan/__init__.py"
    init.write_text(init.read_text() + "\nprint('mnistgan loaded from', __file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "stages/train_gan.py", "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"mnistgan loaded from {init}" in r.stdout


def test_corrupt_mirror_file_gives_one_md5_line_and_no_output(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shared = ROOT.parent / "shared" / "mnist"
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        src = shared / name
        (mirror / name).write_bytes(src.read_bytes() if src.exists() else b"x")
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b corrupted copy")
    out = tmp_path / "raw"
    r = run("download.py", "--out", str(out), "--params", str(ROOT / "params.yaml"),
            env={"MNIST_MIRROR": str(mirror), "MNISTGAN_PUBLIC_MIRRORS": ""})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "md5" in lines[0] and "expected" in lines[0] and str(mirror) in lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror"]


def test_bad_params_stop_a_stage_before_work(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text((ROOT / "params.yaml").read_text().replace("lr: 0.001", "lr: -0.001", 1))
    out = tmp_path / "raw"
    r = run("download.py", "--out", str(out), "--params", str(bad), env={"MNISTGAN_PUBLIC_MIRRORS": ""})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"download: error: {bad}: lenet.lr must be > 0.0 (got -0.001)"]
    assert not out.exists()


FAULTS = """
import resource, sys, torch
sys.path.insert(0, {src!r})
from mnistgan.pipeline import memory
from mnistgan.models.lenet import LeNet
applied = memory.keep_freed_memory() if sys.argv[1] == "keep" else None
torch.set_num_threads(1)
net, batch = LeNet().eval(), torch.zeros(250, 1, 28, 28)
with torch.no_grad():
    net(batch), net(batch)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        net(batch)  # a scoring batch: 25 MB for the first feature map
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_stages_keep_freed_memory_instead_of_faulting_it_back_in():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", FAULTS.format(src=str(ROOT / "src")), mode],
                             capture_output=True, text=True, check=True).stdout.split()
        return out[0], int(out[1])
    applied, kept = faults("keep")
    _, default = faults("default")
    assert applied == "True"
    print(f"minor page faults in 20 LeNet batches: {default} by default, {kept} kept")
    assert default > 20 * 1000  # pages faulted in again batch after batch (93,000-277,000 measured)
    assert kept < default / 10  # the heap keeps them
