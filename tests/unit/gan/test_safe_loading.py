"""Nothing that comes from outside is unpickled: checkpoints and weights load with
``torch.load(..., weights_only=True)``, arrays with ``np.load(..., allow_pickle=False)``,
YAML only with ``yaml.safe_load``.

Every file planted here carries a payload that creates a marker file when unpickled; the
first tests prove the payload is live (plain unpickling does create the marker), so its
absence afterwards means the loader never ran it. The YAML side (a ``!!python/object`` tag
refused by params.load) is covered in test_params.py. The last part is a static scan of
src/ and stages/ for loading calls that could unpickle.
"""

from __future__ import annotations

import ast
import builtins
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistgan import classifier
from mnistgan.errors import PipelineError
from mnistgan.files import load_npz, save_npz
from mnistgan.gan import checkpoints, image, loop, store
from mnistgan.models import dcgan
from mnistgan.models.lenet import LeNet

from conftest import ROOT  # noqa: E402


class Planted:
    """Unpickling this object runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PAYLOAD_RAN"


def test_the_payload_is_live_for_plain_pickle_and_unsafe_torch_load(tmp_path, marker):
    pickle.loads(pickle.dumps(Planted(marker)))
    assert marker.exists()
    marker.unlink()
    torch.save({"weights": torch.zeros(2), "extra": Planted(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)  # what the library must never do
    assert marker.exists()


def malicious_pt(path: Path, marker: Path, form: str) -> Path:
    """A .pt file whose unpickling runs the payload, in torch's zip format or as a bare pickle."""
    if form == "torch.save":
        torch.save({"digest": "x", "generator": {"w": torch.zeros(1)}, "evil": Planted(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Planted(marker), protocol=2))
    return path


FORMS = ["torch.save", "bare pickle"]


# ----------------------------------------------------------------------------- (a) GAN checkpoints
CONFIG = loop.TrainConfig(epochs=1, batch_size=8, lr=1e-3, betas=(0.5, 0.999), seed=0)
IDENTITY = {"test": "safe-loading"}


def tiny_run(epochs: int, checkpoint: Path | None):
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.manual_seed(0)
    model = image.image_gan((x,), conditional=False, width=1, depth=1, latent=8, vbn_batch=0, real_target=1.0, seed=0)
    return loop.train(model, (x,), replace(CONFIG, epochs=epochs), name="t", identity=IDENTITY,
                          checkpoint=checkpoint).history


@pytest.fixture(scope="module")
def fresh_histories() -> dict[int, list]:
    return {epochs: tiny_run(epochs, None) for epochs in (1, 2)}


def assert_started_fresh(history, fresh, checkpoint: Path, capsys, epochs: int) -> None:
    assert history == fresh
    assert "ignoring unreadable checkpoint" in capsys.readouterr().err
    state = torch.load(checkpoint, weights_only=True)  # the planted file was replaced by a genuine one
    assert state["epoch"] == epochs and state["history"] == fresh


@pytest.mark.parametrize("form", FORMS)
def test_resuming_from_a_malicious_checkpoint_runs_nothing_and_starts_fresh(
        tmp_path, marker, capsys, fresh_histories, form):
    checkpoint = malicious_pt(tmp_path / "ck.pt", marker, form)
    history = tiny_run(1, checkpoint)
    assert not marker.exists(), "resuming ran the checkpoint's payload"
    assert_started_fresh(history, fresh_histories[1], checkpoint, capsys, epochs=1)


def test_a_genuine_checkpoint_with_one_planted_object_is_not_resumed(tmp_path, marker, capsys, fresh_histories):
    """Right digest, right keys, real weights: only the unpickler stands between the payload
    and the resume. Without the plant the same file resumes (control)."""
    checkpoint = tmp_path / "ck.pt"
    tiny_run(1, checkpoint)
    genuine = checkpoint.read_bytes()
    state = torch.load(checkpoint, weights_only=True)
    assert state["digest"] == checkpoints.run_digest(replace(CONFIG, epochs=2), IDENTITY)

    state["history"][0]["note"] = Planted(marker)
    torch.save(state, checkpoint)
    capsys.readouterr()
    history = tiny_run(2, checkpoint)
    assert not marker.exists(), "resuming ran the checkpoint's payload"
    assert_started_fresh(history, fresh_histories[2], checkpoint, capsys, epochs=2)

    checkpoint.write_bytes(genuine)  # control: the unplanted file is resumed
    assert tiny_run(2, checkpoint) == fresh_histories[2]
    assert "resuming after epoch 1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- (b) saved generators and the scorer
@pytest.fixture
def saved_generator(tmp_path) -> Path:
    torch.manual_seed(0)
    store.save_generator(tmp_path / "g", dcgan.Generator(latent=8), "dcgan", {"run": "x"})
    store.load_generator(tmp_path / "g")  # loads while untouched
    return tmp_path / "g"


@pytest.fixture
def saved_scorer(tmp_path) -> Path:
    torch.manual_seed(0)
    features = np.random.default_rng(0).normal(size=(30, 12))
    classifier.save_scorer(tmp_path / "lenet", LeNet((4, 8), (16, 12)), (4, 8), (16, 12), features)
    classifier.load_scorer(tmp_path / "lenet")  # loads while untouched
    return tmp_path / "lenet"


# The loaders refuse these files without running them, with the one-line PipelineError that
# stages print.
REFUSED = (PipelineError,)


def assert_refused_unexecuted(load, marker: Path, refused=REFUSED) -> None:
    try:
        load()
        outcome = None
    except Exception as exc:  # the marker is checked first, whatever the loader raised
        outcome = exc
    assert not marker.exists(), "loading ran the planted payload"
    assert isinstance(outcome, refused), f"expected a refusal {refused}, got {outcome!r}"


@pytest.mark.parametrize("form", FORMS)
def test_malicious_generator_weights_are_refused_unexecuted(saved_generator, marker, form):
    malicious_pt(saved_generator / "generator.pt", marker, form)
    assert_refused_unexecuted(lambda: store.load_generator(saved_generator), marker)


@pytest.mark.parametrize("form", FORMS)
def test_malicious_scorer_weights_are_refused_unexecuted(saved_scorer, marker, form):
    malicious_pt(saved_scorer / classifier.WEIGHTS, marker, form)
    assert_refused_unexecuted(lambda: classifier.load_scorer(saved_scorer), marker)


def test_malicious_scorer_stats_are_refused_unexecuted(saved_scorer, marker):
    np.savez(saved_scorer / classifier.STATS, mu=np.array([Planted(marker)], dtype=object), sigma=np.eye(2))
    assert_refused_unexecuted(lambda: classifier.load_scorer(saved_scorer), marker)


def test_malicious_generator_weights_are_one_pipeline_error(saved_generator, marker):
    malicious_pt(saved_generator / "generator.pt", marker, "torch.save")
    with pytest.raises(PipelineError, match="not a saved generator") as err:
        store.load_generator(saved_generator)
    assert "\n" not in str(err.value)


def test_malicious_scorer_weights_are_one_pipeline_error(saved_scorer, marker):
    malicious_pt(saved_scorer / classifier.WEIGHTS, marker, "torch.save")
    with pytest.raises(PipelineError, match="not a LeNet scorer") as err:
        classifier.load_scorer(saved_scorer)
    assert "\n" not in str(err.value)


def test_a_checkpoint_that_is_not_a_checkpoint_dict_starts_fresh(tmp_path, capsys):
    """A valid torch file that is not this loop's checkpoint (a bare tensor) is ignored, not a crash."""
    ckpt = tmp_path / "ckpt.pt"
    torch.save(torch.zeros(3), ckpt)
    assert checkpoints.resume(ckpt, "digest", 3, None, None, None, None, "cpu", "t") == []
    assert "starting fresh" in capsys.readouterr().err


# ----------------------------------------------------------------------------- (c) npz arrays
def test_an_npz_with_an_object_array_is_refused_without_unpickling(tmp_path, marker):
    path = tmp_path / "train.npz"
    np.savez(path, x=np.zeros((2, 28, 28), np.uint8), y=np.array([Planted(marker), 1], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(path)
    assert not marker.exists()
    with np.load(path, allow_pickle=True) as data:  # control: the payload is live
        data["y"]
    assert marker.exists()


def test_a_pickle_named_npz_is_refused_without_unpickling(tmp_path, marker):
    path = tmp_path / "train.npz"
    path.write_bytes(pickle.dumps({"x": Planted(marker)}))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(path)
    assert not marker.exists()


def test_plain_arrays_still_round_trip(tmp_path):
    save_npz(tmp_path / "a.npz", x=np.arange(6, dtype=np.uint8).reshape(2, 3), mu=np.ones(3))
    loaded = load_npz(tmp_path / "a.npz")
    assert loaded["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and loaded["mu"].tolist() == [1.0, 1.0, 1.0]


# ----------------------------------------------------------------------------- (d) static scan
UNPICKLERS = {f"{m}.{f}" for m in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal")
              for f in ("load", "loads", "Unpickler")} | {"shelve.open", "pandas.read_pickle"}
UNSAFE_YAML = {f"yaml.{f}" for f in ("load", "load_all", "full_load", "full_load_all", "unsafe_load",
                                     "unsafe_load_all")}
TORCH_LOAD = {"torch.load", "torch.serialization.load"}
NUMPY_LOAD = {"numpy.load"}


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, for every import in the file (``np`` -> ``numpy``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.partition(".")[0]] = a.name if a.asname else a.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(func: ast.expr, imports: dict[str, str]) -> str | None:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    return ".".join([imports.get(func.id, func.id), *reversed(parts)])


def _keyword_is(call: ast.Call, name: str, value) -> bool:
    """``name=value`` is passed literally, and no ``**kwargs`` could override it."""
    if any(k.arg is None for k in call.keywords):
        return False
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def scan_loads(*roots: Path) -> tuple[list[str], dict[str, int]]:
    """Unsafe loading calls in the .py files under ``roots``, as 'file:line: why'; and how many
    calls of each kind were seen (so a scan that matches nothing is noticed)."""
    problems, seen = [], {"torch.load": 0, "numpy.load": 0, "yaml.safe_load": 0}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            where = path.relative_to(root.parent)
            try:
                tree = ast.parse(path.read_text(), filename=str(path))
            except SyntaxError as exc:
                problems.append(f"{where}: cannot be parsed, so cannot be checked ({exc.msg})")
                continue
            imports = _imports(tree)
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                name = _dotted(call.func, imports)
                line = f"{where}:{call.lineno}"
                if name in TORCH_LOAD:
                    seen["torch.load"] += 1
                    if not _keyword_is(call, "weights_only", True):
                        problems.append(f"{line}: {name} without a literal weights_only=True")
                    if any(k.arg == "pickle_module" for k in call.keywords):
                        problems.append(f"{line}: {name} with a pickle_module")
                elif name in NUMPY_LOAD:
                    seen["numpy.load"] += 1
                    if not _keyword_is(call, "allow_pickle", False):
                        problems.append(f"{line}: {name} without a literal allow_pickle=False")
                elif name in UNSAFE_YAML:
                    problems.append(f"{line}: {name} (use yaml.safe_load)")
                elif name in UNPICKLERS:
                    problems.append(f"{line}: {name} unpickles")
                elif name == "yaml.safe_load":
                    seen["yaml.safe_load"] += 1
    return problems, seen


SCANNED = ("src", "stages")


def test_source_tree_loads_only_safely():
    problems, seen = scan_loads(*(ROOT / d for d in SCANNED))
    assert problems == []
    # the scan does see the project's loaders: 3 torch.load (checkpoint, generator, scorer),
    # load_npz's np.load and params' yaml.safe_load
    assert seen["torch.load"] >= 3 and seen["numpy.load"] >= 1 and seen["yaml.safe_load"] >= 1


BAD = {
    "torch.load default": "import torch\nstate = torch.load('x.pt')\n",
    "torch.load weights_only=False": "import torch\nstate = torch.load('x.pt', weights_only=False)\n",
    "torch.load non-literal": "import torch\nW = True\nstate = torch.load('x.pt', weights_only=W)\n",
    "torch.load **kwargs": "import torch\nkw = {}\nstate = torch.load('x.pt', weights_only=True, **kw)\n",
    "torch.load aliased": "from torch import load as tl\nstate = tl('x.pt')\n",
    "torch.serialization.load": "import torch.serialization\ns = torch.serialization.load('x')\n",
    "torch.load pickle_module": "import torch, dill\ns = torch.load('x', weights_only=True, pickle_module=dill)\n",
    "yaml.load": "import yaml\np = yaml.load(open('p.yaml'), Loader=yaml.Loader)\n",
    "yaml.unsafe_load": "import yaml\np = yaml.unsafe_load('a: 1')\n",
    "yaml.full_load": "from yaml import full_load\np = full_load('a: 1')\n",
    "pickle.load": "import pickle\nwith open('f', 'rb') as fh:\n    obj = pickle.load(fh)\n",
    "pickle.loads aliased": "import pickle as pk\nobj = pk.loads(b'')\n",
    "from pickle import loads": "from pickle import loads\nobj = loads(b'')\n",
    "np.load default": "import numpy as np\na = np.load('a.npz')\n",
    "np.load allow_pickle=True": "import numpy as np\na = np.load('a.npz', allow_pickle=True)\n",
    "numpy.load multi-line": "import numpy\na = numpy.load(\n    'a.npz',\n    mmap_mode='r',\n)\n",
    "unparsable": "def broken(:\n",
}
GOOD = (
    "import torch, yaml\nimport numpy as np\nimport pickle\n"
    "s = torch.load(\n    'x.pt',\n    map_location='cpu',\n    weights_only=True,\n)\n"
    "a = np.load('a.npz', allow_pickle=False)\n"
    "p = yaml.safe_load('a: 1')\n"
    "err = pickle.UnpicklingError\n"
    "b = pickle.dumps(1)\n"
    "doc = 'torch.load(x) and yaml.load(y) in a string are not calls'\n"
)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """A copy of src/ and stages/ (as they are now) to plant files into."""
    root = tmp_path_factory.mktemp("tree")
    for d in SCANNED:
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("case", sorted(BAD))
def test_scan_fails_on_a_planted_unsafe_call(tree_copy, case):
    planted = tree_copy / "stages" / "planted_stage.py"
    planted.write_text(BAD[case])
    try:
        problems, _ = scan_loads(*(tree_copy / d for d in SCANNED))
    finally:
        planted.unlink()
    assert len(problems) == 1 and problems[0].startswith("stages/planted_stage.py:"), problems


def test_scan_accepts_safe_calls_however_they_are_laid_out(tree_copy):
    planted = tree_copy / "src" / "mnistgan" / "planted_module.py"
    planted.write_text(GOOD)
    try:
        problems, seen = scan_loads(*(tree_copy / d for d in SCANNED))
    finally:
        planted.unlink()
    assert problems == []
    base = scan_loads(*(ROOT / d for d in SCANNED))[1]
    assert seen == {k: v + 1 for k, v in base.items()}  # the planted calls were seen and passed


def test_scan_fails_when_a_library_load_loses_weights_only(tmp_path):
    """The real checkpoints.py with weights_only=True removed from its load is caught."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    module = tmp_path / "src" / "mnistgan" / "gan" / "checkpoints.py"
    text = module.read_text()
    assert text.count(", weights_only=True)") == 1
    module.write_text(text.replace(", weights_only=True)", ")", 1))
    problems, _ = scan_loads(tmp_path / "src")
    assert len(problems) == 1 and problems[0].startswith("src/mnistgan/gan/checkpoints.py:") and "weights_only" in problems[0]
