"""The per-epoch progress display: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import time

from rich.console import Console

from dlkit.training.progress import Progress, format_logs

LOGS = {"loss": 0.12345, "accuracy": 0.9, "val_loss": 0.2, "lr": 0.001, "samples_per_s": 12345.6, "time": 1.5}


def test_format_logs():
    assert format_logs(LOGS) == "loss 0.1235  accuracy 0.9  val_loss 0.2  lr 0.001  12,346 samples/s"


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(Console(file=out, force_terminal=False), epochs=3, steps=10)
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(9, {"loss": 0.5})
    progress.on_epoch_end(0, LOGS)
    assert out.getvalue() == "epoch 1/3  " + format_logs(LOGS) + "  1.50s\n"


def _wait_for_bar(progress: Progress) -> None:
    deadline = time.monotonic() + 5
    while progress._bar is None and time.monotonic() < deadline:
        time.sleep(0.01)


def test_live_bar_on_a_terminal_ends_with_the_epoch_line():
    out = io.StringIO()
    progress = Progress(Console(file=out, force_terminal=True, width=120), epochs=2, steps=10, delay=0.05)
    progress.on_epoch_begin(1)
    progress.on_train_batch_end(11, {"loss": 0.5})  # a last group past the end is clamped
    _wait_for_bar(progress)
    assert progress._bar.tasks[0].completed == 10  # the bar starts where the epoch already is
    assert progress._bar.tasks[0].elapsed >= 0.05  # and counts its time from the epoch's start
    progress.on_train_batch_end(3, {"loss": 0.25})
    assert progress._bar.tasks[0].completed == 4 and progress._bar.tasks[0].fields["info"] == "loss 0.25"
    progress.on_epoch_end(1, LOGS)
    assert progress._bar is None
    assert "━" in out.getvalue() and "epoch 2/2  loss 0.1235" in out.getvalue()


def test_an_epoch_shorter_than_the_delay_draws_no_bar_only_its_line():
    out = io.StringIO()
    progress = Progress(Console(file=out, force_terminal=True, width=120), epochs=1, steps=10, delay=0.2)
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(9, {"loss": 0.5})
    progress.on_epoch_end(0, LOGS)
    time.sleep(0.3)  # past the delay: the cancelled timer must not start a bar after the epoch ended
    assert progress._bar is None
    assert "━" not in out.getvalue() and "epoch 1/1  loss 0.1235" in out.getvalue()


class _ClosedTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(5, "Input/output error")


def test_a_terminal_the_bar_cannot_draw_on_does_not_disturb_training(monkeypatch):
    import threading

    hooked = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)  # what an error in the timer thread would reach
    progress = Progress(Console(file=_ClosedTerminal(), force_terminal=True), epochs=1, steps=10, delay=0.01)
    progress.on_epoch_begin(0)
    time.sleep(0.2)
    progress.on_train_batch_end(9, {"loss": 0.5})
    progress.close()
    assert hooked == [] and progress._bar is None and progress._timer is None
