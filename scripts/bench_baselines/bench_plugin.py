"""A dlkit plugin used only by ``scripts/bench.py``: records when the first training step begins, and CPU time.

dlkit's run.json does not record the moment of the first step, and metrics.csv has wall time only, so the
benchmark measures both from outside, the same way as for the hand-written scripts (``_common.BenchTimer``):
``dlkit train --plugin bench_plugin`` with ``callbacks: [{type: BenchFirstStep, out: PATH}]`` in the config.
dlkit's config names callbacks from ``keras.callbacks``, so the class is published there on import.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras


class BenchFirstStep(keras.callbacks.Callback):
    """Writes the first step's wall-clock time and each epoch's wall and CPU seconds to ``out`` (JSON).

    Args:
        out: Path of the JSON file to write.
    """

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.first_step_time: float | None = None
        self.epoch_seconds: list[float] = []
        self.epoch_cpu_seconds: list[float] = []
        self._epoch_start = (0.0, 0.0)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.first_step_time is None:
            self.first_step_time = time.time()
            self._write()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start[0])
        self.epoch_cpu_seconds.append(time.process_time() - self._epoch_start[1])
        self._write()

    def _write(self) -> None:
        record = {
            "first_step_time": self.first_step_time,
            "epoch_seconds": self.epoch_seconds,
            "epoch_cpu_seconds": self.epoch_cpu_seconds,
        }
        Path(self.out).write_text(json.dumps(record), encoding="utf-8")


keras.callbacks.BenchFirstStep = BenchFirstStep
