"""ONNX export through Keras' ``model.export(format="onnx")`` (tf2onnx underneath)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.errors import ExportError, Problem
from dlkit.export.native import capture_native_stderr

NEEDS = ("tf2onnx", "onnx", "onnxruntime")


def missing_packages() -> list[str]:
    """The ONNX packages that are not installed (onnxruntime is needed to verify)."""
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def export_onnx(model: Any, target: Path, *, quantize: str = "none", calibration: Any = None) -> dict[str, Any]:
    """Write ``model`` as an ONNX file at ``target``.

    Raises:
        ExportError: tf2onnx/onnx/onnxruntime are missing (with the pip command) or conversion failed.
    """
    missing = missing_packages()
    if missing:
        raise ExportError(
            problems=[
                Problem(
                    path="onnx",
                    message=f"the onnx format needs {', '.join(missing)}, which are not installed",
                    hint=f"pip install {' '.join(missing)} (or: pip install 'dlkit[onnx]').",
                )
            ]
        )
    if not getattr(model, "_called", True):  # Keras refuses to export a model that was never called
        model(np.zeros((1, *model.inputs[0].shape[1:]), model.inputs[0].dtype))
    with capture_native_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object
        try:
            model.export(str(target), format="onnx", verbose=False)
            extra = _extra_inputs(target, len(model.inputs))
            if extra:
                # tf2onnx leaves some captured constants (e.g. an adapted Normalization's mean and variance) as
                # graph inputs nobody can feed; converting a frozen graph of the same function turns them into
                # constants
                _from_frozen_graph(model, target)
                note = f"re-converted from a frozen graph: Keras' export left {', '.join(extra)} as graph inputs"
                return {"notes": [note]}
        except ExportError:
            raise
        except Exception as error:  # noqa: BLE001
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            raise ExportError(problems=[Problem(path="onnx", message=f"conversion failed: {first}")]) from error
    return {"notes": []}


def _extra_inputs(path: Path, expected: int) -> list[str]:
    """Graph inputs beyond the model's own (not counting initializers)."""
    import onnx

    graph = onnx.load(str(path)).graph
    initializers = {init.name for init in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    return names[expected:]


def _from_frozen_graph(model: Any, target: Path) -> None:
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if len(model.inputs) != 1:
        raise ExportError(
            problems=[Problem(path="onnx", message="the exported graph has unfed inputs (multi-input model)")]
        )
    spec = model.inputs[0]
    signature = tf.TensorSpec((None, *spec.shape[1:]), spec.dtype, name="input")
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(signature)
    frozen = convert_variables_to_constants_v2(concrete)
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # tf2onnx calls TF1 graph utilities that log deprecation notices
    try:
        tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs],
            output_path=str(target),
        )
    finally:
        tf.get_logger().setLevel(level)
    if _extra_inputs(target, 1):
        raise ExportError(problems=[Problem(path="onnx", message="the exported graph has inputs that cannot be fed")])
