"""The Keras v3 ``.keras`` file as an export artifact (preprocessing layers included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlkit.errors import ExportError, Problem


def export_keras(model: Any, target: Path, *, quantize: str = "none", calibration: Any = None) -> dict[str, Any]:
    """Save ``model`` to ``target`` (``.keras``) with ``model.save``.

    Raises:
        ExportError: Keras could not serialize the model (e.g. an unregistered custom layer).
    """
    try:
        model.save(str(target))
    except Exception as error:  # noqa: BLE001
        raise ExportError(
            problems=[Problem(path="keras", message=f"save failed: {str(error).splitlines()[0][:300]}")]
        ) from error
    return {"notes": []}
