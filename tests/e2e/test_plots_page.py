"""`dvc plots show` / `dvc plots diff` pages render with no network, in headless Chromium.

A small Git+DVC repository with the project's .dvc/config (plots.html_template) and plot
templates, a few plot CSVs, and the template the plots_template stage writes. Chromium runs
with the network off (tests/browser.py); without Chromium these tests are skipped with that
reason. The end-to-end module checks the same on the page of the real (tiny) pipeline.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnistgan.pipeline import plots_template

import browser
from conftest import ROOT

PLOTS_YAML = """\
plots:
  - curves.csv:
      title: "loss per epoch"
      template: linear
      x: epoch
      y: loss
  - runs.csv:
      title: "d_acc per run"
      template: lines_by_run
      x: epoch
      y: d_acc
  - confusion.csv:
      title: "confusion"
      template: confusion
      x: actual
      y: predicted
"""


def write_plots(repo: Path, shift: float) -> None:
    (repo / "curves.csv").write_text("epoch,loss\n" + "".join(f"{e},{1 / (e + shift):.4f}\n" for e in range(1, 6)))
    (repo / "runs.csv").write_text("run,epoch,d_acc\n" + "".join(f"{r},{e},{0.5 + e * shift / 20:.3f}\n"
                                                                 for r in ("F1-D1-B32", "F2-D1-B32") for e in (1, 2, 3)))
    (repo / "confusion.csv").write_text("actual,predicted\n" + "".join(f"{i % 3},{(i + (i % 4 == 0)) % 3}\n"
                                                                       for i in range(30)))


def sh(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    """A committed repository with three plots, then changed plots in the workspace."""
    repo = tmp_path_factory.mktemp("plots") / "repo"
    repo.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    sh(["git", "init", "-q", "-b", "main"], repo, env)
    sh(["dvc", "init", "-q"], repo, env)
    shutil.copy2(ROOT / ".dvc/config", repo / ".dvc/config")  # the project's: plots.html_template
    shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots")  # its custom plot templates
    plots_template.write(repo / "build/plots_template.html")  # as the plots_template stage does
    (repo / "build/.gitignore").write_text("/plots_template.html\n")
    (repo / "dvc.yaml").write_text(PLOTS_YAML)
    write_plots(repo, shift=1.0)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "plots"], repo, env)
    write_plots(repo, shift=2.0)
    return repo, env


def test_the_template_has_vega_inline_and_no_cdn():
    text = plots_template.page()
    assert "{plot_divs}" in text and "{scripts}" not in text  # DVC's CDN <script> tags go into {scripts}
    assert "<script src" not in text and "cdn.jsdelivr" not in text
    assert "window.vegaEmbed" in text and len(text) > 500_000


def test_the_stage_writes_the_file_that_dvc_config_names(tmp_path):
    config = (ROOT / ".dvc/config").read_text()
    assert "html_template = ../build/plots_template.html" in config
    assert "python stages/plots_template.py --out build/plots_template.html" in (ROOT / "dvc.yaml").read_text()
    out = tmp_path / "build/plots_template.html"
    r = subprocess.run([sys.executable, str(ROOT / "stages/plots_template.py"), "--out", str(out),
                        "--params", str(ROOT / "params.yaml")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8") == plots_template.page()  # the same bytes every time


needs_chromium = pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.NO_CHROMIUM)


@needs_chromium
@pytest.mark.parametrize("command", [["show"], ["diff"]], ids=["show", "diff"])
def test_every_chart_draws_with_the_network_off(repo, tmp_path, command):
    path, env = repo
    sh(["dvc", "plots", *command, "-o", str(tmp_path / "out")], path, env)
    page = browser.render(tmp_path / "out/index.html")
    assert page.probed, "the page's scripts did not run"
    assert len(page.plots) == 3 and not page.blank, page.plots
    assert page.errors == []
    if command == ["diff"]:  # both revisions are in the page
        html = (tmp_path / "out/index.html").read_text()
        assert '"rev": "workspace"' in html and '"rev": "HEAD"' in html


@needs_chromium
def test_without_the_template_the_page_stays_blank_offline(repo, tmp_path):
    """The control: DVC's own page (Vega from a CDN) draws nothing here, so the network is off."""
    path, env = repo
    no_template = tmp_path / "norepo"
    shutil.copytree(path, no_template)
    sh(["dvc", "config", "--unset", "plots.html_template"], no_template, env)
    sh(["dvc", "plots", "show", "-o", str(tmp_path / "out")], no_template, env)
    page = browser.render(tmp_path / "out/index.html")
    assert "cdn.jsdelivr.net" in (tmp_path / "out/index.html").read_text()
    assert len(page.plots) == 3 and page.blank == list(page.plots)
    assert any("could not load https://cdn.jsdelivr.net" in e for e in page.errors), page.errors
