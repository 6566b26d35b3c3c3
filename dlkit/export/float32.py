"""A float32 twin of a mixed-precision model, for export.

A model trained under ``mixed_float16``/``mixed_bfloat16`` computes in half precision, which TFLite cannot
express with builtin ops (FIELD_NOTES: it falls back to Flex, and int8 fails). Its variables are float32
already, so the same architecture rebuilt with float32 layer policies and given the same weights is the
model users want to deploy; verification then compares the artifacts against the model that was trained.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("dlkit.export")


def _is_mixed(layer: Any) -> bool:
    policy = getattr(layer, "dtype_policy", None)
    return bool(policy is not None and str(getattr(policy, "name", "")).startswith("mixed"))


def _to_float32(node: Any) -> Any:
    if isinstance(node, dict):
        policy = node.get("config") if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") else None
        if isinstance(policy, dict) and str(policy.get("name", "")).startswith("mixed"):
            return "float32"
        return {key: _to_float32(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_to_float32(value) for value in node]
    if isinstance(node, str) and node.startswith("mixed_"):
        return "float32"
    return node


def float32_model(model: Any) -> Any:
    """``model`` itself when no layer is mixed precision, else a float32 rebuild with the same weights."""
    if not any(_is_mixed(layer) for layer in model._flatten_layers(include_self=False)):
        return model
    import keras

    config = _to_float32(keras.saving.serialize_keras_object(model))
    twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    log.info("exporting a float32 rebuild of the mixed-precision model (same weights)")
    return twin
