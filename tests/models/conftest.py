"""Helpers for the model tests: configs from dicts, validated like the CLI does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

BASE: dict[str, Any] = {
    "name": "t",
    "model": {
        "input_shape": [8],
        "layers": [{"type": "Dense", "units": 4, "activation": "relu"}, {"type": "Dense", "units": 2}],
    },
    "loss": "mse",
}


@pytest.fixture
def make_config():
    """``make_config(**sections)`` -> a LoadedConfig validated with the Keras component checker."""
    from dlkit.config.loader import config_from_dict
    from dlkit.models import validate_components

    def _make(**sections: Any) -> Any:
        raw = copy.deepcopy(BASE)
        raw.update(copy.deepcopy(sections))
        return config_from_dict(raw, component_checker=validate_components)

    return _make
