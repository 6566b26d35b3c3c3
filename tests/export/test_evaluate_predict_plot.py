"""dlkit evaluate, predict and plot on a trained digits run (and a tiny regression run)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from export_helpers import write_run
from PIL import Image

from dlkit.cli.main import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(run: Path, split: str) -> dict[str, np.ndarray]:
    raw = yaml.safe_load((run / "config.yaml").read_text())
    return dict(np.load(raw["data"][split]))


def _keras_accuracy(run: Path, split: str) -> float:
    data = _data(run, split)
    model = keras.models.load_model(run / "model.keras")
    return float(np.mean(model.predict(data["x"], verbose=0).argmax(-1) == data["y"]))


@pytest.mark.slow
def test_evaluate_json_eval_file_and_confusion_matrix(runner, digits_run: Path) -> None:
    result = runner.invoke(cli, ["evaluate", str(digits_run), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["split"] == "test" and out["samples"] == 347
    assert set(out["metrics"]) >= {"loss", "accuracy", "macro_f1"}
    assert out["metrics"]["accuracy"] == pytest.approx(_keras_accuracy(digits_run, "test"), abs=1e-9)
    assert 0 < out["metrics"]["loss"] < 1.5
    assert len(out["per_class"]) == 10 and sum(r["support"] for r in out["per_class"]) == 347
    assert np.array(out["confusion_matrix"]).sum() == 347
    saved = json.loads((digits_run / "eval.json").read_text())
    assert saved["metrics"] == out["metrics"]
    assert (digits_run / "plots" / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    assert "per class" in result.stderr  # tables go to stderr with --json

    validation = runner.invoke(cli, ["evaluate", str(digits_run), "--split", "validation", "--json"])
    assert json.loads(validation.stdout)["samples"] == 250

    test_file = yaml.safe_load((digits_run / "config.yaml").read_text())["data"]["test"]
    other = runner.invoke(cli, ["evaluate", str(digits_run), "--data", test_file, "--json"])
    assert other.exit_code == 0, other.stderr
    assert json.loads(other.stdout)["metrics"]["accuracy"] == out["metrics"]["accuracy"]
    assert json.loads(other.stdout)["split"] == "test:test.npz"


@pytest.mark.slow
def test_evaluate_scores_exported_artifacts_the_same_way(runner, digits_run: Path) -> None:
    exported = runner.invoke(cli, ["export", str(digits_run), "--format", "tflite,saved_model", "--no-verify"])
    assert exported.exit_code == 0, exported.stderr
    expected = _keras_accuracy(digits_run, "test")
    artifact = digits_run / "export" / "model.tflite"
    result = runner.invoke(cli, ["evaluate", str(artifact), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["kind"] == "tflite" and out["engine"] == "ai_edge_litert"
    assert out["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-9)
    saved = runner.invoke(cli, ["evaluate", str(digits_run / "export" / "saved_model"), "--json"])
    assert saved.exit_code == 0, saved.stderr
    assert json.loads(saved.stdout)["kind"] == "saved_model"
    assert json.loads(saved.stdout)["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert (digits_run / "eval-model.tflite.json").is_file()
    assert (digits_run / "plots" / "confusion_matrix-model.tflite.png").is_file()


@pytest.mark.slow
def test_evaluate_regression_reports_mae_mse_r2(runner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32") + 0.3).astype("float32")
    files = {}
    for split, part in {"train": slice(0, 200), "test": slice(200, 300)}.items():
        files[split] = str(tmp_path / f"{split}.npz")
        np.savez(files[split], x=x[part], y=y[part])
    norm = keras.layers.Normalization()
    norm.adapt(x[:200])
    model = keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(x[:200], y[:200], epochs=30, verbose=0)
    raw = {
        "name": "reg",
        "data": {"source": "npz", **files, "validation_split": 0.1, "preprocessing": [{"type": "Normalization"}]},
        "model": {"input_shape": [4], "layers": [{"type": "Dense", "units": 1}]},
        "loss": {"type": "mean_squared_error"},
    }
    run = write_run(tmp_path / "runs" / "reg" / "001", model, raw)
    result = runner.invoke(cli, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert set(metrics) >= {"loss", "mae", "mse", "rmse", "r2"}
    pred = model.predict(x[200:], verbose=0)[:, 0]
    assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(pred - y[200:]))), rel=1e-5)
    assert metrics["mse"] == pytest.approx(metrics["loss"], rel=1e-5)
    assert metrics["r2"] > 0.9
    assert "per_class" not in json.loads(result.stdout)

    args = ["export", str(run), "--format", "tflite,onnx", "--quantize", "none,dynamic", "--json"]
    exported = runner.invoke(cli, args)
    assert exported.exit_code == 0, exported.stderr
    report = json.loads(exported.stdout)
    assert report["verify"]["task"] == "regression"
    assert report["reference"]["metrics"]["mae"] == pytest.approx(metrics["mae"], rel=1e-5)
    assert [a["verified"] for a in report["artifacts"]] == [True, True, True]
    assert report["artifacts"][0]["max_abs_diff"] <= 1e-4
    # Keras' ONNX export leaves an adapted Normalization's constants as graph inputs; dlkit re-converts
    onnx = report["artifacts"][2]
    assert onnx["format"] == "onnx" and onnx["max_abs_diff"] <= 1e-4
    assert onnx["notes"][0].startswith("re-converted from a frozen graph: Keras' export left ")


@pytest.mark.slow
def test_predict_csv_npz_and_png(runner, digits_run: Path, tmp_path: Path) -> None:
    test = _data(digits_run, "test")
    npz = tmp_path / "few.npz"
    np.savez(npz, x=test["x"][:3], y=test["y"][:3])
    table = tmp_path / "few.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"pixel{i}" for i in range(64)] + ["label"])  # label column is ignored
        for row, label in zip(test["x"][3:5].reshape(2, 64), test["y"][3:5], strict=True):
            writer.writerow([*row.tolist(), int(label)])
    image = tmp_path / "digit.png"
    Image.fromarray(test["x"][5, :, :, 0].astype("uint8"), mode="L").save(image)

    stdout = runner.invoke(cli, ["predict", str(digits_run), str(npz), str(table), str(image), "--top-k", "2"])
    assert stdout.exit_code == 0, stdout.stderr
    rows = json.loads(stdout.stdout)["predictions"]
    assert [r["id"] for r in rows] == ["few.npz[0]", "few.npz[1]", "few.npz[2]", "few.csv:2", "few.csv:3", "digit.png"]
    expected = keras.models.load_model(digits_run / "model.keras").predict(test["x"][:6], verbose=0)
    assert [r["class_index"] for r in rows] == expected.argmax(-1).tolist()
    assert [r["probability"] for r in rows] == pytest.approx(expected.max(-1).tolist(), abs=1e-5)
    assert all(len(r["top_k"]) == 2 and r["top_k"][0]["class"] == r["class"] for r in rows)

    out_csv = tmp_path / "pred.csv"
    written = runner.invoke(cli, ["predict", str(digits_run / "model.keras"), str(npz), "-o", str(out_csv)])
    assert written.exit_code == 0, written.stderr
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "id,class,probability,top_k" and len(lines) == 4
    assert lines[1].startswith(f"few.npz[0],{rows[0]['class']},")

    out_json = tmp_path / "pred.json"
    runner.invoke(cli, ["predict", str(digits_run), str(table), "-o", str(out_json)])
    assert [r["id"] for r in json.loads(out_json.read_text())["predictions"]] == ["few.csv:2", "few.csv:3"]


@pytest.mark.slow
def test_predict_rejects_inputs_that_do_not_fit(runner, digits_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner.invoke(cli, ["predict", str(digits_run), str(bad)])
    assert result.exit_code == 3
    assert "each input has shape (2,) but the model takes (8, 8, 1)" in result.stderr


@pytest.mark.slow
def test_plot_learning_curves_and_confusion_matrix(runner, digits_run: Path) -> None:
    assert runner.invoke(cli, ["evaluate", str(digits_run)]).exit_code == 0
    result = runner.invoke(cli, ["plot", str(digits_run)])
    assert result.exit_code == 0, result.stderr
    paths = [Path(p) for p in result.stdout.split()]
    assert [p.name for p in paths] == ["learning_curves.png", "confusion_matrix.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_predict_image_folder_run_names_classes(runner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (10, 12), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "train" / name / f"{i}.png")
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )
    raw = {
        "name": "pets",
        "data": {"source": "images", "train": str(tmp_path / "train"), "color_mode": "grayscale"},
        "model": {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]},
        "loss": {"type": "sparse_categorical_crossentropy"},
    }
    run = write_run(tmp_path / "runs" / "pets" / "001", model, raw)
    image = tmp_path / "train" / "dog" / "0.png"  # 10x12: resized to 8x8 like the training pipeline
    result = runner.invoke(cli, ["predict", str(run), str(image), "--top-k", "5"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["predictions"][0]
    assert row["id"] == "0.png"
    assert {t["class"] for t in row["top_k"]} == {"cat", "dog"}
    decoded = keras.ops.convert_to_numpy(
        keras.ops.image.resize(np.asarray(Image.open(image), "float32")[None, ..., None], (8, 8))
    )
    expected = model.predict(decoded, verbose=0)[0]
    assert row["probability"] == pytest.approx(float(expected.max()), abs=1e-5)
