"""dlkit evaluate on a model file outside any run folder, scored on an npz given with --data."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from dlkit.cli.main import cli
from dlkit.export.target import infer_task


def test_model_file_outside_a_run_is_scored_on_an_npz(runner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype("float32")
    y = rng.integers(0, 3, 40)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "test.npz", x=x, y=y)

    result = runner.invoke(cli, ["evaluate", str(tmp_path / "m.keras"), "--data", str(tmp_path / "test.npz"), "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    expected = float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))
    assert (report["split"], report["samples"], report["task"]) == ("test:test.npz", 40, "classification")
    assert report["metrics"]["accuracy"] == pytest.approx(expected)
    assert report["files"] == [] and not list(tmp_path.glob("eval*.json"))  # no run folder: nothing written

    no_data = runner.invoke(cli, ["evaluate", str(tmp_path / "m.keras")])
    assert no_data.exit_code == 2
    assert "or --data FILE.npz (arrays x and y)" in no_data.stderr


def test_task_is_told_from_outputs_and_labels() -> None:
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    assert infer_task(np.array([1, 0]), probs) == ("classification", 2)
    assert infer_task(np.array([1, 0]), np.array([[0.7], [0.2]], np.float32)) == ("binary", 2)
    assert infer_task(np.array([1.5, 0.2]), np.array([[0.7], [0.2]], np.float32)) == ("regression", None)
    assert infer_task(np.array([3, 7]), np.array([[2.9], [7.4]], np.float32)) == ("regression", None)


def test_data_that_does_not_fit_names_the_file_and_option(runner, tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "m.keras")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.ones((4, 7), np.float32), y=np.zeros(4, int))
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "m.keras"), "--data", str(wrong)])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {wrong}  --data: the inputs do not fit the model: ")
    assert result.stderr.endswith("(got inputs shaped (7,))\n")
