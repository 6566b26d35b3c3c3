"""Import TensorFlow without its C++ start-up chatter on the terminal.

TF 2.21 writes oneDNN notes, "Could not find cuda drivers" and a failed ``cuInit`` straight to file
descriptor 2 through absl before its logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` no longer hides
them. We point fd 2 at a temp file while TensorFlow imports and probes its devices, then replay every line
that is not one of those known, harmless notes. ``DLKIT_DEBUG=1`` replays everything.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
import types

_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cudart_stub|cuda_platform|cuInit|cuda drivers"
    r"|cpu_feature_guard|To enable the following instructions|rebuild TensorFlow with the appropriate"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer|TF-TRT Warning"
)

_done = False


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and list its devices once) with the known start-up noise filtered out."""
    global _done
    if _done or "tensorflow" in sys.modules:
        _done = True
        return
    _done = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    debug = os.environ.get("DLKIT_DEBUG", "") not in ("", "0")
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # stderr replaced (e.g. CliRunner): nothing to hide
        import tensorflow as tf

        tf.config.list_physical_devices()
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if debug or (line.strip() and not _NOISE.search(line))]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


class _QuietFinder:
    """A one-shot meta-path finder: the first ``import tensorflow`` anywhere goes through the quiet import."""

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(cls)
        import_tensorflow_quietly()
        return importlib.machinery.ModuleSpec(name, _AlreadyLoaded(), is_package=True)


class _AlreadyLoaded(importlib.abc.Loader):
    """Loader handing back the module the quiet import already created."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return sys.modules["tensorflow"]

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install_import_hook() -> None:
    """Route the process's first ``import tensorflow`` through :func:`import_tensorflow_quietly`."""
    if "tensorflow" not in sys.modules and _QuietFinder not in sys.meta_path:
        sys.meta_path.insert(0, _QuietFinder)
