"""Open a page of `dvc plots show` in headless Chromium with the network off; say what drew.

The page is copied beside itself with a probe script first in <head> that records console
errors and warnings, uncaught exceptions, rejected promises and resources that failed to load
(a <script src> from a CDN) into an attribute of <html>; Chromium runs it with every host
unresolvable and a dead proxy, lets its virtual clock run until the page is idle (vega-embed
draws asynchronously), and dumps the DOM. :func:`render` returns, per plot <div> of DVC's page,
the charts Vega drew in it (an <svg> or <canvas> of class "marks"), and what the probe recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
NO_CHROMIUM = ("Chromium is not installed (Debian: apt-get install chromium); "
               "the offline rendering of `dvc plots show` pages is not checked")
OFFLINE = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio", "--hide-scrollbars"]

PROBE = """<script>
(function () {
  var seen = {errors: [], warnings: []};
  function keep(kind, parts) {
    seen[kind].push(Array.prototype.map.call(parts, String).join(" "));
    document.documentElement.setAttribute("data-probe", JSON.stringify(seen));
  }
  var error = console.error, warn = console.warn;
  console.error = function () { keep("errors", arguments); return error.apply(console, arguments); };
  console.warn = function () { keep("warnings", arguments); return warn.apply(console, arguments); };
  window.addEventListener("error", function (e) {
    var t = e.target;
    keep("errors", [e.message || ("could not load " + ((t && (t.src || t.href)) || "a resource"))]);
  }, true);
  window.addEventListener("unhandledrejection", function (e) { keep("errors", ["unhandled rejection: " + e.reason]); });
  document.documentElement.setAttribute("data-probe", JSON.stringify(seen));
})();
</script>
"""


@dataclass
class Page:
    plots: dict[str, list[str]] = field(default_factory=dict)  # vega plot div id -> svg/canvas drawn in it
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    probed: bool = False  # the probe ran (JavaScript works at all)

    @property
    def blank(self) -> list[str]:
        return [plot for plot, drawn in self.plots.items() if not drawn]


class _Dom(HTMLParser):
    """Which <svg>/<canvas> lie inside which vega-embed <div> (by id), and the probe's record."""

    def __init__(self):
        super().__init__()
        self.page, self.divs = Page(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html" and a.get("data-probe"):
            record = json.loads(a["data-probe"])
            self.page.errors, self.page.warnings, self.page.probed = record["errors"], record["warnings"], True
        if tag == "div":
            self.divs.append(a.get("id") if a.get("id") in self.page.plots else None)
        elif tag in ("svg", "canvas") and "marks" in (a.get("class") or "").split():  # Vega's chart, not an icon
            plot = next((d for d in reversed(self.divs) if d), None)
            if plot:
                self.page.plots[plot].append(tag)

    def handle_endtag(self, tag):
        if tag == "div" and self.divs:
            self.divs.pop()


def vega_divs(html: str) -> list[str]:
    """The ids of the divs DVC fills with vegaEmbed('#<id>', spec)."""
    import re

    return re.findall(r"vegaEmbed\('#([^']+)'", html)


def render(index: Path, timeout: int = 180) -> Page:
    """Open ``index`` (a page written by `dvc plots show`) offline; what drew, what went wrong."""
    assert CHROMIUM, NO_CHROMIUM
    html = index.read_text(encoding="utf-8")
    probe = index.with_name(".probe-" + index.name)  # beside it: the page's relative static/ images still load
    probe.write_text(html.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    try:
        r = subprocess.run([CHROMIUM, *HEADLESS, *OFFLINE, "--virtual-time-budget=30000", "--dump-dom",
                            probe.resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
    finally:
        probe.unlink()
    assert r.returncode == 0 and "</html>" in r.stdout, f"chromium failed ({r.returncode}): {r.stderr[-2000:]}"
    dom = _Dom()
    for plot in vega_divs(html):
        dom.page.plots[plot] = []
    dom.feed(r.stdout)
    return dom.page


def screenshot(index: Path, png: Path, width: int = 1400, height: int = 2000, timeout: int = 180) -> None:
    """A PNG of the top ``height`` pixels of ``index``, rendered offline."""
    assert CHROMIUM, NO_CHROMIUM
    r = subprocess.run([CHROMIUM, *HEADLESS, *OFFLINE, "--virtual-time-budget=30000", f"--window-size={width},{height}",
                        f"--screenshot={png.resolve()}", index.resolve().as_uri()],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and png.is_file(), f"chromium failed ({r.returncode}): {r.stderr[-2000:]}"


if __name__ == "__main__":  # python tests/browser.py PAGE PNG [WIDTH HEIGHT]: the README's screenshot
    import sys

    page, png, *size = sys.argv[1:]
    screenshot(Path(page), Path(png), *map(int, size))
    print(f"{png}: {page} rendered offline")
