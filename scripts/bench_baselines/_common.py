"""Plumbing shared by the hand-written baselines: their command-line sizes and a timing callback.

The model and ``fit`` code in each baseline is what a user writes by hand; this file only adds what the
benchmark reads back: when the first training step began (wall clock, so ``scripts/bench.py`` can subtract
the moment it started the process) and how long each epoch took (wall and process CPU seconds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras


def parse_args(description: str, samples: int) -> argparse.Namespace:
    """The sizes every baseline takes, so the benchmark can run identical work in dlkit and here."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--samples", type=int, default=samples, help=f"Training samples. Defaults to {samples}.")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs. Defaults to 3.")
    parser.add_argument("--batch-size", type=int, default=32, help="Batch size. Defaults to 32.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the synthetic data. Defaults to 42.")
    parser.add_argument(
        "--data", type=Path, help="An .npz with arrays x and y to train on (what dlkit reads) instead of new ones."
    )
    parser.add_argument("--timing-out", type=Path, required=True, help="Where to write the timing JSON.")
    return parser.parse_args()


class BenchTimer(keras.callbacks.Callback):
    """Records the wall-clock time of the first training step and each epoch's duration, then writes JSON.

    The baselines pass ``samples`` (the JSON then carries samples per second too); ``dlkit train`` uses the same
    class through ``bench_plugin.py``, where dlkit's own metrics.csv gives the samples per second.

    Args:
        out: Path of the JSON file to write at the end of training.
        samples: Training samples per epoch, or None. Defaults to None.
    """

    def __init__(self, out: str | Path, samples: int | None = None) -> None:
        super().__init__()
        self.out = Path(out)
        self.samples = samples
        self.first_step_time: float | None = None
        self.epoch_seconds: list[float] = []
        self.epoch_cpu_seconds: list[float] = []
        self._epoch_start = (0.0, 0.0)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.first_step_time is None:
            self.first_step_time = time.time()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start[0])
        # CPU seconds of the whole process: less sensitive than wall time to other load on a shared machine.
        self.epoch_cpu_seconds.append(time.process_time() - self._epoch_start[1])

    def on_train_end(self, logs: dict | None = None) -> None:
        record: dict[str, object] = {
            "first_step_time": self.first_step_time,
            "epoch_seconds": self.epoch_seconds,
            "epoch_cpu_seconds": self.epoch_cpu_seconds,
        }
        if self.samples is not None:
            record["samples_per_epoch"] = self.samples
            record["samples_per_second"] = [self.samples / s for s in self.epoch_seconds]
        self.out.write_text(json.dumps(record, indent=2), encoding="utf-8")
