"""CLI behaviour of evaluate/export/predict/plot that needs no trained model: usage errors and help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dlkit.cli.main import cli


@pytest.fixture
def untrained_run(tmp_path: Path) -> Path:
    """A run folder with an untrained model (enough for argument checks)."""
    import keras

    run = tmp_path / "runs" / "tiny" / "001"
    run.mkdir(parents=True)
    np_file = tmp_path / "train.npz"
    import numpy as np

    np.savez(np_file, x=np.zeros((20, 4), "float32"), y=np.zeros(20, "int64"))
    raw = {
        "name": "tiny",
        "data": {"source": "npz", "train": str(np_file), "validation_split": 0.2},
        "model": {"input_shape": [4], "layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]},
        "loss": {"type": "sparse_categorical_crossentropy"},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")]).save(run / "model.keras")
    return run


def test_export_help_lists_formats_from_the_table(runner) -> None:
    result = runner.invoke(cli, ["export", "--help"])
    assert result.exit_code == 0
    assert "saved_model  TensorFlow SavedModel folder" in result.stdout
    assert "int8         full-integer" in result.stdout


def test_unknown_format_is_exit_2_with_suggestion_and_writes_nothing(runner, untrained_run: Path) -> None:
    result = runner.invoke(cli, ["export", str(untrained_run), "--format", "tflit"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --format: unknown value, expected one of saved_model, tflite, keras, onnx (got 'tflit'). "
        "Did you mean 'tflite'?"
    )
    assert not (untrained_run / "export").exists()


def test_quantize_without_tflite_is_exit_2(runner, untrained_run: Path) -> None:
    result = runner.invoke(cli, ["export", str(untrained_run), "--format", "saved_model", "--quantize", "int8"])
    assert result.exit_code == 2
    assert "--quantize: quantization applies to tflite only (got int8). Add --format tflite." in result.stderr


def test_missing_onnx_packages_is_exit_5_naming_what_to_install(runner, untrained_run: Path, monkeypatch) -> None:
    import dlkit.export.onnx_format as onnx_format

    monkeypatch.setattr(onnx_format, "missing_packages", lambda: ["tf2onnx", "onnx"])
    result = runner.invoke(cli, ["export", str(untrained_run), "--format", "onnx,keras", "--no-verify", "--json"])
    assert result.exit_code == 5
    report = json.loads(result.stdout)
    onnx = next(a for a in report["artifacts"] if a["format"] == "onnx")
    assert onnx["error"] == (
        "the onnx format needs tf2onnx, onnx, which are not installed. "
        "pip install tf2onnx onnx (or: pip install 'dlkit[onnx]')."
    )
    assert (untrained_run / "export" / "model.keras").is_file()  # the other artifact is kept


def test_evaluate_missing_target_is_exit_2(runner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "TARGET: no such file or folder (got " in result.stderr


def test_evaluate_bad_split_is_exit_2(runner, untrained_run: Path) -> None:
    result = runner.invoke(cli, ["evaluate", str(untrained_run), "--split", "tests"])
    assert result.exit_code == 2
    assert "Invalid value for '--split'" in result.stderr


def test_predict_output_must_be_csv_or_json(runner, untrained_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["predict", str(untrained_run), str(tmp_path / "x.npz"), "-o", "out.txt"])
    assert result.exit_code == 2
    assert "--output: expected a .csv or .json file name (got out.txt)" in result.stderr


def test_plot_without_metrics_is_a_data_error(runner, untrained_run: Path) -> None:
    result = runner.invoke(cli, ["plot", str(untrained_run)])
    assert result.exit_code == 3
    assert "no metrics.csv: the run has not finished an epoch yet" in result.stderr


def test_not_a_run_folder_is_exit_2(runner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["export", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a dlkit run folder" in result.stderr


def test_unknown_plugin_is_exit_2(runner, untrained_run: Path) -> None:
    result = runner.invoke(cli, ["evaluate", str(untrained_run), "--plugin", "no_such_dlkit_plugin"])
    assert result.exit_code == 2
    assert "--plugin no_such_dlkit_plugin: cannot import plugin module 'no_such_dlkit_plugin'" in result.stderr
