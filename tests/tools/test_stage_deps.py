"""Stage deps derived from the code: every project file a stage's script imports is a dep.

The params half (every key a stage reads is declared) needs the stages to run and is in
tests/e2e/test_pipeline.py (test_every_stage_declares_what_it_reads).
"""

from __future__ import annotations

import textwrap

from mnistgan_tools import stagedeps
from mnistgan_tools.params_log import Tracked, covers

from conftest import ROOT


def test_dvc_yaml_lists_exactly_the_files_each_stage_imports():
    problems = stagedeps.check(ROOT)
    assert not problems, "\n".join(problems) + "\nfix: python -m mnistgan_tools.stagedeps --write"


def _project(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return tmp_path


def test_imports_are_followed_through_packages_relative_and_function_level_imports(tmp_path):
    root = _project(tmp_path, {
        "stages/run.py": "import checkout\nfrom mnistgan import a\nfrom mnistgan.models import net\n",
        "stages/checkout.py": "import sys\n",
        "src/mnistgan/__init__.py": "",
        "src/mnistgan/a.py": "import numpy\nfrom . import b\n",
        "src/mnistgan/b.py": "def f():\n    from .c import g\n    return g\n",
        "src/mnistgan/c.py": "from .models.net import X\n",
        "src/mnistgan/models/__init__.py": "",
        "src/mnistgan/models/net.py": "from ..d import y\n",
        "src/mnistgan/d.py": "",
        "src/mnistgan/unused.py": "",
    })
    assert stagedeps.imported_files(root, root / "stages/run.py") == {
        "stages/run.py", "stages/checkout.py", "src/mnistgan/__init__.py", "src/mnistgan/a.py",
        "src/mnistgan/b.py", "src/mnistgan/c.py", "src/mnistgan/d.py",
        "src/mnistgan/models/__init__.py", "src/mnistgan/models/net.py"}


def test_check_names_a_missing_and_a_superfluous_dep_and_write_fixes_them(tmp_path):
    root = _project(tmp_path, {
        "stages/run.py": "from mnistgan import a\n",
        "src/mnistgan/__init__.py": "",
        "src/mnistgan/a.py": "from . import b\n",
        "src/mnistgan/b.py": "",
        "src/mnistgan/c.py": "",
        "dvc.yaml": """\
            stages:
              run:
                # a comment that --write keeps
                cmd: python stages/run.py --out out
                deps:
                  - stages/run.py
                  - src/mnistgan/__init__.py
                  - src/mnistgan/a.py
                  - src/mnistgan/c.py
                  - data/in   # a dep's comment, kept too
                  - data/more
                outs:
                  - out
            """,
    })
    assert stagedeps.check(root) == ["run: imports src/mnistgan/b.py, which is not among its deps",
                                     "run: lists src/mnistgan/c.py as a dep but does not import it"]
    stagedeps.write(root)
    assert stagedeps.check(root) == []
    text = (root / "dvc.yaml").read_text()
    assert "# a comment that --write keeps" in text
    assert "  - data/in   # a dep's comment, kept too\n      - data/more\n" in text


def test_tracked_params_note_leaf_reads_and_whole_sections():
    p = Tracked({"seed": 0, "gan": {"lr": 1.0, "betas": [0.5, 0.9]}, "hybrid": {"mixes": {"a": {"default": 0.1}}}})
    assert p["seed"] == 0 and p["gan"]["lr"] == 1.0
    assert p.read == {"seed", "gan.lr"}
    list(p["hybrid"]["mixes"].items())
    assert "hybrid.mixes" in p.read and "gan" not in p.read
    assert covers(["seed", "gan"], "gan.lr") and covers(["hybrid"], "hybrid.mixes")
    assert not covers(["gan.lr"], "gan") and not covers(["gan"], "gan_x.lr") and not covers(["seed"], "*")
