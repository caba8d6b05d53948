"""mnistgan.pipeline.bf16: check_params warns, in one line, when bfloat16 autocast is on but the
GAN stages will train on a CPU without native bfloat16; it stays silent where bf16 is off, native,
unknown (not x86) or not on the CPU. The CPU flags are given as text and CUDA is monkeypatched,
so every branch runs on any machine."""

from __future__ import annotations

import pytest

from mnistgan.pipeline import bf16

AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16\n"


def bf16_params(gan: bool = True, cogan: bool = True, preference: str = "auto") -> dict:
    return {"gan": {"bf16": gan}, "cogan": {"bf16": cogan}, "device": preference}


@pytest.mark.parametrize("cpuinfo,expected", [(AVX2, False), (BF16, True), (ARM, None), ("", None)])
def test_native_bf16_is_read_from_the_cpu_flags_and_unknown_off_x86(cpuinfo, expected):
    assert bf16.native_on_cpu(cpuinfo) is expected


def test_bf16_on_a_cpu_without_it_gets_one_line_naming_the_keys_and_the_fix(machine):
    machine(cuda=False, mps=False)
    line = bf16.warning(bf16_params(cogan=False), AVX2)
    assert line.startswith("warning: gan.bf16 on,") and "\n" not in line
    assert "-S gan.bf16=false -S cogan.bf16=false" in line


@pytest.mark.parametrize("params,cpuinfo,cuda", [
    (bf16_params(gan=False, cogan=False), AVX2, False),  # float32: nothing to warn of
    (bf16_params(), BF16, False),                         # the CPU has bfloat16
    (bf16_params(), ARM, False),                           # cannot tell: say nothing
    (bf16_params(), AVX2, True),                          # the GAN stages train on the GPU
    (bf16_params(preference="cuda"), AVX2, False),        # no GPU: the GAN stages' own error, not this
])
def test_no_bf16_warning_where_bf16_is_off_native_unknown_or_not_on_the_cpu(machine, params, cpuinfo, cuda):
    machine(cuda=cuda, mps=False)
    assert bf16.warning(params, cpuinfo) is None
