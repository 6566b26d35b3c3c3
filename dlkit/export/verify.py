"""Verification of one artifact against the Keras model it came from, on real held-out data.

Float artifacts (SavedModel, .keras, ONNX, float32 TFLite) must reproduce the Keras outputs to
``export.tolerance`` (max absolute difference). Quantized TFLite artifacts may differ numerically but must
keep the headline metric (accuracy; MAE for regression) within ``export.max_metric_drop``: points of
accuracy (0.01 = 1 point), or the relative MAE increase for regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlkit.export.runtime import Runtime
from dlkit.export.scoring import headline, quick_metrics


@dataclass
class Reference:
    """The Keras model's outputs and headline metric on the verification split."""

    x: np.ndarray
    y: np.ndarray
    outputs: np.ndarray
    metrics: dict[str, float]
    task: str
    logits: bool
    split: str


def metric_drop(reference: float, value: float, higher_is_better: bool) -> float:
    """How much worse ``value`` is than ``reference``: points for accuracy, relative increase for MAE."""
    if higher_is_better:
        return reference - value
    return (value - reference) / max(abs(reference), 1e-12)


def drop_reason(name: str, drop: float, budget: float, higher_is_better: bool) -> str:
    """Why a quantized artifact failed: accuracy in points (0.01 = 1 point), MAE as a relative increase."""
    if higher_is_better:
        points = f"{budget * 100:g} point{'' if budget == 0.01 else 's'}"
        return (
            f"{name} dropped by {drop * 100:.2f} points ({drop:.4f}), more than export.max_metric_drop "
            f"{budget:g} ({points})"
        )
    return f"{name} rose by {drop:.1%} (relative), more than export.max_metric_drop {budget:g} ({budget:.1%})"


def verify_runtime(
    runtime: Runtime, reference: Reference, *, is_float: bool, tolerance: float, max_metric_drop: float
) -> dict[str, Any]:
    """Run ``runtime`` on the reference inputs and judge it.

    Returns:
        ``{"max_abs_diff", "metrics", "metric_delta", "latency_ms", "verified", "reason", "engine"}``;
        ``metric_delta`` is artifact minus Keras (negative accuracy delta = a loss).
    """
    outputs = runtime.predict(reference.x)
    name, higher = headline(reference.task)
    ref_value = reference.metrics[name]
    if outputs.shape != reference.outputs.shape:
        return {
            "max_abs_diff": None,
            "metrics": {},
            "metric_delta": None,
            "latency_ms": None,
            "verified": False,
            "engine": runtime.engine,
            "reason": f"output shape {outputs.shape} differs from the Keras model's {reference.outputs.shape}",
        }
    finite = bool(np.all(np.isfinite(outputs)))
    diff = float(np.max(np.abs(outputs.astype(np.float64) - reference.outputs.astype(np.float64)))) if finite else None
    metrics = quick_metrics(reference.y, outputs, reference.task, reference.logits) if finite else {name: None}
    value = metrics[name]
    delta = None if value is None else float(value - ref_value)
    latency = runtime.latency_ms(reference.x[:1])
    if not finite:
        verified, reason = False, "the artifact produced NaN or Inf outputs"
    elif is_float:
        verified = diff is not None and diff <= tolerance
        reason = "" if verified else f"max |output difference| {diff:.3g} exceeds export.tolerance {tolerance:g}"
    else:
        drop = metric_drop(ref_value, value, higher) if value is not None else float("inf")
        verified = drop <= max_metric_drop
        reason = "" if verified else drop_reason(name, drop, max_metric_drop, higher)
    return {
        "max_abs_diff": diff,
        "metrics": metrics,
        "metric_delta": delta,
        "latency_ms": round(latency, 4),
        "verified": verified,
        "engine": runtime.engine,
        "reason": reason,
    }
