"""Per-epoch progress: a rich bar (ETA, loss, samples/s) on a terminal, one plain line per epoch otherwise.

The CLI passes its stderr console in; the bar is updated at batch ends, which Keras calls once per
``steps_per_execution`` group, so it adds no per-batch Python work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import keras

log = logging.getLogger("dlkit.training")

_SKIP = {"grad_norm_max", "time"}


def format_logs(logs: dict[str, Any]) -> str:
    """``loss 0.1234  accuracy 0.9500  val_loss ...  1234 samples/s`` from epoch logs."""
    parts = []
    for key, value in logs.items():
        if key in _SKIP:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if key == "samples_per_s":
            parts.append(f"{number:,.0f} samples/s")
        elif key == "lr":
            parts.append(f"lr {number:.3g}")
        else:
            parts.append(f"{key} {number:.4g}")
    return "  ".join(parts)


class Progress(keras.callbacks.Callback):
    """Epoch progress on ``console`` (a rich Console); plain lines when it is not a terminal.

    On a terminal the live bar appears once an epoch has run for ``delay`` seconds, as tqdm's ``delay`` does:
    a shorter epoch would only flash it, and starting and stopping rich's live display costs a few milliseconds
    of CPU per epoch, which is a real share of a 50 ms epoch. Every epoch ends with one plain line either way.

    Args:
        console: Where to draw (stderr).
        epochs: Total epochs.
        steps: Batches per epoch, or None when unknown.
        delay: Seconds into an epoch before its bar appears. Defaults to 0.5.
    """

    def __init__(self, console: Any, epochs: int, steps: int | None, delay: float = 0.5) -> None:
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.steps = steps
        self.delay = delay
        self.live = bool(getattr(console, "is_terminal", False))
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()  # the timer thread starts the bar while fit's thread updates it
        self._pending: int | None = None  # the epoch whose bar the timer will start
        self._timer: threading.Timer | None = None
        self._shown: tuple[int, str] = (0, "")  # batches done and the info text at the last update
        self._clock = getattr(console, "get_time", time.monotonic)  # rich's clock, which its tasks use
        self._began = 0.0  # the epoch's start on that clock

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self.live:
            return
        self.close()
        with self._lock:
            self._pending, self._shown, self._began = epoch, (0, ""), self._clock()
        self._timer = threading.Timer(self.delay, self._start_bar, args=(epoch,))
        self._timer.daemon = True
        self._timer.start()

    def _start_bar(self, epoch: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with self._lock:
            if self._pending != epoch:  # that epoch already ended
                return
            self._pending = None
            bar = Progress_(
                TextColumn(f"epoch {epoch + 1}/{self.epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=True,
                refresh_per_second=4,  # rich's default 10 Hz redraw thread competes with training on small CPUs
            )
            done, info = self._shown
            try:
                task = bar.add_task("train", total=self.steps, completed=done, info=info)
                bar.tasks[-1].start_time = self._began  # elapsed counts from the epoch's start, not the bar's
                bar.start()  # after the task is complete, so the first frame already shows it
            except Exception:  # a display that cannot draw (a closed terminal) must not disturb training
                log.debug("progress bar not shown", exc_info=True)
                with contextlib.suppress(Exception):
                    bar.stop()
                return
            self._task = task
            self._bar = bar  # last: whoever sees the bar sees its task

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.live:
            return
        loss = (logs or {}).get("loss")
        info = f"loss {float(loss):.4g}" if loss is not None else ""
        # Keras reports the last batch of a steps_per_execution group, which may overshoot a short last group.
        done = batch + 1 if self.steps is None else min(batch + 1, self.steps)
        with self._lock:
            self._shown = (done, info)
            if self._bar is not None:
                self._bar.update(self._task, completed=done, info=info)

    def close(self) -> None:
        with self._lock:
            self._pending = None
            bar, self._bar = self._bar, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if bar is not None:
            bar.stop()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.close()
        seconds = (logs or {}).get("time")
        took = f"  {float(seconds):.2f}s" if seconds is not None else ""
        line = f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs or {})}{took}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.close()


def Progress_(*columns: Any, **kwargs: Any) -> Any:  # noqa: N802 - rich's class, imported lazily
    from rich.progress import Progress as RichProgress

    return RichProgress(*columns, **kwargs)
