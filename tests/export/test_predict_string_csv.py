"""dlkit predict on a CSV with a string column: encoded with the run's training vocabulary, as training did."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from dlkit.cli.main import cli

COLORS = ["red", "green", "blue"]


def _write_csv(path: Path, rows: list[tuple[float, float, str, int]], label: bool = True) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["a", "b", "color", "label"] if label else ["a", "b", "color"])
        for a, b, color, y in rows:
            writer.writerow([a, b, color, y] if label else [a, b, color])


@pytest.mark.slow
def test_predict_encodes_string_columns_like_training(runner, write_config, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [(round(float(rng.normal()), 4), round(float(rng.normal()), 4), COLORS[i % 3], i % 3) for i in range(60)]
    _write_csv(tmp_path / "train.csv", rows)
    config = write_config(
        """
        name: colors
        seed: 0
        data: {source: csv, train: train.csv, label: label, validation_split: 0.0, batch_size: 16}
        model:
          input_shape: [3]
          layers: [{type: Dense, units: 3, activation: softmax}]
        optimizer: {type: adam, learning_rate: 0.05}
        loss: sparse_categorical_crossentropy
        training: {epochs: 2}
        """
    )
    trained = runner.invoke(cli, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert trained.exit_code == 0, trained.stderr
    run = Path(json.loads(trained.stdout)["run_dir"])

    new = [(0.5, -1.0, "blue", 0), (-0.2, 0.3, "red", 0), (1.0, 1.0, "purple", 0)]  # purple: unseen in training
    inputs = tmp_path / "new.csv"
    _write_csv(inputs, new, label=False)
    result = runner.invoke(cli, ["predict", str(run), str(inputs)])
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)["predictions"]

    # StringLookup over the sorted training vocabulary: unseen 0, blue 1, green 2, red 3
    codes = {"blue": 1.0, "green": 2.0, "red": 3.0, "purple": 0.0}
    x = np.array([[a, b, codes[c]] for a, b, c, _ in new], np.float32)
    expected = keras.models.load_model(run / "model.keras").predict(x, verbose=0)
    assert [r["class_index"] for r in got] == expected.argmax(-1).tolist()
    assert [r["probability"] for r in got] == pytest.approx(expected.max(-1).tolist(), abs=1e-5)


@pytest.mark.slow
def test_predict_feeds_raw_text_to_a_text_model(runner, write_config, tmp_path: Path) -> None:
    words = {1: ["good", "great", "fine"], 0: ["bad", "awful", "poor"]}
    lines = ["text,label"] + [f"{words[i % 2][i % 3]} movie,{i % 2}" for i in range(60)]
    (tmp_path / "reviews.csv").write_text("\n".join(lines) + "\n")
    config = write_config(
        """
        name: text
        seed: 0
        data:
          source: csv
          train: reviews.csv
          label: label
          validation_split: 0.0
          preprocessing: [{type: TextVectorization, max_tokens: 20, output_mode: multi_hot}]
        model:
          input_shape: [1]
          input_dtype: string
          layers: [Flatten, {type: Dense, units: 1, activation: sigmoid}]
        optimizer: {type: adam, learning_rate: 0.1}
        loss: binary_crossentropy
        training: {epochs: 2}
        """
    )
    trained = runner.invoke(cli, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert trained.exit_code == 0, trained.stderr
    run = Path(json.loads(trained.stdout)["run_dir"])
    inputs = tmp_path / "new.csv"
    inputs.write_text("text\ngreat movie\nawful movie\n")
    result = runner.invoke(cli, ["predict", str(run), str(inputs)])
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)["predictions"]
    import tensorflow as tf

    model = keras.models.load_model(run / "model.keras")
    expected = np.asarray(model(tf.constant([["great movie"], ["awful movie"]])))[:, 0]
    assert [r["class_index"] for r in got] == (expected > 0.5).astype(int).tolist()
    chosen = np.where(expected > 0.5, expected, 1 - expected)
    assert [r["probability"] for r in got] == pytest.approx(chosen.tolist(), abs=1e-5)
