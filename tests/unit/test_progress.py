"""Progress within an epoch: plain lines in a log, a bar on a terminal, nothing for short epochs."""

import io

import numpy as np
import pytest
import torch

from mnistgan import classifier, progress
from mnistgan.gan import image, loop
from mnistgan.models import dcgan

CONFIG = loop.TrainConfig(epochs=2, batch_size=4, lr=1e-3, betas=(0.5, 0.999), seed=0)


def tiny_gan():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return image.ImageGAN(dcgan.Generator(width=1), dcgan.Discriminator(width=1, depth=1)), (x,)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_whole_lines_with_steps_rate_and_time_left(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    loop.train(*tiny_gan(), CONFIG, name="train_dcgan@F1")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert "train_dcgan@F1: epoch 1/2: step 4/4 (100%)" in lines[4]
    assert [line.split(": step")[0] for line in lines] == ["train_dcgan@F1: epoch 1/2"] * 5 + ["train_dcgan@F1: epoch 2/2"] * 5
    assert all("elapsed" in line and "left" in line and ("step/s" in line or "s/step" in line) for line in lines)
    assert len(set(lines)) == len(lines)  # closing does not repeat the last line


def test_epochs_shorter_than_the_log_interval_write_nothing(capsys):
    assert progress.LOG_EVERY_S >= 10
    loop.train(*tiny_gan(), CONFIG, name="t")
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_bar_that_is_removed_at_the_end_of_the_epoch(monkeypatch):
    monkeypatch.setattr(progress, "TERMINAL_EVERY_S", 0.0)
    out = Terminal()
    with progress.steps(3, "t: epoch 1/1", file=out) as bar:
        for _ in range(3):
            bar.update()
    text = out.getvalue()
    assert "\r" in text and "t: epoch 1/1" in text and "3/3" in text
    assert "|" in text and text.endswith("\r")  # leave=False: the bar's line is blanked, no newline left behind
    assert "\n" not in text


def test_progress_does_not_change_the_numbers(monkeypatch, capsys):
    quiet = loop.train(*tiny_gan(), CONFIG, name="t").history
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    chatty = loop.train(*tiny_gan(), CONFIG, name="t").history
    assert capsys.readouterr().err
    assert quiet == chatty


def test_the_classifier_loop_reports_its_steps_too(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), rng.integers(0, 10, 10)
    classifier.train_classifier(x, y, x, y, epochs=1, batch_size=4, lr=1e-3, name="train_lenet")
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("train_lenet: epoch 1/1: step 3/3 (100%)")


def test_a_real_pseudo_terminal_gets_the_bar_unless_it_has_no_width():
    pty = pytest.importorskip("pty")
    import fcntl
    import os
    import struct
    import termios

    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as term:
            assert progress._is_terminal(term) is False  # a new pty is 0 x 0: log lines, tqdm draws nothing at 0
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            assert progress._is_terminal(term) is True
            with progress.steps(2, "t: epoch 1/1", file=term) as bar:
                bar.update(2)
        assert b"t: epoch 1/1" in os.read(master, 4096)
    finally:
        os.close(master)
        os.close(slave)
