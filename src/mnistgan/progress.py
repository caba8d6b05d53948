"""Progress within an epoch: a bar on a terminal, a plain line now and then in a log.

A paper-profile GAN epoch on a CPU takes minutes, and the stages print one line per epoch, so
without this a run looks hung. The training loops call :func:`steps` once per epoch and
``bar.update()`` once per step. An update only counts (no device sync, no ``.item()``: the
loops keep their statistics on the device) and reads the clock; tqdm formats and writes at
most every ``mininterval`` seconds, so the loop does not get measurably slower.

Two modes, chosen by whether stderr is a terminal:

* **terminal** (``dvc repro`` in a shell): a tqdm bar over the epoch's steps, redrawn at most
  10 times a second, removed when the epoch ends (the stage's own per-epoch line follows).
* **not a terminal** (a DVC queue's log, CI, ``> file``): a tqdm bar would write a carriage
  return every redraw, one unreadable line in a file. Instead tqdm's text, without the bar,
  goes out as a whole line every :data:`LOG_EVERY_S` seconds, and once at the end of the
  epoch. An epoch shorter than that (the quick profile, a GPU) writes nothing at all
  (tqdm's ``delay``), so short runs keep their logs as they were; a long epoch gets a line
  with steps done, rate and time left every half minute. Not ``disable=None`` (tqdm's
  "off when not a TTY"): queued experiments and cluster jobs, which log to files, are
  where a long epoch most needs a sign of life.

``miniters=1`` with a time-based ``mininterval`` (instead of tqdm's dynamic miniters) makes
the timing plain: every update compares the clock, nothing else, and tqdm's monitor thread
(which forces a redraw when dynamic miniters overshoot) never has to step in.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from tqdm import tqdm

LOG_EVERY_S = 30.0  # not a terminal: seconds between lines (and before the first one)
TERMINAL_EVERY_S = 0.1  # a terminal: seconds between redraws of the bar
LINE = "{desc}: step {n_fmt}/{total_fmt} ({percentage:.0f}%), {elapsed} elapsed, {remaining} left, {rate_fmt}"


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines, and does not
    write a step count twice (closing redraws the last count, which an update may just have
    written; only the times differ)."""

    def __init__(self, stream: IO[str]):
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        count = text.rsplit(", ", 3)[0]  # "<desc>: step n/N (p%)", before the times (see LINE)
        if text and count != self.last:
            self.stream.write(text + "\n")
            self.last = count

    def flush(self) -> None:
        self.stream.flush()


def steps(total: int, desc: str, file: IO[str] | None = None) -> tqdm:
    """A progress counter over ``total`` steps, written to ``file`` (default: stderr).

    Call ``update()`` once per step and ``close()`` (or use it as a context manager) at the
    end of the epoch.
    """
    file = sys.stderr if file is None else file
    common = dict(total=total, desc=desc, unit="step", miniters=1, dynamic_ncols=True)
    if _is_terminal(file):
        return tqdm(file=file, mininterval=TERMINAL_EVERY_S, leave=False, **common)
    return tqdm(file=_Lines(file), mininterval=LOG_EVERY_S, delay=LOG_EVERY_S, leave=True, ascii=True,
                bar_format=LINE, **common)


def _is_terminal(file: IO[str]) -> bool:
    """A terminal with a width. A pseudo-terminal of 0 columns (some CI runners, `script`
    without a real terminal) gets the log lines: tqdm draws nothing at width 0."""
    try:
        if not file.isatty():
            return False
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    try:
        return os.get_terminal_size(file.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):  # a terminal whose size is unknown: tqdm's default width
        return True
