"""A dlkit plugin used only by ``scripts/bench.py``: records when the first training step begins, and CPU time.

dlkit's run.json does not record the moment of the first step, and metrics.csv has wall time only, so the
benchmark measures both from outside with the callback the hand-written scripts use (``_common.BenchTimer``):
``dlkit train --plugin bench_plugin`` with ``callbacks: [{type: BenchFirstStep, out: PATH}]`` in the config.
dlkit's config names callbacks from ``keras.callbacks``, so the class is published there on import.
"""

from __future__ import annotations

import keras
from _common import BenchTimer

keras.callbacks.BenchFirstStep = BenchTimer
