"""What every stage script shares: --help, params loading, and one-line errors.

A stage script defines ``main(args, params)`` and ends with ``run_stage(main, __doc__, ...)``.
Params are validated (the whole file, one place) before ``main`` runs. A PipelineError, a
SIGTERM or Ctrl-C ends the process with one line on stderr and a non-zero exit status; the
stage's outputs are written atomically by the library, so nothing half-written is left.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
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
    parser.add_argument("--timing", metavar="JSON", default=None,
                        help="write this run's wall time and peak memory here (REPORT.md reads them)")
    if configure:
        configure(parser)
    args = parser.parse_args(argv)
    keep_freed_memory()
    signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.perf_counter()
    log = os.environ.get("MNISTGAN_PARAMS_LOG")
    try:
        params = params_mod.load(args.params)
        if log:
            params = params_mod.Tracked(params)
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
    if args.timing:
        from .files import save_json

        save_json(args.timing, {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb, 1),
                                "finished": time.strftime("%Y-%m-%d", time.gmtime())})
    if log:
        _log_reads(log, params)
    print(f"{name}: done in {wall:.1f}s (peak memory {peak_mb:.0f} MB)", file=sys.stderr)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (64-bit): blocks up to this come from the heap


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep the memory a stage frees, for its next tensors; True if it applied.

    By default glibc serves each block above a (moving) threshold with a fresh mmap and
    gives the heap's free top back to the OS once 128 KB of it is free, so the large
    activations of every forward pass (25 MB for the first feature map of a LeNet batch of
    250) come back as new pages that the kernel zeroes one fault at a time: 12,000 minor page
    faults per scoring batch, 56 million in one `dvc repro` of the quick profile. With blocks
    up to 32 MB from the heap and no trimming, measured on the 2-core CPU (2026-11-24): the
    LeNet scored 20,000 digits in 2.0 s against 3.2-3.9 s, 400 LeNet training steps took
    5.9-6.4 s against 6.8-7.5 s, faults fell to about 150 per step, and every number the
    pipeline writes was the same bit for bit (torch aligns each tensor to 64 bytes either
    way). The process keeps its peak heap until it exits, which its peak RSS already counts.

    By hand because the alternatives need more than Python: jemalloc or tcmalloc are system
    libraries loaded with LD_PRELOAD, and GLIBC_TUNABLES must be set before the process
    starts. Elsewhere than glibc (macOS, musl) this does nothing and returns False.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: glibc's, on Linux
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def set_cpu_threads(params: dict[str, Any]) -> None:
    """``torch.set_num_threads(cpu_threads)`` in a stage that uses torch (its script imported it).

    CPU results depend on the thread count, so it comes from params.yaml, where DVC sees it,
    not from the environment (OMP_NUM_THREADS is overridden). A stage without torch neither
    reads nor declares the param. 0 keeps torch's default (all cores).
    """
    torch = sys.modules.get("torch")
    if torch is not None and params["cpu_threads"]:
        torch.set_num_threads(params["cpu_threads"])


def _log_reads(path: str, params: dict[str, Any]) -> None:
    """Append what this stage read to ``path`` (JSON lines): its argv, the params keys it read
    and the project files it imported. The dependency tests compare them with dvc.yaml."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = {os.path.relpath(os.path.abspath(m.__file__), root) for m in list(sys.modules.values())
             if getattr(m, "__file__", None) and os.path.isabs(m.__file__)}
    files = sorted(f for f in paths if f.startswith(("src" + os.sep, "stages" + os.sep)))
    record = {"argv": sys.argv, "params": sorted(getattr(params, "read", ())), "files": files}
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
