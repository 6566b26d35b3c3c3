"""Keras components by name, the model builder and the model summary.

Importing this package is cheap: Keras/TensorFlow are imported inside the functions that need them.
"""

from __future__ import annotations

from dlkit.models.builder import build_model
from dlkit.models.components import (
    build_callbacks,
    build_layer,
    build_loss,
    build_metrics,
    build_optimizer,
    instantiate,
    to_spec,
)
from dlkit.models.registry import (
    KINDS,
    load_plugins,
    loaded_plugins,
    lookup,
    names,
    register_layer,
    unregister_layer,
)
from dlkit.models.summary import summarize
from dlkit.models.validate import canonicalize, check_component, validate_components

__all__ = [
    "KINDS",
    "build_callbacks",
    "build_layer",
    "build_loss",
    "build_metrics",
    "build_model",
    "build_optimizer",
    "canonicalize",
    "check_component",
    "instantiate",
    "load_plugins",
    "loaded_plugins",
    "lookup",
    "names",
    "register_layer",
    "summarize",
    "to_spec",
    "unregister_layer",
    "validate_components",
]
