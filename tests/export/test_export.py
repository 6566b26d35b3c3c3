"""dlkit export end to end on a trained digits MLP: every format and quantization, verified in its own runtime."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from export_helpers import digits_config, set_export, write_run

from dlkit.cli.main import cli


def _export(runner, *args: str):
    result = runner.invoke(cli, ["export", *args], catch_exceptions=False)
    return result


def _by_name(report: dict) -> dict[str, dict]:
    return {Path(a["path"]).name: a for a in report["artifacts"]}


def _independent_accuracy(path: Path, test_npz: str) -> float:
    """Score a .tflite file with the LiteRT interpreter directly, without any dlkit code."""
    from ai_edge_litert.interpreter import Interpreter

    data = np.load(test_npz)
    it = Interpreter(model_path=str(path))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.resize_tensor_input(inp["index"], [len(data["x"]), 8, 8, 1])
    it.allocate_tensors()
    x = data["x"]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    it.set_tensor(inp["index"], x)
    it.invoke()
    return float(np.mean(it.get_tensor(out["index"]).argmax(-1) == data["y"]))


@pytest.mark.slow
def test_every_format_and_quantization_is_verified(runner, digits_run: Path) -> None:
    result = _export(
        runner,
        str(digits_run),
        "--format",
        "saved_model,tflite",
        "--format",
        "keras",
        "--format",
        "onnx",
        "--quantize",
        "none,dynamic,float16,int8",
        "--calibration-samples",
        "400",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    arts = _by_name(report)
    assert set(arts) == {
        "saved_model",
        "model.tflite",
        "model_dynamic.tflite",
        "model_float16.tflite",
        "model_int8.tflite",
        "model.keras",
        "model.onnx",
    }
    for art in report["artifacts"]:
        assert set(art) >= {"format", "quantize", "path", "bytes", "max_abs_diff", "metrics", "metric_delta"}
        assert art["verified"] is True, art
        assert Path(art["path"]).exists()
        assert art["bytes"] > 1000
        assert art["latency_ms"] > 0
    float_names = ("saved_model", "model.tflite", "model.keras", "model.onnx")
    for name in float_names:
        assert arts[name]["max_abs_diff"] <= 1e-4
        assert abs(arts[name]["metric_delta"]) < 1e-9  # same predictions, same accuracy
    assert arts["model_int8.tflite"]["max_abs_diff"] > 1e-4  # it really is quantized
    assert arts["model_int8.tflite"]["metric_delta"] >= -0.01
    assert arts["model_int8.tflite"]["bytes"] <= 0.35 * arts["model.tflite"]["bytes"]
    assert arts["model_dynamic.tflite"]["bytes"] <= 0.35 * arts["model.tflite"]["bytes"]
    assert arts["model_float16.tflite"]["bytes"] <= 0.6 * arts["model.tflite"]["bytes"]
    assert report["verify"] == {
        "split": "test",
        "samples": 347,
        "task": "classification",
        "tolerance": 1e-4,
        "max_metric_drop": 0.01,
    }
    assert report["calibration_samples"] == 400
    on_disk = json.loads((digits_run / "export" / "export_report.json").read_text())
    assert on_disk["artifacts"] == report["artifacts"]
    # held-out scoring without dlkit agrees with dlkit's report
    test_npz = yaml.safe_load((digits_run / "config.yaml").read_text())["data"]["test"]
    ref = report["reference"]["metrics"]["accuracy"]
    assert ref > 0.85
    for name in ("model.tflite", "model_int8.tflite"):
        accuracy = _independent_accuracy(digits_run / "export" / name, test_npz)
        assert accuracy == pytest.approx(arts[name]["metrics"]["accuracy"], abs=1e-9)
    assert _independent_accuracy(digits_run / "export" / "model.tflite", test_npz) == pytest.approx(ref, abs=1e-9)


@pytest.mark.slow
def test_defaults_from_config_and_never_merged(runner, digits_run: Path) -> None:
    first = _export(runner, str(digits_run.parent), "--json")  # runs/<name> -> newest run
    assert first.exit_code == 0, first.stderr
    assert sorted(a["format"] for a in json.loads(first.stdout)["artifacts"]) == ["saved_model", "tflite"]
    second = _export(runner, str(digits_run), "--format", "tflite", "--no-verify", "--json")
    assert second.exit_code == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["export_dir"] == str(digits_run / "export-2")
    assert report["artifacts"][0]["verified"] is None
    assert sorted(p.name for p in (digits_run / "export").iterdir()) == [
        "export_report.json",
        "model.tflite",
        "saved_model",
    ]
    assert sorted(p.name for p in (digits_run / "export-2").iterdir()) == ["export_report.json", "model.tflite"]
    assert not [p for p in digits_run.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.slow
def test_failed_verification_exits_5_and_keeps_artifacts(runner, digits_run: Path) -> None:
    set_export(digits_run, tolerance=1e-12, max_metric_drop=0.0)
    result = _export(
        runner,
        str(digits_run),
        "--format",
        "tflite",
        "--quantize",
        "none,int8",
        "--calibration-samples",
        "100",
        "--json",
    )
    assert result.exit_code == 5, result.stderr
    report = json.loads(result.stdout)
    assert report["calibration_samples"] == 100
    assert "int8 is calibrated on only 100 training samples (fewer than 300)" in report["warnings"][0]
    assert "warning: int8 is calibrated on only 100 training samples" in result.stderr
    arts = _by_name(report)
    assert arts["model.tflite"]["verified"] is False
    assert "exceeds export.tolerance 1e-12" in arts["model.tflite"]["error"]
    assert (digits_run / "export" / "model.tflite").is_file()
    assert (digits_run / "export" / "model_int8.tflite").is_file()
    assert json.loads((digits_run / "export" / "export_report.json").read_text())["ok"] is False
    assert "failed; everything produced is kept in" in result.stderr
    assert "model.keras" in {p.name for p in digits_run.iterdir()}


@keras.saving.register_keras_serializable("dlkit_tests")
class InverseErf(keras.layers.Layer):
    """A layer whose op (Erfinv) is neither a TFLite builtin nor a Flex op."""

    def call(self, x):
        return tf.math.erfinv(tf.clip_by_value(x, -0.9, 0.9))


@keras.saving.register_keras_serializable("dlkit_tests")
class CumProd(keras.layers.Layer):
    """A layer whose op (Cumprod) exists only as a TensorFlow kernel (Flex)."""

    def call(self, x):
        return tf.math.cumprod(x, axis=-1)


def _custom_run(root: Path, layer: keras.layers.Layer, files: dict[str, str]) -> Path:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(0.0625),
            keras.layers.Flatten(),
            layer,
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return write_run(root / "runs" / "custom" / "001", model, digits_config(files))


def _files(template: Path) -> dict[str, str]:
    root = template.parents[2]
    return {s: str(root / f"{s}.npz") for s in ("train", "validation", "test")}


@pytest.mark.slow
def test_conversion_failure_names_layer_and_op_and_keeps_other_artifacts(
    runner, digits_template: Path, tmp_path: Path
) -> None:
    run = _custom_run(tmp_path, InverseErf(name="inverse_erf"), _files(digits_template))
    result = _export(runner, str(run), "--format", "saved_model,tflite", "--json")
    assert result.exit_code == 5, result.stderr
    arts = _by_name(json.loads(result.stdout))
    assert arts["saved_model"]["verified"] is True
    error = arts["model.tflite"]["error"]
    assert "conversion failed: Erfinv (layer 'inverse_erf') is neither builtin TFLite nor Flex ops" in error
    assert "loc(" not in error and "func.func" not in error  # no MLIR dump
    assert (run / "export" / "saved_model" / "saved_model.pb").is_file()
    assert "tflite (none)" in result.stderr


@pytest.mark.slow
def test_flex_ops_are_reported_plainly(runner, digits_template: Path, tmp_path: Path) -> None:
    run = _custom_run(tmp_path, CumProd(name="cum_prod"), _files(digits_template))
    result = _export(runner, str(run), "--format", "tflite", "--quantize", "none,int8", "--json")
    assert result.exit_code == 5, result.stderr  # int8 cannot fall back to Flex
    arts = _by_name(json.loads(result.stdout))
    flt = arts["model.tflite"]
    assert flt["flex_ops"] == ["Cumprod"]
    assert "needs the Flex delegate (SELECT_TF_OPS) for Cumprod (layer 'cum_prod')" in flt["notes"][0]
    # no Flex delegate ships with the Python interpreters: say so instead of claiming it verified
    assert flt["verified"] is False
    assert "needs the Flex delegate (SELECT_TF_OPS), which neither ai_edge_litert nor" in flt["error"]
    assert (run / "export" / "model.tflite").is_file()
    assert "Cumprod (layer 'cum_prod') has no int8 builtin kernel" in arts["model_int8.tflite"]["error"]
    assert "note: tflite (none): needs the Flex delegate" in result.stderr


@pytest.mark.slow
def test_mixed_precision_model_exports_with_builtin_ops(runner, digits_template: Path, tmp_path: Path) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Rescaling(0.0625),
                keras.layers.Flatten(),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(10),
                keras.layers.Activation("softmax", dtype="float32"),
            ]
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    from export_helpers import digits_config

    run = write_run(tmp_path / "runs" / "bf16" / "001", model, digits_config(_files(digits_template)))
    result = _export(runner, str(run), "--format", "tflite", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["artifacts"][0]["flex_ops"] == [] and report["artifacts"][0]["verified"] is True
    assert report["reference"]["mixed_precision"]["max_abs_diff_vs_trained"] > 0
    assert "trained in mixed precision; its float32 rebuild (same weights) is exported" in report["warnings"][0]


@pytest.mark.slow
def test_recurrent_model_converts_with_batch_one_and_int8_is_refused(runner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 60), ("test", 20)):
        files[split] = str(tmp_path / f"{split}.npz")
        np.savez(files[split], x=rng.normal(size=(n, 6, 3)).astype("float32"), y=rng.integers(0, 2, n))
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(4), keras.layers.Dense(2, activation="softmax")])
    raw = {
        "name": "seq",
        "data": {"source": "npz", **files, "validation_split": 0.1},
        "model": {"input_shape": [6, 3], "layers": [{"type": "LSTM", "units": 4}, {"type": "Dense", "units": 2}]},
        "loss": {"type": "sparse_categorical_crossentropy"},
    }
    run = write_run(tmp_path / "runs" / "seq" / "001", model, raw)
    result = _export(runner, str(run), "--format", "tflite", "--quantize", "none,int8", "--json")
    assert result.exit_code == 5, result.stderr  # and no segfault in the int8 calibrator
    arts = _by_name(json.loads(result.stdout))
    assert arts["model.tflite"]["verified"] is True and arts["model.tflite"]["max_abs_diff"] <= 1e-4
    assert arts["model.tflite"]["notes"] == [
        "converted with a fixed batch size of 1 (recurrent layers need static shapes in TFLite)"
    ]
    assert "int8 full-integer quantization does not support recurrent layers" in arts["model_int8.tflite"]["error"]
