"""SIGINT/SIGTERM: stop at the next batch end with the last epoch checkpoint kept.

The handlers only set a flag (no work in signal context); :func:`stop_on_signal`'s callback checks it at each batch end
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
        if self._previous or threading.current_thread() is not threading.main_thread():
            yield self  # already installed (nested use) or not allowed off the main thread
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


def stop_on_signal(flag: SignalFlag) -> Any:
    """A Keras callback that checks ``flag`` at every batch end (once per execution) and at epoch begin.

    Built on call so importing this module (to install the handlers first) does not import TensorFlow.
    """
    import keras

    class StopOnSignal(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            flag.check()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            flag.check()

    return StopOnSignal()
