"""Build ``data.preprocessing`` (adapted on train; shipped in the model) and ``data.augmentation`` (training only).

Layer classes are Keras' own, looked up by name in ``keras.layers`` (snake_case aliases accepted); their
arguments are Keras' argument names, verbatim.
"""

from __future__ import annotations

import inspect
import logging
import re
from typing import Any

from dlkit.errors import ConfigError, Problem

log = logging.getLogger("dlkit.data")

ADAPT_SKIPPED_BY = ("mean", "variance", "vocabulary", "bin_boundaries")
LABEL_MIXING = ("MixUp", "CutMix")


def _layer_classes() -> dict[str, type]:
    import keras

    return {
        name: obj
        for name in dir(keras.layers)
        if inspect.isclass(obj := getattr(keras.layers, name)) and issubclass(obj, keras.layers.Layer)
    }


def _canonical(name: str, classes: dict[str, type]) -> str | None:
    if name in classes:
        return name
    folded = re.sub(r"[_\s]", "", name).lower()
    for canon in classes:
        if canon.lower() == folded:
            return canon
    return None


def resolve_layer(name: str, key: str) -> type:
    """The ``keras.layers`` class called ``name`` (or its snake_case alias).

    Raises:
        ConfigError: for an unknown name, with the nearest Keras layer name.
    """
    classes = _layer_classes()
    canon = _canonical(name, classes)
    if canon is None:
        from dlkit.config.suggest import did_you_mean

        raise ConfigError(
            problems=[
                Problem(path=key, message=f"unknown Keras layer '{name}'", suggestion=did_you_mean(name, list(classes)))
            ]
        )
    return classes[canon]


def build_layers(components: list[Any], section: str, *, seed: int | None = None) -> list[Any]:
    """Instantiate each component of ``data.<section>``; random layers get ``seed`` unless they set one.

    Raises:
        ConfigError: unknown layer or arguments Keras refuses (named by ``data.<section>[i]``).
    """
    layers = []
    for i, comp in enumerate(components):
        key = f"data.{section}[{i}]"
        cls = resolve_layer(comp.type, f"{key}.type")
        kwargs = dict(comp.kwargs)
        if seed is not None and "seed" not in kwargs and "seed" in inspect.signature(cls.__init__).parameters:
            kwargs["seed"] = seed + i
        try:
            layers.append(cls(**kwargs))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                problems=[Problem(path=key, message=f"{cls.__name__}: {str(exc).splitlines()[0]}")]
            ) from None
    return layers


def check_augmentation(layers: list[Any], label_kind: str) -> None:
    """MixUp/CutMix blend labels, so they need one-hot labels (categorical losses).

    Raises:
        ConfigError: when a label-mixing layer meets class-index or real-valued labels.
    """
    for i, layer in enumerate(layers):
        name = type(layer).__name__
        if name in LABEL_MIXING and label_kind != "one_hot":
            raise ConfigError(
                problems=[
                    Problem(
                        path=f"data.augmentation[{i}]",
                        message=f"{name} mixes labels, so it needs one-hot labels and a categorical loss",
                        hint="Use loss categorical_crossentropy with one-hot labels, or drop this layer.",
                    )
                ]
            )


def needs_adapt(layer: Any, component: Any) -> bool:
    """Whether ``layer`` learns its state from data (Normalization, StringLookup, TextVectorization ...)."""
    return hasattr(layer, "adapt") and not any(k in component.kwargs for k in ADAPT_SKIPPED_BY)


def adapt(layers: list[Any], components: list[Any], batches: Any) -> None:
    """Adapt each layer that needs it on the training features, after the layers before it.

    ``batches`` is a tf.data dataset of batched training features (no labels).

    Raises:
        ConfigError: when Keras refuses the data (e.g. a text layer on numbers), naming the layer.
    """
    import tensorflow as tf

    data = batches
    for i, (layer, comp) in enumerate(zip(layers, components, strict=True)):
        if needs_adapt(layer, comp):
            try:
                layer.adapt(data)
            except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
                raise ConfigError(
                    problems=[
                        Problem(
                            path=f"data.preprocessing[{i}]",
                            message=f"{type(layer).__name__} could not adapt on the training data: "
                            + str(getattr(exc, "message", exc)).splitlines()[0],
                        )
                    ]
                ) from None
            log.info("adapted %s on the training split", type(layer).__name__)
        data = data.map(layer, num_parallel_calls=tf.data.AUTOTUNE)
