"""Keep TensorFlow's native (C++) diagnostics off the user's terminal while converting.

The TFLite converter writes MLIR dumps straight to file descriptor 2, which Python's ``sys.stderr``
redirection cannot catch. We swap fd 2 for a temp file for the duration, hand the text back so the
caller can turn it into a short message, and log it at debug level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

log = logging.getLogger("dlkit.export")


class Captured:
    """Text written to fd 2 inside :func:`capture_native_stderr` (filled in on exit)."""

    text: str = ""


@contextlib.contextmanager
def capture_native_stderr() -> Iterator[Captured]:
    """Redirect fd 2 to a temp file inside the block; yield an object whose ``.text`` holds what was written.

    With ``DLKIT_DEBUG`` set the text is passed through to the terminal unchanged.
    """
    captured = Captured()
    if os.environ.get("DLKIT_DEBUG", "") not in ("", "0"):
        yield captured
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real fd 2 (embedded interpreter): nothing to capture
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
            if captured.text.strip():
                log.debug("native stderr:\n%s", captured.text)
