"""SIGINT/SIGTERM: stop at the next batch end with the last epoch checkpoint kept.

The handlers only set a flag (no work in signal context); :class:`StopOnSignal` checks it at each batch end
(once per ``steps_per_execution`` group, so no per-batch Python work) and raises :class:`StopRequested`, which
leaves ``fit`` at once: no half-epoch ``on_epoch_end`` runs, so no callback saves a partial epoch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import keras


class StopRequested(Exception):
    """Raised inside ``fit`` when a stop signal arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalFlag:
    """Remembers the first SIGINT/SIGTERM received while installed."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[SignalFlag]:
        """Install the handlers (main thread only) and restore the previous ones on exit."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, previous in self._previous.items():
                signal.signal(sig, previous)
            self._previous.clear()

    def check(self) -> None:
        """Raise :class:`StopRequested` when a signal has arrived."""
        if self.signum is not None:
            raise StopRequested(self.signum)


class StopOnSignal(keras.callbacks.Callback):
    """Checks the flag at every batch end (once per execution) and at epoch begin."""

    def __init__(self, flag: SignalFlag) -> None:
        super().__init__()
        self.flag = flag

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.flag.check()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.flag.check()
