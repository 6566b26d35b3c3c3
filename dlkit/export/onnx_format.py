"""ONNX export through Keras' ``model.export(format="onnx")`` (tf2onnx underneath)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

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
    with capture_native_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object
        try:
            model.export(str(target), format="onnx", verbose=False)
        except Exception as error:  # noqa: BLE001
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            raise ExportError(problems=[Problem(path="onnx", message=f"conversion failed: {first}")]) from error
    return {"notes": []}
