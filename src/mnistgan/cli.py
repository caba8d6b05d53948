"""What every stage script shares: --help, params loading, and one-line errors.

A stage script defines ``main(args, params)`` and ends with ``run_stage(main, __doc__, ...)``.
Params are validated (the whole file, one place) before ``main`` runs. A PipelineError, a
SIGTERM or Ctrl-C ends the process with one line on stderr and a non-zero exit status; the
stage's outputs are written atomically by the library, so nothing half-written is left.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any, Callable

from . import params as params_mod
from .errors import PipelineError


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so ``finally`` blocks and atomic writes clean up."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised by the interruption tests
    raise Terminated()


def run_stage(
    main: Callable[[argparse.Namespace, dict[str, Any]], None],
    doc: str | None,
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> None:
    name = sys.argv[0].rsplit("/", 1)[-1].removesuffix(".py")
    parser = argparse.ArgumentParser(
        prog=name,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    if configure:
        configure(parser)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.perf_counter()
    try:
        params = params_mod.load(args.params)
        main(args, params)
    except PipelineError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no output was written", file=sys.stderr)
        sys.exit(130)
    except Terminated:
        print(f"{name}: terminated; completed checkpoints are kept, partial outputs removed", file=sys.stderr)
        sys.exit(143)
    print(f"{name}: done in {time.perf_counter() - start:.1f}s", file=sys.stderr)
