"""The README a newcomer reads: its two commands are the ones that work (CI runs the test line
verbatim), it stays short, its links resolve, and nothing in it or the docs needs files a clone
does not have or narrates the project's history."""

import re

import pytest

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HISTORY = re.compile(r"this round|before this round|previous round|before the speed-ups|this session", re.I)


def fenced_commands(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def readme_commands() -> tuple[str, str]:
    blocks = fenced_commands((ROOT / "README.md").read_text())
    return (next(b for b in blocks if b.endswith("dvc repro")), next(b for b in blocks if b.endswith("python -m pytest")))


def test_ci_runs_the_readme_test_command():
    run_cmd, test_cmd = readme_commands()
    assert "\n" not in test_cmd and "\n" not in run_cmd  # one line each
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_running_installs_what_running_needs_and_testing_adds_the_test_tools():
    run_cmd, test_cmd = readme_commands()
    assert '-e .' in run_cmd and "[test]" not in run_cmd
    assert '-e ".[test]"' in test_cmd
    assert run_cmd.removesuffix("dvc repro") == test_cmd.removesuffix("python -m pytest").replace('-e ".[test]"', "-e .")


def test_the_readme_is_read_in_five_minutes():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move the rest to docs/"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_image_resolves(page):
    text = page.read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    broken = [t for t in targets if not re.match(r"[a-z]+://|#|mailto:", t)
              and not (page.parent / t.split("#")[0]).exists()]
    assert not broken, f"{page.name}: {broken}"


@pytest.mark.parametrize("page", [*DOCS, ROOT / "REPORT.md"], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_nothing_needs_the_workplaces_shared_folder_or_narrates_history(page):
    for line in page.read_text().splitlines():
        assert "../shared" not in line or "MNIST_MIRROR" in line, line
        assert not HISTORY.search(line), line


def test_code_and_params_comments_do_not_point_outside_the_repository():
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("stages/*.py"), ROOT / "params.yaml", *ROOT.glob("profiles/*.yaml"),
             ROOT / "dvc.yaml"]
    offenders = [f"{f.relative_to(ROOT)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
                 if "../shared" in line and "MNIST_MIRROR" not in line]
    assert not offenders, offenders


def test_the_compare_section_shows_three_commands_and_their_output_in_20_lines_without_a_regex():
    text = (ROOT / "README.md").read_text()
    start = text.index("## Change one hyperparameter and compare")
    section = text[start:text.index("\n## ", start + 1)].strip().splitlines()[1:]
    body = [line for line in section if line.strip()]
    assert len(body) <= 20, f"{len(body)} lines"
    for command in ("dvc exp run", "dvc exp show", "dvc metrics diff", "dvc plots diff"):
        assert command in "\n".join(section), command
    assert "--drop" not in text and "--keep" not in text


def test_the_readmes_ledger_counts_are_the_reports():
    """The README's results open with the ledger's tally, typed in prose; it must be the tally
    evaluate wrote into REPORT.md, or a rerun that flips a verdict leaves the README stale."""
    report = (ROOT / "REPORT.md").read_text()
    tally = re.search(r"Holds: (\d+); holds partly: (\d+); does not hold: (\d+); pending[^:]*: (\d+); "
                      r"not testable here: (\d+)\.", report)
    assert tally, "REPORT.md's ledger line changed its wording"
    holds, partly, fails, pending, untested = (int(n) for n in tally.groups())
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = re.search(r"(\d+) hold, (\d+) hold partly, (\d+) do(?:es)? not hold(?:, (\d+) (?:is|are) pending)? and "
                     r"(\d+) (?:is|are) not testable here", readme)
    assert said, "README.md's results section no longer states the ledger's tally"
    assert [int(n or 0) for n in said.groups()] == [holds, partly, fails, pending, untested]
