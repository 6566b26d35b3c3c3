"""Optimizers (with schedules and clipping), losses, metrics and callbacks built from config components."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import pytest

from dlkit.errors import ConfigError
from dlkit.models import build_callbacks, build_layer, build_loss, build_metrics, build_optimizer


def test_optimizer_with_all_its_arguments(make_config) -> None:
    cfg = make_config(
        optimizer={
            "type": "adamw",
            "learning_rate": 0.01,
            "weight_decay": 0.001,
            "global_clipnorm": 1.0,
            "use_ema": True,
            "gradient_accumulation_steps": 2,
            "beta_1": 0.8,
        }
    ).config
    opt = build_optimizer(cfg.optimizer)
    assert isinstance(opt, keras.optimizers.AdamW)
    assert opt.weight_decay == pytest.approx(0.001)
    assert opt.global_clipnorm == pytest.approx(1.0)
    assert opt.use_ema is True and opt.gradient_accumulation_steps == 2
    assert opt.beta_1 == pytest.approx(0.8)
    assert float(opt.learning_rate) == pytest.approx(0.01)


def test_learning_rate_schedule_is_built_first(make_config) -> None:
    cfg = make_config(
        optimizer={
            "type": "sgd",
            "momentum": 0.9,
            "clipnorm": 0.5,
            "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.1},
        }
    ).config
    opt = build_optimizer(cfg.optimizer)
    assert isinstance(opt, keras.optimizers.SGD) and opt.clipnorm == pytest.approx(0.5)
    schedule = opt._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(10)) == pytest.approx(0.01)


def test_keras_errors_are_wrapped_with_the_config_path() -> None:
    with pytest.raises(ConfigError) as info:
        build_layer({"type": "Dense", "units": 4, "activation": "relu", "strides": 3}, ("model", "layers", 2))
    assert str(info.value) == "model.layers[2].strides: Dense has no argument 'strides'"
    with pytest.raises(ConfigError) as info:
        build_layer({"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "sideways"}, ("model", "layers", 2))
    assert re.fullmatch(r"model\.layers\[2\]: Conv2D: .*padding.*sideways.*", str(info.value))
    with pytest.raises(ConfigError) as info:
        build_optimizer({"type": "adam", "learning_rate": {"type": "ExponentialDecay", "initial_learning_rate": 0.1}})
    assert str(info.value) == (
        "optimizer.learning_rate: ExponentialDecay is missing required argument 'decay_steps'\n"
        "optimizer.learning_rate: ExponentialDecay is missing required argument 'decay_rate'"
    )


def test_losses_by_function_or_class() -> None:
    assert build_loss("sparse_categorical_crossentropy") is keras.losses.sparse_categorical_crossentropy
    assert build_loss("mse") is keras.losses.mean_squared_error
    loss = build_loss({"type": "sparse_categorical_crossentropy", "from_logits": True})
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy) and loss.from_logits
    huber = build_loss({"type": "Huber", "delta": 2.0})
    assert isinstance(huber, keras.losses.Huber)


def test_metrics_keep_compile_names() -> None:
    metrics = build_metrics(
        ["accuracy", "mae", "sparse_top_k_categorical_accuracy", "auc", {"type": "Precision", "thresholds": 0.3}]
    )
    assert metrics[:3] == ["accuracy", "mae", "sparse_top_k_categorical_accuracy"]
    assert isinstance(metrics[3], keras.metrics.AUC)
    assert isinstance(metrics[4], keras.metrics.Precision) and metrics[4].thresholds == pytest.approx([0.3])


def test_compiled_model_uses_the_built_components() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(
        optimizer=build_optimizer("adam"),
        loss=build_loss("sparse_categorical_crossentropy"),
        metrics=build_metrics(["acc"]),
    )
    import numpy as np

    hist = model.fit(np.zeros((4, 3), "float32"), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert set(hist.history) == {"loss", "acc"}


def test_callback_paths_default_into_and_resolve_against_the_run_dir(tmp_path: Path) -> None:
    specs = [
        {"type": "ModelCheckpoint", "save_best_only": True},
        {"type": "tensor_board"},
        {"type": "CSVLogger", "filename": "log.csv"},
        {"type": "TensorBoard", "log_dir": str(tmp_path / "abs")},
        {"type": "EarlyStopping", "patience": 2},
        "TerminateOnNaN",
    ]
    ckpt, tb, csv, tb_abs, early, nan = build_callbacks(specs, run_dir=tmp_path)
    assert Path(ckpt.filepath) == tmp_path / "checkpoints" / "best.keras"
    assert Path(tb.log_dir) == tmp_path / "tensorboard"
    assert Path(csv.filename) == tmp_path / "log.csv"
    assert Path(tb_abs.log_dir) == tmp_path / "abs"
    assert early.patience == 2 and isinstance(nan, keras.callbacks.TerminateOnNaN)


def test_callback_path_without_run_dir_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        build_callbacks(["ModelCheckpoint"])
    assert str(info.value) == "callbacks[0]: ModelCheckpoint needs 'filepath' (no run folder)"
    with pytest.raises(ConfigError) as info:
        build_callbacks([{"type": "ModelCheckpoint", "filepath": "x.txt"}], run_dir="/tmp/r")
    assert str(info.value).startswith("callbacks[0]: ModelCheckpoint: ")


def test_layer_subcomponents_are_built() -> None:
    layer = build_layer(
        {
            "type": "dense",
            "units": 3,
            "activation": "ReLU",
            "kernel_initializer": {"type": "RandomNormal", "stddev": 0.5},
            "kernel_regularizer": {"type": "l2", "l2": 0.1},
            "bias_constraint": "non_neg",
        }
    )
    assert isinstance(layer.kernel_initializer, keras.initializers.RandomNormal)
    assert layer.kernel_initializer.stddev == pytest.approx(0.5)
    assert isinstance(layer.kernel_regularizer, keras.regularizers.L2)
    assert layer.kernel_regularizer.l2 == pytest.approx(0.1)
    assert isinstance(layer.bias_constraint, keras.constraints.NonNeg)
    assert layer.activation is keras.activations.relu
