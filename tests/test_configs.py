"""Every file in configs/ is a fixture: it validates, builds, and (the small ones) trains an epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlkit.cli.main import cli
from dlkit.config.loader import load_config
from dlkit.models import build_layer, build_loss, build_metrics, build_model, build_optimizer, validate_components

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
FAMILIES = {
    "cifar10_cnn",
    "mlp_tabular",
    "conv1d",
    "conv3d",
    "lstm",
    "resnet_blocks",
    "linear_regression",
    "logistic_regression",
}


def test_one_example_per_family() -> None:
    assert {path.stem for path in CONFIGS} >= FAMILIES


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_builds(path: Path) -> None:
    loaded = load_config([path], component_checker=validate_components)
    cfg = loaded.config
    preprocessing = [build_layer(spec, ("data", "preprocessing", i)) for i, spec in enumerate(cfg.data.preprocessing)]
    model = build_model(cfg, preprocessing, where=loaded.where)
    assert model.count_params() > 0
    model.compile(
        optimizer=build_optimizer(cfg.optimizer), loss=build_loss(cfg.loss), metrics=build_metrics(cfg.metrics)
    )


def test_seed_cnn_matches_the_hand_written_keras_model() -> None:
    import keras

    by_hand = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    loaded = load_config([CONFIGS[0].parent / "cifar10_cnn.yaml"], component_checker=validate_components)
    model = build_model(loaded.config)
    assert model.count_params() == by_hand.count_params() == 42_442
    assert [type(layer).__name__ for layer in model.layers[1:]] == [type(layer).__name__ for layer in by_hand.layers]
    assert model.output_shape == by_hand.output_shape
    cfg = loaded.config
    assert (cfg.optimizer.type, cfg.loss.type) == ("adam", "sparse_categorical_crossentropy")


SMALL = {
    # keras:cifar10 downloads; its smoke run uses synthetic data of the same shape.
    "cifar10_cnn": ["--set", "data.source=synthetic", "--set", "data.samples=64"],
}


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_trains_an_epoch(path: Path, runner, tmp_path: Path) -> None:
    args = ["train", str(path), "--set", "training.epochs=1", "--runs-dir", str(tmp_path), "--json"]
    args += SMALL.get(path.stem, [])
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "completed" and out["epochs"] == 1
    assert all(value == value for value in out["metrics"].values())  # no NaN
