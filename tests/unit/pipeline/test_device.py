"""mnistgan.pipeline.device.select: auto = cuda, then mps, then cpu; an explicit name is honoured;
$MNISTGAN_DEVICE overrides the params preference; an unusable request is one PipelineError line.

Availability is monkeypatched, so every branch runs on any machine (no GPU needed: select
only builds a torch.device, it never touches the accelerator).
"""

from __future__ import annotations

import pytest
import torch

from mnistgan.errors import PipelineError
from mnistgan.pipeline import device, seeding


@pytest.mark.parametrize("cuda,mps,expected", [
    (True, True, "cuda"),    # cuda wins over mps
    (True, False, "cuda"),
    (False, True, "mps"),
    (False, False, "cpu"),
])
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert device.select("auto") == torch.device(expected)
    assert device.select() == torch.device(expected)  # "auto" is the default


def test_auto_without_an_mps_backend_falls_back_to_cpu(machine, monkeypatch):
    machine(cuda=False, mps=False)
    monkeypatch.delattr(torch.backends, "mps")  # older or non-Apple builds may lack the module
    assert device.select("auto") == torch.device("cpu")
    with pytest.raises(PipelineError, match="'mps' requested but it is not available"):
        device.select("mps")


@pytest.mark.parametrize("name", ["cpu", "cuda", "mps"])
def test_an_explicit_available_device_is_honoured_over_auto_order(machine, name):
    machine(cuda=True, mps=True)
    assert device.select(name) == torch.device(name)


def test_explicit_cpu_is_honoured_even_when_cuda_is_available(machine):
    machine(cuda=True, mps=False)
    assert device.select("cpu") == torch.device("cpu")


@pytest.mark.parametrize("env,preference,cuda,expected", [
    ("cpu", "cuda", True, "cpu"),    # env beats an explicit params preference
    ("cpu", "auto", True, "cpu"),    # ... and beats auto's cuda
    ("cuda", "cpu", True, "cuda"),
    ("mps", "auto", True, "mps"),
    (" cpu\n", "cuda", True, "cpu"),  # surrounding whitespace (e.g. from a shell file) is ignored
    ("", "cpu", True, "cpu"),        # empty or blank: the params preference counts
    ("   ", "cpu", True, "cpu"),
    ("auto", "cpu", False, "mps"),   # env "auto" re-enables the auto order
])
def test_env_overrides_the_params_preference(machine, monkeypatch, env, preference, cuda, expected):
    machine(cuda=cuda, mps=True)
    monkeypatch.setenv("MNISTGAN_DEVICE", env)
    assert device.select(preference) == torch.device(expected)


def one_line_error(preference: str) -> str:
    with pytest.raises(PipelineError) as exc:
        device.select(preference)
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_cuda_requested_but_unavailable_is_one_line(machine):
    machine(cuda=False, mps=True)
    assert "device 'cuda' requested but torch sees no CUDA device" == one_line_error("cuda")


def test_mps_requested_but_unavailable_is_one_line(machine):
    machine(cuda=True, mps=False)
    assert "device 'mps' requested but it is not available" == one_line_error("mps")


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda:0", "tpu", "cpu,cuda"])
def test_unknown_device_name_is_one_line_listing_the_choices(machine, name):
    machine(cuda=True, mps=True)
    message = one_line_error(name)
    assert repr(name) in message and "auto, cpu, cuda or mps" in message


def test_env_requesting_an_unavailable_device_fails_even_if_params_say_cpu(machine, monkeypatch):
    machine(cuda=False, mps=False)
    monkeypatch.setenv("MNISTGAN_DEVICE", "cuda")
    assert "'cuda' requested" in one_line_error("cpu")
    monkeypatch.setenv("MNISTGAN_DEVICE", "gpu")
    assert "unknown device 'gpu'" in one_line_error("cpu")


def test_params_device_choices_are_exactly_what_select_accepts(machine):
    from mnistgan.pipeline.params import DEVICES

    machine(cuda=True, mps=True)
    for name in DEVICES:
        device.select(name)  # none raises when everything is available


def test_describe_cpu_is_one_readable_line():
    text = device.describe(torch.device("cpu"))
    assert text.startswith("cpu (") and text.endswith(")") and "\n" not in text
    assert "cores" in text and f"{torch.get_num_threads()} threads" in text


def test_describe_other_devices_names_their_type(monkeypatch):
    assert device.describe(torch.device("mps")) == "mps"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU 9000")
    assert device.describe(torch.device("cuda")) == "cuda (Fake GPU 9000)"


def test_seed_everything_seeds_init_and_returns_an_independent_cpu_generator():
    gen = seeding.seed_everything(123)
    assert gen.device == torch.device("cpu") and gen.initial_seed() == 123
    a_global, a_gen = torch.rand(3), torch.rand(3, generator=gen)
    gen = seeding.seed_everything(123)
    torch.rand(5, generator=gen)  # drawing from the generator does not move the global stream
    assert torch.equal(torch.rand(3), a_global)
    assert torch.equal(torch.rand(3, generator=seeding.seed_everything(123)), a_gen)
