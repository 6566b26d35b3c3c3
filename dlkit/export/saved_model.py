"""SavedModel export through Keras' ``model.export(format="tf_saved_model")`` (endpoint ``serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlkit.errors import ExportError, Problem
from dlkit.export.native import capture_native_stderr


def export_saved_model(model: Any, target: Path, *, quantize: str = "none", calibration: Any = None) -> dict[str, Any]:
    """Write ``model`` as a SavedModel folder at ``target`` (raw inputs in, the model's outputs out).

    Raises:
        ExportError: TensorFlow could not trace or save the model.
    """
    with capture_native_stderr():
        try:
            model.export(str(target), format="tf_saved_model", verbose=False)
        except Exception as error:  # noqa: BLE001 - tracing can fail in many ways
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            raise ExportError(
                problems=[
                    Problem(path="saved_model", message=f"export failed: {first}", hint="Rerun with --traceback.")
                ]
            ) from error
    return {"notes": []}
