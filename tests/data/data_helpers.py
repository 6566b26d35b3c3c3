"""Helpers for the data tests (imported by name; tests/ has no packages): in-memory configs and tiny models."""

from __future__ import annotations

from typing import Any


def make_config(data: dict[str, Any], *, input_shape=(4,), units=3, loss="sparse_categorical_crossentropy", **extra):
    """A validated Config around ``data`` with a one-Dense model of ``units`` outputs."""
    from dlkit.config.schema import Config

    raw = {
        "seed": 7,
        "data": data,
        "model": {"input_shape": list(input_shape), "layers": [{"type": "Dense", "units": units}]},
        "loss": loss,
        **extra,
    }
    return Config.model_validate(raw)


def tiny_model(input_shape, *, units=3, preprocessing=(), head=("Dense",), activation=None):
    """Input -> preprocessing -> [Flatten] -> Dense(units)."""
    import keras

    inp = keras.Input(tuple(input_shape))
    x = inp
    for layer in preprocessing:
        x = layer(x)
    for kind in head:
        x = keras.layers.Flatten()(x) if kind == "Flatten" else keras.layers.Dense(units, activation=activation)(x)
    return keras.Model(inp, x)
