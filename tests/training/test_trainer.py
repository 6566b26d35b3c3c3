"""The training engine's integration points: canonical resume checks, strategy set-up, run.json contents,
plugins across processes, build errors located in the config, op determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from dlkit.training import frozen as frozen_mod
from dlkit.training import trainer

TINY = """
name: tiny
seed: 3
data: {source: synthetic, samples: 48, num_classes: 3, batch_size: 16}
model:
  input_shape: [4]
  layers:
    - {type: Dense, units: 8, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
optimizer: {type: adam, global_clipnorm: 1.0}
loss: sparse_categorical_crossentropy
training: {epochs: 1}
"""

# Aliases everywhere and no optimizer section (the default optimizer): nothing here may count as "changed".
ALIASES = """
name: alias
seed: 3
data: {source: synthetic, samples: 32, num_classes: 2, batch_size: 16}
model:
  input_shape: [6, 6, 1]
  layers:
    - {type: conv2d, filters: 2, kernel_size: 3, kernel_initializer: he_normal, kernel_regularizer: l2}
    - {type: max_pooling2d, pool_size: 2}
    - flatten
    - {type: dense, units: 2, activation: softmax}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 1}
"""


pytestmark = pytest.mark.usefixtures("float32_policy")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1", **extra}


# --- resume compares the frozen sections in canonical form -----------------------------------------------------


def test_old_style_frozen_sections_are_compared_in_canonical_form(write_config):
    loaded = trainer.load_config([write_config(ALIASES)])
    # As older runs recorded them: the sections as written, no defaults, the default optimizer as "adam".
    frozen = {"model": trainer.load_config([write_config(ALIASES)]).raw["model"], "optimizer": {"type": "adam"}}
    assert frozen_mod.frozen_changes(loaded, frozen) == []
    assert frozen_mod.frozen_changes(loaded, {k: frozen_mod.resolved_config(loaded)[k] for k in frozen}) == []
    frozen["optimizer"] = {"type": "sgd"}
    frozen["model"]["layers"][0]["filters"] = 4
    changes = [p.render() for p in frozen_mod.frozen_changes(loaded, frozen)]
    assert [c.split("  ", 1)[1].split(". A run")[0] for c in changes] == [
        "model.layers[0].filters: changed: 4 -> 2",
        "optimizer.type: changed: SGD -> Adam",
    ]


@pytest.mark.slow
def test_resume_accepts_the_default_optimizer_and_aliases(runner, write_config, tmp_path):
    from dlkit.cli.main import cli

    runs = tmp_path / "runs"
    result = runner.invoke(cli, ["train", str(write_config(ALIASES)), "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.stderr
    run = runs / "alias" / "001"
    assert "optimizer: {type: Adam}" in (run / "config.yaml").read_text()
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "training.epochs=2", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["epochs"] == 2
    # A real change is still refused, named in the canonical spelling.
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "optimizer=sgd", "--set", "training.epochs=3"])
    assert result.exit_code == 2
    assert "optimizer.type: changed: Adam -> SGD" in result.stderr


# --- prepare() ------------------------------------------------------------------------------------------------


def test_prepare_clips_the_global_gradient_under_a_strategy_once(write_config):
    from dlkit.training import distribute

    loaded = trainer.load_config([write_config(TINY)], ["training.distribution.strategy=mirrored"])
    session = trainer.prepare(loaded)
    inner = getattr(session.model.optimizer, "inner_optimizer", session.model.optimizer)
    assert getattr(inner, "_dlkit_reduce_first", False)
    assert not distribute.reduce_before_clipping(session.model.optimizer)  # custom_fit's call finds it applied
    plain = trainer.prepare(trainer.load_config([write_config(TINY)]))
    assert not getattr(plain.model.optimizer, "_dlkit_reduce_first", False)  # one device: nothing to change


def test_keras_build_errors_name_the_config_file_and_line(runner, write_config, tmp_path):
    from dlkit.cli.main import cli

    config = write_config(
        TINY.replace("{type: Dense, units: 8, activation: relu}", "{type: Conv2D, filters: 2, kernel_size: 3}")
    )
    result = runner.invoke(cli, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--dry-run"])
    assert result.exit_code == 2
    assert f"error: {config}:7  model.layers[0]: Conv2D: " in result.stderr
    assert "expected min_ndim=4, found ndim=2" in result.stderr


@pytest.fixture
def _no_determinism():
    yield
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()  # process-wide: keep other tests as they were


@pytest.mark.slow
def test_deterministic_enables_op_determinism_and_is_recorded(write_config, tmp_path, _no_determinism):
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()
    result = trainer.train_files(
        [write_config(TINY)], ["training.deterministic=true"], runs_dir=tmp_path / "runs", command=["test"]
    )
    assert tf_config.is_op_determinism_enabled()
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["deterministic"] is True and info["seed"] == 3


# --- run.json ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_json_records_class_names_and_string_column_encoders(write_config, tmp_path):
    rows = ["size,color,animal"] + [
        f"{i % 7 / 7:.3f},{('red', 'green', 'blue')[i % 3]},{('dog', 'cat')[i % 2]}" for i in range(40)
    ]
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n")
    config = write_config(
        """
        name: pets
        seed: 1
        data: {source: csv, train: pets.csv, label: animal, batch_size: 8}
        model:
          input_shape: [2]
          layers:
            - {type: Dense, units: 2, activation: softmax}
        loss: sparse_categorical_crossentropy
        training: {epochs: 1}
        """
    )
    result = trainer.train_files([config], runs_dir=tmp_path / "runs", command=["test"])
    data = json.loads((result.run_dir / "run.json").read_text())["data"]
    assert data["class_names"] == ["cat", "dog"]
    assert data["encoders"] == {"color": ["blue", "green", "red"]}
    assert data["feature_names"] == ["size", "color"]


# --- plugins ----------------------------------------------------------------------------------------------------

PLUGIN = """
import keras
from dlkit.models import register_layer


@register_layer
class TimesTwo(keras.layers.Layer):
    def call(self, x):
        return x * 2.0
"""


@pytest.mark.slow
def test_plugins_are_recorded_and_imported_by_resume_and_evaluate(tmp_path):
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "dlkit_trainer_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    config = tmp_path / "plug.yaml"
    config.write_text(textwrap.dedent(TINY).replace("layers:\n", "layers:\n    - TimesTwo\n").lstrip())
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path / "plug"), os.environ.get("PYTHONPATH", "")]))
    dlkit = [sys.executable, "-m", "dlkit"]
    runs = tmp_path / "runs"

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*dlkit, *args], env=env, capture_output=True, text=True, timeout=300)

    done = call("train", str(config), "--runs-dir", str(runs), "--plugin", "dlkit_trainer_test_plugin")
    assert done.returncode == 0, done.stderr
    run = runs / "tiny" / "001"
    assert json.loads((run / "run.json").read_text())["plugins"] == ["dlkit_trainer_test_plugin"]
    # New processes without --plugin: the run itself says which module to import.
    resumed = call("train", "--resume", str(run), "--set", "training.epochs=2", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epochs"] == 2
    evaluated = call("evaluate", str(run), "--split", "validation", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["samples"] > 0
    # Without the module on the path: a clear usage error naming run.json and the module.
    lost = subprocess.run(
        [*dlkit, "evaluate", str(run), "--json"], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert lost.returncode == 2
    assert (
        f"{run / 'run.json'}  plugins: the run was trained with plugin module(s) dlkit_trainer_test_plugin:"
        in lost.stderr
    )


AUGMENTED = """
name: aug
seed: 5
data:
  source: synthetic
  samples: 64
  num_classes: 2
  batch_size: 16
  augmentation:
    - {type: RandomFlip, mode: horizontal}
    - {type: RandomTranslation, height_factor: 0.2, width_factor: 0.2}
model:
  input_shape: [8, 8, 1]
  layers:
    - {type: Conv2D, filters: 2, kernel_size: 3}
    - Flatten
    - {type: Dense, units: 2, activation: softmax}
loss: sparse_categorical_crossentropy
training: {epochs: 3, deterministic: true}
"""


@pytest.mark.slow
def test_resume_with_augmentation_is_exact_under_deterministic(write_config, tmp_path, _no_determinism):
    import keras
    import numpy as np

    config = write_config(AUGMENTED)
    runs = tmp_path / "runs"
    reference = trainer.train_files([config], runs_dir=runs, name="ref", command=["test"])
    cut = trainer.train_files([config], ["training.epochs=1"], runs_dir=runs, name="cut", command=["test"])
    state = json.loads((cut.run_dir / "checkpoints" / "epoch-0001.json").read_text())
    assert len(state["augmentation_rng"]) == 2  # one seed-generator state per augmentation layer
    assert trainer.resume(cut.run_dir, ["training.epochs=3"], command=["test"]).epochs == 3
    weights = [
        keras.models.load_model(r.run_dir / "model.keras", compile=False).get_weights() for r in (reference, cut)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))


def test_only_plugins_still_imported_are_recorded(monkeypatch):
    from dlkit.models import registry

    monkeypatch.setattr(registry, "_LOADED_PLUGINS", ["json", "dlkit_unloaded_plugin", "textwrap:dedent"])
    assert trainer._plugins() == ["json", "textwrap:dedent"]  # an unloaded module is no longer in effect


def test_input_pipeline_errors_map_to_data_errors_and_model_errors_do_not():
    import tensorflow as tf

    from dlkit.errors import DataError
    from dlkit.training.fit_errors import input_error

    data = tf.data.Dataset.from_tensors(tf.constant(b"\x89PNG\r\n\x1a\nshort")).map(tf.io.decode_png)
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        next(iter(data))
    mapped = input_error(caught.value)
    assert isinstance(mapped, DataError) and "Graph execution error" not in str(mapped)
    assert isinstance(input_error(tf.errors.DataLossError(None, None, "truncated record at 12")), DataError)
    assert input_error(tf.errors.InvalidArgumentError(None, None, "Matrix size-incompatible")) is None
    assert input_error(ValueError("x")) is None


def test_process_start_is_before_now():
    import time

    start = trainer.process_start()
    assert start is not None and time.time() - 3600 * 24 < start <= time.time()
