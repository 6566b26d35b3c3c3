"""Scoring from outputs and labels: sparse, one-hot, binary, logits and regression."""

from __future__ import annotations

import numpy as np
import pytest

from dlkit.export.scoring import class_labels, predicted_classes, probabilities, quick_metrics, score
from dlkit.export.verify import drop_reason, metric_drop


def test_sparse_and_one_hot_labels_give_the_same_classes() -> None:
    sparse = np.array([2, 0, 1])
    one_hot = np.eye(3)[sparse]
    assert class_labels(sparse, "classification").tolist() == [2, 0, 1]
    assert class_labels(one_hot, "classification").tolist() == [2, 0, 1]
    assert class_labels(sparse[:, None], "classification").tolist() == [2, 0, 1]


def test_binary_threshold_and_logits() -> None:
    probs = np.array([[0.2], [0.7], [0.5001]])
    assert predicted_classes(probs, "binary", logits=False).tolist() == [0, 1, 1]
    logits = np.array([[-1.0], [2.0], [0.0]])
    assert predicted_classes(logits, "binary", logits=True).tolist() == [0, 1, 0]
    assert probabilities(np.array([[0.0, np.log(3.0)]]), "classification", True)[0] == pytest.approx([0.25, 0.75])


def test_score_classifier_per_class_and_confusion_matrix() -> None:
    y = np.array([0, 0, 1, 1, 2])
    outputs = np.eye(3)[[0, 1, 1, 1, 0]] * 0.8 + 0.2 / 3
    result = score(None, y, outputs, "classification", num_classes=3, class_names=["a", "b", "c"])
    assert result["metrics"]["accuracy"] == pytest.approx(0.6)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    rows = {r["class"]: r for r in result["per_class"]}
    assert rows["b"]["precision"] == pytest.approx(2 / 3) and rows["b"]["recall"] == 1.0
    assert rows["c"]["support"] == 1 and rows["c"]["f1"] == 0.0


def test_score_regression() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([[1.5], [2.0], [2.5], [4.0]])
    metrics = score(None, y, pred, "regression")["metrics"]
    assert metrics["mae"] == pytest.approx(0.25)
    assert metrics["mse"] == pytest.approx(0.125)
    assert metrics["r2"] == pytest.approx(1 - 0.5 / 5.0)
    assert quick_metrics(y, pred, "regression") == {"mae": pytest.approx(0.25)}


def test_metric_drop_is_points_for_accuracy_and_relative_for_mae() -> None:
    assert metric_drop(0.95, 0.94, higher_is_better=True) == pytest.approx(0.01)
    assert metric_drop(0.20, 0.22, higher_is_better=False) == pytest.approx(0.10)


def test_binary_loss_and_metrics_accept_flat_labels_with_single_unit_outputs() -> None:
    from types import SimpleNamespace

    component = SimpleNamespace(type="AUC", kwargs={})
    cfg = SimpleNamespace(loss=SimpleNamespace(type="binary_crossentropy", kwargs={}), metrics=[component])
    y = np.array([0, 1, 1, 0])
    outputs = np.array([[0.1], [0.8], [0.6], [0.3]], np.float32)
    result = score(cfg, y, outputs, "binary")
    expected = -np.mean(np.log([0.9, 0.8, 0.6, 0.7]))
    assert result["metrics"]["loss"] == pytest.approx(expected, rel=1e-5)
    assert result["metrics"]["accuracy"] == 1.0 and result["metrics"]["auc"] == pytest.approx(1.0)
    assert result["confusion_matrix"] == [[2, 0], [0, 2]]


def test_drop_reason_states_points_for_accuracy_and_percent_for_mae() -> None:
    assert drop_reason("accuracy", 0.4074, 0.01, higher_is_better=True) == (
        "accuracy dropped by 40.74 points (0.4074), more than export.max_metric_drop 0.01 (1 point)"
    )
    assert drop_reason("mae", 0.25, 0.1, higher_is_better=False) == (
        "mae rose by 25.0% (relative), more than export.max_metric_drop 0.1 (10.0%)"
    )
