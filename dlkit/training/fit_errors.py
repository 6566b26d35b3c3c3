"""What an exception raised inside ``fit`` means for the user: bad data, or a config callback Keras refused.

:class:`dlkit.training.runner.Runner` records every failed run in run.json; these two map the failures that are
the user's to fix onto the typed errors (and exit codes) of the contract. Anything else stays an internal error.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from dlkit.errors import ConfigError, DataError, tf_message

_INPUT_NODES = ("Iterator::", "IteratorGetNext", "MultiDeviceIteratorGetNextFromShard")


def input_error(error: BaseException) -> DataError | None:
    """A TensorFlow error raised by the input pipeline inside ``fit`` (a truncated image, a corrupt record) as a
    DataError with its readable line; None for anything else (errors in the model stay internal errors)."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, (tf.errors.InvalidArgumentError, tf.errors.DataLossError)):
        return None
    text = str(getattr(error, "message", None) or error)
    if not isinstance(error, tf.errors.DataLossError) and not any(node in text for node in _INPUT_NODES):
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("[[", "<stack"))]
    detail = next((ln for ln in reversed(lines) if "Iterator::" in ln), None)
    detail = re.sub(r"^.*?Iterator::[\w:]+:\s*", "", detail) if detail is not None else tf_message(error)
    return DataError(f"reading the training data failed during training: {detail[:300]}")


def callback_error(error: BaseException, callbacks: list[Any], loaded: Any) -> ConfigError | None:
    """A ValueError/TypeError raised inside ``fit`` by one of the config's ``callbacks`` (e.g. EarlyStopping with
    a ``baseline`` it cannot compare) as a ConfigError naming ``callbacks[i]`` in ``loaded``'s file; None otherwise.

    The callback is the innermost traceback frame whose ``self`` is one of them, which is why the runner turns
    Keras' traceback filtering off: it drops Keras' own frames, the built-in callbacks' among them.
    """
    if not isinstance(error, (ValueError, TypeError)) or not callbacks:
        return None
    index = None
    trace = error.__traceback__
    while trace is not None:
        owner = trace.tb_frame.f_locals.get("self")
        hit = next((i for i, c in enumerate(callbacks) if c is owner), None)
        index = hit if hit is not None else index
        trace = trace.tb_next
    if index is None:
        return None
    key: tuple[Any, ...] = ("callbacks", index)
    if "monitor=" in str(error):
        key += ("monitor",)
    text = " ".join(str(error).split())
    return ConfigError(problems=[loaded.problem(key, f"{type(callbacks[index]).__name__} failed: {text}")])
