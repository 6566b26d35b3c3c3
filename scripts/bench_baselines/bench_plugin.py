"""A dlkit plugin used only by ``scripts/bench.py``: a callback that records when the first training step begins.

dlkit's run.json does not record that moment, so the benchmark measures it from outside, the same way it
does for the hand-written scripts (``_common.BenchTimer``): ``dlkit train --plugin bench_plugin`` with
``callbacks: [{type: BenchFirstStep, out: PATH}]`` in the config. dlkit's config names callbacks from
``keras.callbacks``, so the class is published there when this module is imported.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras


class BenchFirstStep(keras.callbacks.Callback):
    """Writes ``{"first_step_time": time.time()}`` to ``out`` when the first training batch begins.

    Args:
        out: Path of the JSON file to write.
    """

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self._done = False

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if not self._done:
            self._done = True
            Path(self.out).write_text(json.dumps({"first_step_time": time.time()}), encoding="utf-8")


keras.callbacks.BenchFirstStep = BenchFirstStep
