"""``dlkit train`` in-process: run folder, JSON output, exit codes, resume refusals, divergence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlkit.cli.main import cli

CONFIG = """
name: tiny
seed: 7
data: {source: synthetic, samples: 192, batch_size: 32, validation_split: 0.25}
model:
  input_shape: [8]
  layers:
    - {type: Dense, units: 16, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
optimizer: {type: adam, learning_rate: 0.01, global_clipnorm: 1.0}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 2}
"""


pytestmark = pytest.mark.usefixtures("float32_policy")


@pytest.fixture
def config(write_config):
    return write_config(CONFIG)


def _train(runner, *args):
    result = runner.invoke(cli, ["train", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(path, compile=False).get_weights()


@pytest.mark.slow
def test_train_writes_the_run_folder_and_json(runner, config, tmp_path):
    runs = tmp_path / "runs"
    result = _train(runner, config, "--runs-dir", runs, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"run_dir", "epochs", "metrics", "status"}
    assert out["status"] == "completed" and out["epochs"] == 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(out["metrics"])
    run = Path(out["run_dir"])
    assert run == (runs / "tiny" / "001").resolve()
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "run.json", "metrics.csv", "tensorboard", "checkpoints", "model.keras"} <= names
    ckpt = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"best.keras", "last.keras", "epoch-0002.weights.h5", "epoch-0002.json"} <= ckpt
    assert not [n for n in names | ckpt if ".tmp" in n]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_done"] == 2
    assert info["precision"] == "float32" and info["seed"] == 7 and info["device"]["kind"] == "cpu"
    assert {"dlkit", "tensorflow", "keras", "python"} <= set(info["versions"])
    assert info["data"]["fingerprint"] and info["data"]["samples"]["train"] == 144
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    columns = header.split(",")
    assert columns[:2] == ["epoch", "loss"]
    assert {"val_loss", "lr", "grad_norm", "clipped_frac", "time", "samples_per_s"} <= set(columns)
    assert [r.split(",")[0] for r in rows] == ["1", "2"]
    assert np.isclose(float(rows[-1].split(",")[1]), out["metrics"]["loss"])


def test_dry_run_writes_nothing(runner, config, tmp_path):
    result = _train(runner, config, "--runs-dir", tmp_path / "runs", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "dry run: nothing was written" in result.stderr
    assert "steps_per_execution: 5" in result.stderr  # auto: min(32, steps per epoch = ceil(144 / 32))
    assert not (tmp_path / "runs").exists()


def test_config_error_exits_2_before_writing(runner, write_config, tmp_path):
    bad = write_config(CONFIG.replace("activation: relu", "activaton: relu"))
    result = _train(runner, bad, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "activaton" in result.stderr and "Did you mean 'activation'?" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_data_error_exits_3_before_writing(runner, write_config, tmp_path):
    bad = write_config(CONFIG.replace("{source: synthetic,", "{source: csv, label: y, train: missing.csv,"))
    result = _train(runner, bad, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 3, result.stderr
    assert "missing.csv" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_usage_errors(runner, config):
    assert _train(runner).exit_code == 2
    result = _train(runner, config, "--resume", "x")
    assert result.exit_code == 2 and "not both" in result.stderr
    result = _train(runner, "--resume", "does-not-exist")
    assert result.exit_code == 2 and "not a dlkit run folder" in result.stderr


@pytest.mark.slow
def test_resume_refuses_a_changed_model_naming_the_key(runner, config, tmp_path):
    runs = tmp_path / "runs"
    assert _train(runner, config, "--runs-dir", runs).exit_code == 0
    run = runs / "tiny" / "001"
    result = _train(runner, "--resume", run, "--set", "model.layers[0].units=32", "--set", "training.epochs=3")
    assert result.exit_code == 2
    assert "model.layers[0].units: changed: 16 -> 32" in result.stderr
    # An edit of the run's own config.yaml is caught too.
    cfg = run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("learning_rate: 0.01", "learning_rate: 0.02"))
    result = _train(runner, "--resume", run, "--set", "training.epochs=3")
    assert result.exit_code == 2
    assert "optimizer.learning_rate: changed: 0.01 -> 0.02" in result.stderr


@pytest.mark.slow
def test_resume_of_a_finished_run_trains_more_and_matches_an_uninterrupted_run(runner, config, tmp_path):
    runs = tmp_path / "runs"
    assert _train(runner, config, "--runs-dir", runs, "--set", "training.epochs=3").exit_code == 0
    assert _train(runner, config, "--runs-dir", runs).exit_code == 0
    resumed = runs / "tiny" / "002"
    result = _train(runner, "--resume", resumed)
    assert result.exit_code == 2 and "--set training.epochs=" in result.stderr  # nothing left to train
    # Corrupt the newest checkpoint: resume falls back to epoch 1 and still ends where the 3-epoch run did.
    newest = resumed / "checkpoints" / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[:64])
    result = _train(runner, "--resume", resumed, "--set", "training.epochs=3", "--json")
    assert result.exit_code == 0, result.stderr
    assert "epoch-0002.weights.h5 is corrupted or unreadable" in result.stderr
    assert json.loads(result.stdout)["epochs"] == 3
    reference = _weights(runs / "tiny" / "001" / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(reference, _weights(resumed / "model.keras"), strict=True))
    rows = (resumed / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2", "3"]
    cut = lambda lines: [line.split(",")[:4] for line in lines]  # noqa: E731 - loss/metrics; timings differ
    assert cut(rows) == cut((runs / "tiny" / "001" / "metrics.csv").read_text().splitlines()[1:])
    info = json.loads((resumed / "run.json").read_text())
    assert info["status"] == "completed" and info["resumes"][0]["from_epoch"] == 1


@pytest.mark.slow
def test_divergence_exits_4_and_keeps_the_last_good_checkpoint(runner, write_config, tmp_path):
    # The learning rate jumps by 1e12 after the first epoch (6 steps): epoch 1 is fine, epoch 2 diverges.
    text = CONFIG.replace(
        "optimizer: {type: adam, learning_rate: 0.01, global_clipnorm: 1.0}",
        "optimizer: {type: sgd, learning_rate: {type: ExponentialDecay, initial_learning_rate: 0.01,"
        " decay_steps: 5, decay_rate: 1.0e+12, staircase: true}}",
    )
    runs = tmp_path / "runs"
    result = _train(runner, write_config(text), "--runs-dir", runs, "--set", "training.epochs=3")
    assert result.exit_code == 4, result.stderr
    assert "training diverged: loss became" in result.stderr and "at epoch 2, batches 1-5" in result.stderr
    assert "The checkpoint after epoch 1 is kept" in result.stderr
    run = runs / "tiny" / "001"
    assert json.loads((run / "run.json").read_text())["status"] == "diverged"
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch-*")) == ["epoch-0001.json", "epoch-0001.weights.h5"]
    assert all(np.isfinite(w).all() for w in _weights(run / "checkpoints" / "last.keras"))
    assert not (run / "model.keras").exists()


@pytest.mark.slow
def test_nan_recovery_retries_with_a_lower_learning_rate(runner, write_config, tmp_path):
    text = CONFIG.replace(
        "optimizer: {type: adam, learning_rate: 0.01, global_clipnorm: 1.0}",
        "optimizer: {type: sgd, learning_rate: 1.0e+30}",
    )
    runs = tmp_path / "runs"
    result = _train(runner, write_config(text), "--runs-dir", runs, "--set", "training.nan_recovery=2")
    assert result.exit_code == 4
    assert "retry 1/2 from epoch 0 with learning rate 5e+29" in result.stderr
    assert "retry 2/2 from epoch 0 with learning rate 2.5e+29" in result.stderr
    info = json.loads((runs / "tiny" / "001" / "run.json").read_text())
    assert info["nan_recoveries"] == 2 and info["status"] == "diverged"


@pytest.mark.slow
def test_early_stopping_state_survives_resume(runner, write_config, tmp_path):
    # mode max on a falling loss: best stays epoch 1's loss and `wait` must keep counting across the resume.
    text = CONFIG + "callbacks:\n  - {type: EarlyStopping, monitor: loss, mode: max, patience: 10}\n"
    runs = tmp_path / "runs"
    assert _train(runner, write_config(text), "--runs-dir", runs).exit_code == 0
    run = runs / "tiny" / "001"
    assert _train(runner, "--resume", run, "--set", "training.epochs=4").exit_code == 0
    state = json.loads((run / "checkpoints" / "epoch-0004.json").read_text())["callbacks"][0]
    first_loss = float((run / "metrics.csv").read_text().splitlines()[1].split(",")[1])
    assert state["class"] == "EarlyStopping" and state["wait"] == 3
    assert np.isclose(state["best"], first_loss)


def test_interruption_is_not_rendered_as_an_error(runner, config, monkeypatch):
    from dlkit.errors import Interrupted
    from dlkit.training import trainer

    def stopped(*args, **kwargs):
        raise Interrupted("interrupted by SIGTERM during epoch 2; the checkpoint after epoch 1 is kept.", 15)

    monkeypatch.setattr(trainer, "train_files", stopped)
    result = _train(runner, config)
    assert result.exit_code == 143
    assert result.stderr == "Interrupted by SIGTERM during epoch 2; the checkpoint after epoch 1 is kept.\n"


def test_a_non_chief_worker_says_the_chief_wrote_the_run_folder(runner, config, monkeypatch):
    from dlkit.training import trainer

    done = trainer.TrainResult(None, 2, {"loss": 0.5}, "completed", worker="worker-1")
    monkeypatch.setattr(trainer, "train_files", lambda *args, **kwargs: done)
    result = _train(runner, config)
    assert result.exit_code == 0
    assert result.stderr == "worker-1 completed: 2 epochs; the chief wrote the run folder\n"
    out = json.loads(_train(runner, config, "--json").stdout)
    assert out["worker"] == "worker-1" and out["run_dir"] is None


def test_worker_result_names_the_cluster_role():
    from types import SimpleNamespace

    from dlkit.training import trainer

    resolver = SimpleNamespace(task_type="worker", task_id=1)
    strategy = SimpleNamespace(cluster_resolver=resolver)
    session = SimpleNamespace(strategy=strategy)
    scratch = trainer.TrainResult(Path("/tmp/scratch-gone"), 3, {}, "completed")
    result = trainer._worker_result(session, scratch)
    assert result.run_dir is None and result.worker == "worker-1" and result.epochs == 3


def test_dry_run_prints_human_text_not_python_reprs(runner, config, tmp_path):
    result = _train(runner, config, "--runs-dir", tmp_path / "runs", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "samples: train 144, validation 48" in result.stderr
    device = next(line for line in result.stderr.splitlines() if line.startswith("device: "))
    assert "{" not in result.stderr and "'" not in device and device.startswith("device: cpu")


def test_a_callback_keras_refuses_during_fit_is_a_config_error_and_json_still_prints(runner, config, tmp_path):
    runs = tmp_path / "runs"
    result = _train(
        runner,
        config,
        "--runs-dir",
        runs,
        "--json",
        "--set",
        "training.epochs=1",
        "--set",
        # config check does not build callbacks, so only Keras, comparing the loss with it, finds the bad baseline
        "callbacks=[{type: EarlyStopping, monitor: loss, baseline: high}]",
    )
    assert result.exit_code == 2, result.stderr
    assert "callbacks[0]: EarlyStopping failed: " in result.stderr
    assert "internal error" not in result.stderr
    import keras

    assert keras.config.is_traceback_filtering_enabled()  # off only while fit ran
    out = json.loads(result.stdout)
    assert out["status"] == "failed" and out["run_dir"] == str(runs / "tiny" / "001")
    assert json.loads((runs / "tiny" / "001" / "run.json").read_text())["status"] == "failed"


def test_first_epoch_divergence_says_there_is_no_checkpoint_and_json_prints(runner, write_config, tmp_path):
    text = CONFIG.replace(
        "optimizer: {type: adam, learning_rate: 0.01, global_clipnorm: 1.0}",
        "optimizer: {type: sgd, learning_rate: 1.0e+30}",
    )
    runs = tmp_path / "runs"
    result = _train(runner, write_config(text), "--runs-dir", runs, "--json", "--set", "training.epochs=1")
    assert result.exit_code == 4, result.stderr
    assert "No epoch finished, so there is no checkpoint to resume from" in result.stderr
    assert "checkpoint after epoch 0" not in result.stderr
    out = json.loads(result.stdout)
    assert out == {"run_dir": str(runs / "tiny" / "001"), "epochs": 0, "metrics": {}, "status": "diverged"}
    timings = json.loads((runs / "tiny" / "001" / "run.json").read_text())["timings"]
    assert timings["process_start"] <= timings["first_step_at"]


def test_a_corrupt_image_found_during_fit_is_a_data_error(runner, write_config, tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        folder = tmp_path / "imgs" / label
        folder.mkdir(parents=True)
        for i in range(8):
            Image.new("L", (8, 8), color=i * 20).save(folder / f"{i}.png")
    good = (tmp_path / "imgs" / "a" / "0.png").read_bytes()
    (tmp_path / "imgs" / "a" / "zz.png").write_bytes(good[:60])  # valid header, truncated body
    text = f"""
name: imgs
data: {{source: images, train: {tmp_path / "imgs"}, image_size: [8, 8], color_mode: grayscale, batch_size: 4}}
model:
  input_shape: [8, 8, 1]
  layers: [Flatten, {{type: Dense, units: 2, activation: softmax}}]
loss: sparse_categorical_crossentropy
training: {{epochs: 1}}
"""
    runs = tmp_path / "runs"
    result = _train(runner, write_config(text), "--runs-dir", runs, "--json")
    assert result.exit_code == 3, result.stderr
    assert "error: reading the training data failed during training: Invalid PNG data, size 60" in result.stderr
    assert "Graph execution error" not in result.stderr and "internal error" not in result.stderr
    assert json.loads(result.stdout)["status"] == "failed"
    assert json.loads((runs / "imgs" / "001" / "run.json").read_text())["status"] == "failed"


def test_keras_absl_warnings_are_dlkit_warning_lines(runner, config, tmp_path):
    result = _train(
        runner,
        config,
        "--runs-dir",
        tmp_path / "runs",
        "--set",
        "training.epochs=1",
        "--set",
        "callbacks=[{type: ModelCheckpoint, filepath: best.h5}]",
    )
    assert result.exit_code == 0, result.stderr
    assert "WARNING:absl" not in result.stderr
    assert "warning: You are saving your model as an HDF5 file" in result.stderr
    assert (tmp_path / "runs" / "tiny" / "001" / "best.h5").is_file()
