"""glibc malloc settings that every stage applies first (see :func:`keep_freed_memory`)."""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (64-bit): blocks up to this come from the heap


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep the memory a stage frees, for its next tensors; True if it applied.

    By default glibc serves each block above a (moving) threshold with a fresh mmap and
    gives the heap's free top back to the OS, so the large activations of every forward pass
    (a LeNet batch's first feature map is tens of MB) come back as new pages that the kernel
    zeroes one fault at a time, on every batch. Keeping blocks up to 32 MB in the heap and
    never trimming it removes those faults; every number the pipeline writes stays the same
    bit for bit (torch aligns each tensor to 64 bytes either way). The process keeps its peak
    heap until it exits, which its peak RSS already counts. What it buys is measured in
    docs/performance.md.

    By hand because the alternatives need more than Python: jemalloc or tcmalloc are system
    libraries loaded with LD_PRELOAD, and GLIBC_TUNABLES must be set before the process
    starts. Elsewhere than glibc (macOS, musl) this does nothing and returns False.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: glibc's, on Linux
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
