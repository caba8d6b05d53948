"""What every stage script shares: --help, params loading, and one-line errors.

A stage script defines ``main(args, params)`` and ends with ``run_stage(main, __doc__, ...)``.
Params are validated (the whole file, one place) before ``main`` runs. A PipelineError, a
SIGTERM or Ctrl-C ends the process with one line on stderr and a non-zero exit status; the
stage's outputs are written atomically by the library, so nothing half-written is left.
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import time
from typing import Any, Callable

from mnistgan.errors import PipelineError
from mnistgan.pipeline import params as params_mod
from mnistgan.pipeline.memory import keep_freed_memory


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
    parser.add_argument("--timing", metavar="JSON", default=None,
                        help="write this run's wall time and peak memory here (REPORT.md reads them)")
    parser.add_argument("--done", metavar="PATH", default=None,
                        help="write this constant marker when the stage succeeds: what `evaluate` depends on "
                             "to run after it, without depending on its changing metrics (dvc.yaml)")
    if configure:
        configure(parser)
    args = parser.parse_args(argv)
    keep_freed_memory()
    signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.perf_counter()
    try:
        params = params_mod.load(args.params)
        set_cpu_threads(params)
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
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    if args.done:
        from mnistgan.files import atomic_path

        with atomic_path(args.done) as tmp:
            tmp.write_text(f"{name}\n")
    if args.timing:
        from mnistgan.files import save_json

        save_json(args.timing, {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb, 1),
                                "finished": time.strftime("%Y-%m-%d", time.gmtime())})
    print(f"{name}: done in {wall:.1f}s (peak memory {peak_mb:.0f} MB)", file=sys.stderr)


def set_cpu_threads(params: dict[str, Any]) -> None:
    """``torch.set_num_threads(cpu_threads)`` in a stage that uses torch (its script imported it).

    CPU results depend on the thread count, so it comes from params.yaml, where DVC sees it,
    not from the environment (OMP_NUM_THREADS is overridden). A stage without torch neither
    reads nor declares the param. 0 keeps torch's default (all cores).
    """
    torch = sys.modules.get("torch")
    if torch is not None and params["cpu_threads"]:
        torch.set_num_threads(params["cpu_threads"])
