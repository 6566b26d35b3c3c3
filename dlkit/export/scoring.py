"""Score predictions the same way for every runtime: loss, the config's metrics, per-class report, regression stats.

Everything is computed from the outputs and labels in NumPy (plus the config's Keras loss and metric
objects), so a Keras model, a SavedModel and an int8 TFLite file are compared on equal terms.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("dlkit.export")

ACCURACY_NAMES = ("accuracy", "acc")


def from_logits(cfg: Any) -> bool:
    """Whether the config's loss takes logits (then probabilities need a softmax/sigmoid)."""
    return bool(cfg is not None and cfg.loss.kwargs.get("from_logits"))


def probabilities(outputs: np.ndarray, task: str, logits: bool) -> np.ndarray:
    """Class probabilities from model outputs (softmax/sigmoid when the model emits logits)."""
    out = np.asarray(outputs, dtype=np.float64)
    if not logits:
        return out
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-out))
    shifted = out - out.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def class_labels(y: np.ndarray, task: str) -> np.ndarray:
    """Integer class labels from sparse, one-hot or binary label arrays."""
    y = np.asarray(y)
    if task == "classification" and y.ndim > 1 and y.shape[-1] > 1:
        return y.argmax(axis=-1).astype(np.int64)
    flat = y.reshape(len(y), -1)[:, 0]
    if task == "binary":
        return (flat > 0.5).astype(np.int64)
    return flat.astype(np.int64)


def predicted_classes(outputs: np.ndarray, task: str, logits: bool) -> np.ndarray:
    """Predicted class per row (argmax, or threshold 0.5 on the probability for binary)."""
    probs = probabilities(outputs, task, logits)
    if task == "binary" or probs.ndim == 1 or probs.shape[-1] == 1:
        return (probs.reshape(len(probs), -1)[:, 0] > 0.5).astype(np.int64)
    return probs.argmax(axis=-1).astype(np.int64)


def headline(task: str) -> tuple[str, bool]:
    """The metric that verification compares and whether higher is better: accuracy, or MAE for regression."""
    return ("accuracy", True) if task in ("classification", "binary") else ("mae", False)


def quick_metrics(y: np.ndarray, outputs: np.ndarray, task: str, logits: bool = False) -> dict[str, float]:
    """The headline metric (accuracy or MAE) of ``outputs`` against ``y``."""
    if task in ("classification", "binary"):
        acc = float(np.mean(predicted_classes(outputs, task, logits) == class_labels(y, task)))
        return {"accuracy": acc}
    diff = np.asarray(outputs, np.float64).reshape(len(outputs), -1) - np.asarray(y, np.float64).reshape(len(y), -1)
    return {"mae": float(np.mean(np.abs(diff)))}


def _align(y: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Labels shaped like single-unit outputs: (n,) -> (n, 1), as ``fit`` does before the loss sees them."""
    y = np.asarray(y)
    if np.ndim(outputs) == y.ndim + 1 and np.shape(outputs)[-1] == 1:
        return y[..., None]
    return y


def _loss(cfg: Any, y: np.ndarray, outputs: np.ndarray) -> float | None:
    if cfg is None:
        return None
    import keras

    try:
        try:
            from dlkit.models import build_loss

            loss_fn = build_loss(cfg.loss)
        except ImportError:
            loss_fn = keras.losses.get(
                {"class_name": cfg.loss.type, "config": cfg.loss.kwargs} if cfg.loss.kwargs else cfg.loss.type
            )
        value = loss_fn(_align(y, outputs), np.asarray(outputs, np.float32))
        return float(np.mean(keras.ops.convert_to_numpy(value)))
    except Exception as error:  # noqa: BLE001 - a custom loss we cannot rebuild here
        log.warning("could not compute the loss %s on these outputs: %s", cfg.loss.type, error)
        return None


def _config_metrics(cfg: Any, y: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """The config's other Keras metrics (accuracy is computed by :func:`quick_metrics`)."""
    out: dict[str, float] = {}
    if cfg is None:
        return out
    import keras

    for component in cfg.metrics:
        name = component.type
        if name.lower() in ACCURACY_NAMES:
            continue
        try:
            metric = keras.metrics.get({"class_name": name, "config": component.kwargs} if component.kwargs else name)
            if not isinstance(metric, keras.metrics.Metric):
                metric = keras.metrics.MeanMetricWrapper(metric, name=name)
            metric.update_state(_align(y, outputs), np.asarray(outputs, np.float32))
            result = keras.ops.convert_to_numpy(metric.result())
            if np.ndim(result) == 0:
                out[metric.name] = float(result)
        except Exception as error:  # noqa: BLE001
            log.warning("skipped metric %s: %s", name, error)
    return out


def per_class(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, class_names: list[str] | None
) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Per-class precision/recall/F1/support rows and the confusion matrix (rows: true, columns: predicted)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    names = class_names if class_names and len(class_names) == num_classes else [str(i) for i in labels]
    rows = [
        {
            "class": names[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in labels
    ]
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return rows, matrix.astype(int).tolist()


def score(
    cfg: Any,
    y: np.ndarray,
    outputs: np.ndarray,
    task: str,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Full scoring of ``outputs`` against ``y``.

    Returns:
        ``{"metrics": {...}, "per_class": [...], "confusion_matrix": [[...]]}`` for classifiers,
        ``{"metrics": {"loss", "mae", "mse", "rmse", "r2", ...}}`` for regression.
    """
    logits = from_logits(cfg)
    metrics: dict[str, Any] = {}
    loss = _loss(cfg, y, outputs)
    if loss is not None:
        metrics["loss"] = loss
    result: dict[str, Any] = {}
    if task in ("classification", "binary"):
        y_true = class_labels(y, task)
        y_pred = predicted_classes(outputs, task, logits)
        metrics["accuracy"] = float(np.mean(y_true == y_pred))
        n = 2 if task == "binary" else int(num_classes or max(int(y_true.max()), int(y_pred.max())) + 1)
        if task == "classification" and np.ndim(outputs) > 1:
            n = max(n, int(np.shape(outputs)[-1]))
        rows, matrix = per_class(y_true, y_pred, n, class_names)
        from sklearn.metrics import f1_score

        metrics["macro_f1"] = float(f1_score(y_true, y_pred, labels=list(range(n)), average="macro", zero_division=0))
        metrics["weighted_f1"] = float(
            f1_score(y_true, y_pred, labels=list(range(n)), average="weighted", zero_division=0)
        )
        result["per_class"] = rows
        result["confusion_matrix"] = matrix
        result["class_names"] = [row["class"] for row in rows]
    else:
        pred = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
        true = np.asarray(y, np.float64).reshape(len(y), -1)
        err = pred - true
        mse = float(np.mean(err**2))
        total = float(np.sum((true - true.mean(axis=0)) ** 2))
        metrics.update(
            {
                "mae": float(np.mean(np.abs(err))),
                "mse": mse,
                "rmse": float(np.sqrt(mse)),
                "r2": float(1.0 - np.sum(err**2) / total) if total > 0 else None,
            }
        )
    metrics.update({k: v for k, v in _config_metrics(cfg, y, outputs).items() if k not in metrics})
    result["metrics"] = metrics
    return result
