"""What kind of problem a config describes: the task (from the loss) and the model's output width."""

from __future__ import annotations

import re
from typing import Any

SPARSE_LOSSES = ("sparse_categorical_crossentropy", "sparse_categorical_focal_crossentropy")
ONE_HOT_LOSSES = ("categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge", "kl_divergence")
BINARY_LOSSES = ("binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge")


def snake(name: str) -> str:
    """``SparseCategoricalCrossentropy`` -> ``sparse_categorical_crossentropy`` (names already snake pass through)."""
    if "_" in name or name.islower():
        return name.lower()
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def loss_name(cfg: Any) -> str:
    """The config's loss as a snake_case Keras name."""
    name = snake(cfg.loss.type)
    return {"kld": "kl_divergence", "kullback_leibler_divergence": "kl_divergence"}.get(name, name)


def label_kind(cfg: Any) -> str:
    """``sparse`` (class indices), ``one_hot``, ``binary`` or ``real`` labels, as the loss expects them."""
    name = loss_name(cfg)
    if name in SPARSE_LOSSES:
        return "sparse"
    if name in ONE_HOT_LOSSES:
        return "one_hot"
    if name in BINARY_LOSSES:
        return "binary"
    return "real"


def task_of(cfg: Any) -> str:
    """``classification``, ``binary`` or ``regression`` from the loss."""
    return {"sparse": "classification", "one_hot": "classification", "binary": "binary"}.get(
        label_kind(cfg), "regression"
    )


def last_units(cfg: Any) -> int | None:
    """The ``units`` of the last layer in ``model.layers`` that sets them (the output width), else None."""
    for spec in reversed(cfg.model.layers):
        if spec.block:  # the width lives inside the block; the built model knows it (see preflight)
            return None
        units = spec.kwargs.get("units")
        if isinstance(units, int) and not isinstance(units, bool):
            return units
    return None


def output_width(cfg: Any) -> int | None:
    """``data.num_classes`` when set, else the last layer's ``units``."""
    return cfg.data.num_classes or last_units(cfg)
