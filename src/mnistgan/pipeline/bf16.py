"""Whether the GAN stages' bfloat16 autocast will be native here, for check_params' warning.

On an x86 CPU without AVX512-BF16 or AMX, PyTorch emulates bfloat16 and the GAN loop runs many
times slower than in float32 (docs/performance.md); a user sees that only as seconds per step,
minutes into the run. Read from ``/proc/cpuinfo`` because torch has no query for it
(``torch.backends.cpu.get_cpu_capability()`` names the vector width, e.g. ``AVX512``, not bf16).
A module of its own so that only check_params depends on it: every stage imports
mnistgan.pipeline.device.
"""

from __future__ import annotations

import re
from pathlib import Path

from mnistgan.errors import PipelineError
from mnistgan.pipeline import device


def native_on_cpu(cpuinfo: str | None = None) -> bool | None:
    """Whether this x86 CPU has bfloat16 instructions (AVX512-BF16 or AMX), read from the flags
    of ``/proc/cpuinfo`` (or ``cpuinfo``); None where that cannot tell (no such file, not x86)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, flags=re.MULTILINE)
    if flags is None:
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.group(1).split()))


def warning(params: dict, cpuinfo: str | None = None) -> str | None:
    """One line for check_params when ``gan.bf16`` or ``cogan.bf16`` is on but the GAN stages
    will train on a CPU without native bfloat16, where PyTorch emulates it and the loop runs
    many times slower than in float32 (docs/performance.md); None otherwise."""
    on = [key for key in ("gan", "cogan") if params[key]["bf16"]]
    if not on or native_on_cpu(cpuinfo) is not False:
        return None
    try:
        if device.select(params["device"]).type != "cpu":
            return None
    except PipelineError:
        return None  # an unavailable device is the GAN stages' error to report
    keys = " and ".join(f"{key}.bf16" for key in on)
    return (f"warning: {keys} on, but this CPU has no native bfloat16 (no avx512_bf16 or amx_bf16 in "
            f"/proc/cpuinfo): the GAN stages would run many times slower than in float32; train in float32 with "
            f"`dvc exp run -S gan.bf16=false -S cogan.bf16=false` (docs/performance.md)")
