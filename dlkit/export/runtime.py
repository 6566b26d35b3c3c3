"""Load a model or artifact in its own runtime and run it: Keras, SavedModel, LiteRT/TFLite or ONNX Runtime.

Verification, evaluation and prediction all go through :func:`load_runtime`, so an exported artifact is
always scored by the runtime that will serve it, never by the Keras model it came from.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.errors import ExportError, Problem, UsageError

CHUNK = 256  # samples per call when scoring a whole split


def kind_of(path: str | Path) -> str | None:
    """``saved_model``, ``tflite``, ``keras`` or ``onnx`` for an artifact path, None for anything else."""
    p = Path(path)
    if p.is_dir() and (p / "saved_model.pb").is_file():
        return "saved_model"
    return {".tflite": "tflite", ".keras": "keras", ".onnx": "onnx"}.get(p.suffix.lower()) if p.is_file() else None


def median_latency_ms(
    call: Callable[[np.ndarray], Any], sample: np.ndarray, warmup: int = 5, runs: int = 50, budget_s: float = 2.0
) -> float:
    """Median wall time in ms of ``call(sample)`` (one sample, batch of 1) after ``warmup`` calls.

    Stops early after ``budget_s`` seconds of timed calls (at least 5 runs).
    """
    for _ in range(warmup):
        call(sample)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs:
        t0 = time.perf_counter()
        call(sample)
        times.append((time.perf_counter() - t0) * 1000.0)
        if len(times) >= 5 and time.perf_counter() - start > budget_s:
            break
    return float(statistics.median(times))


class Runtime:
    """A loaded model: ``predict(x)`` on a batch of raw inputs, ``latency_ms(x1)`` on one sample.

    Attributes:
        kind: ``keras``, ``saved_model``, ``tflite`` or ``onnx``.
        path: Where it was loaded from.
        engine: The runtime that runs it, for reports (e.g. ``ai_edge_litert``).
    """

    kind = ""
    engine = ""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs for every row of ``x`` (float32 NumPy), computed in chunks of 256."""
        outs = [np.asarray(self._run(x[i : i + CHUNK]), dtype=np.float32) for i in range(0, len(x), CHUNK)]
        return np.concatenate(outs, axis=0) if outs else np.zeros((0,), np.float32)

    def latency_ms(self, sample: np.ndarray) -> float:
        """Median per-sample latency in ms (batch of 1, warmed up)."""
        return median_latency_ms(self._run, sample[:1])

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Shape of one input sample (without the batch dimension)."""
        raise NotImplementedError


class KerasRuntime(Runtime):
    """A ``.keras`` model (or an in-memory one) through Keras itself."""

    kind = "keras"
    engine = "keras"

    def __init__(self, path: Path, model: Any = None) -> None:
        super().__init__(path)
        if model is None:
            import keras

            try:
                model = keras.models.load_model(path, compile=False)
            except Exception as error:  # noqa: BLE001 - Keras raises many types for a bad file
                raise UsageError(f"cannot load Keras model {path}: {error}") from error
        self.model = model

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out = self.model.predict_on_batch(batch)
        return out[0] if isinstance(out, list | tuple) else out

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        shape = self.model.inputs[0].shape
        return tuple(shape[1:])

    @property
    def input_dtype(self) -> str:
        """The model's input dtype name."""
        return str(self.model.inputs[0].dtype)


class SavedModelRuntime(Runtime):
    """A SavedModel folder through ``tf.saved_model.load`` (the ``serve`` endpoint Keras writes)."""

    kind = "saved_model"
    engine = "tf.saved_model"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import tensorflow as tf

        try:
            self.obj = tf.saved_model.load(str(path))
        except Exception as error:  # noqa: BLE001
            raise ExportError(f"cannot load SavedModel {path}: {str(error).splitlines()[0][:300]}") from error
        fn = getattr(self.obj, "serve", None)
        if fn is None:
            sig = self.obj.signatures.get("serving_default")
            if sig is None:
                raise ExportError(f"SavedModel {path} has neither a `serve` endpoint nor a serving_default signature")
            name = list(sig.structured_input_signature[1])[0]
            self.fn = lambda x: next(iter(sig(**{name: x}).values()))
            self._spec = list(sig.structured_input_signature[1].values())[0]
        else:
            self.fn = fn
            self._spec = fn.input_signature[0] if fn.input_signature else None
        self.tf = tf

    def _run(self, batch: np.ndarray) -> np.ndarray:
        dtype = self._spec.dtype if self._spec is not None else self.tf.float32
        out = self.fn(self.tf.constant(batch, dtype=dtype))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        if isinstance(out, list | tuple):
            out = out[0]
        return out.numpy()

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return tuple(self._spec.shape[1:]) if self._spec is not None else ()


class OnnxRuntime(Runtime):
    """An ``.onnx`` file through ONNX Runtime (CPU provider)."""

    kind = "onnx"
    engine = "onnxruntime"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise ExportError(
                problems=[
                    Problem(
                        path="onnx",
                        message="running an ONNX model needs onnxruntime",
                        hint="pip install onnxruntime (or: pip install 'dlkit[onnx]').",
                    )
                ]
            ) from error
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001
            raise ExportError(f"cannot load ONNX model {path}: {str(error).splitlines()[0][:300]}") from error
        self._input = self.session.get_inputs()[0]
        self._dtype = np.float32 if "float" in self._input.type else np.int64

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(None, {self._input.name: batch.astype(self._dtype)})[0]
        return out

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return tuple(d if isinstance(d, int) else None for d in self._input.shape[1:])


def load_runtime(path: str | Path, model: Any = None) -> Runtime:
    """Load ``path`` in its own runtime (``model``: an already loaded Keras model for ``.keras``).

    Raises:
        UsageError: ``path`` is not a model or artifact dlkit knows.
        ExportError: the artifact exists but its runtime cannot load it.
    """
    p = Path(path)
    kind = kind_of(p)
    if kind == "keras":
        return KerasRuntime(p, model)
    if kind == "saved_model":
        return SavedModelRuntime(p)
    if kind == "onnx":
        return OnnxRuntime(p)
    if kind == "tflite":
        from dlkit.export.tflite import TFLiteRuntime

        return TFLiteRuntime(p)
    raise UsageError(
        problems=[
            Problem(
                path="MODEL",
                message="not a model dlkit can load",
                got=str(p),
                hint="Pass a run folder, a .keras/.tflite/.onnx file or a SavedModel folder (with saved_model.pb).",
            )
        ]
    )
