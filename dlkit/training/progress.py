"""Per-epoch progress: a rich bar (ETA, loss, samples/s) on a terminal, one plain line per epoch otherwise.

The CLI passes its stderr console in; the bar is updated at batch ends, which Keras calls once per
``steps_per_execution`` group, so it adds no per-batch Python work.
"""

from __future__ import annotations

from typing import Any

import keras

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

    Args:
        console: Where to draw (stderr).
        epochs: Total epochs.
        steps: Batches per epoch, or None when unknown.
    """

    def __init__(self, console: Any, epochs: int, steps: int | None) -> None:
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.steps = steps
        self.live = bool(getattr(console, "is_terminal", False))
        self._bar: Any = None
        self._task: Any = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress_(
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
        self._bar.start()
        self._task = self._bar.add_task("train", total=self.steps, info="")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._bar is not None:
            loss = (logs or {}).get("loss")
            info = f"loss {float(loss):.4g}" if loss is not None else ""
            # Keras reports the last batch of a steps_per_execution group, which may overshoot a short last group.
            done = batch + 1 if self.steps is None else min(batch + 1, self.steps)
            self._bar.update(self._task, completed=done, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

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
