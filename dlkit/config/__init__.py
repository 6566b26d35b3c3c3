"""dlkit configs: schema, safe YAML loading with line numbers, merging, overrides and error rendering.

This package never imports TensorFlow.
"""

from dlkit.config.loader import LoadedConfig, apply_override, config_from_dict, load_config
from dlkit.config.render import json_schema, resolved, to_yaml
from dlkit.config.schema import Config
from dlkit.config.suggest import did_you_mean
from dlkit.config.yaml_io import Origins, dotted, load_yaml, parse_value

__all__ = [
    "Config",
    "LoadedConfig",
    "Origins",
    "apply_override",
    "config_from_dict",
    "did_you_mean",
    "dotted",
    "json_schema",
    "load_config",
    "load_yaml",
    "parse_value",
    "resolved",
    "to_yaml",
]
