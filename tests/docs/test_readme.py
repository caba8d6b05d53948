"""The README's two commands are the ones that work: CI runs the README's test line verbatim."""

import re

from conftest import ROOT  # noqa: E402


def fenced_commands(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    blocks = fenced_commands((ROOT / "README.md").read_text())
    test_cmd = next(b for b in blocks if b.endswith("python -m pytest"))
    run_cmd = next(b for b in blocks if b.endswith("dvc repro"))
    assert "\n" not in test_cmd and "\n" not in run_cmd  # one line each
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert test_cmd in ci_lines
