"""Writing configs back out: the resolved config as YAML, and the JSON Schema for editors.

Both come from the pydantic schema, the one source of truth (STYLE.md, "One source of truth").
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from dlkit import __version__
from dlkit.config.schema import Component, Config, LayerSpec
from dlkit.config.yaml_io import CoreDumper

# Draft-07: the newest draft yaml-language-server (VS Code YAML, Neovim, Helix) fully supports.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def _dump(value: Any) -> Any:
    if isinstance(value, Component):
        out: dict[str, Any] = {"type": value.type} if value.type else {}
        for name in type(value).model_fields:
            if name == "type":
                continue
            item = getattr(value, name)
            if item is None or (isinstance(value, LayerSpec) and name == "repeat" and value.block is None):
                continue  # unset Keras arguments keep Keras' own defaults
            out[name] = _dump(item)
        out.update({k: _dump(v) for k, v in (value.model_extra or {}).items()})
        return out
    if isinstance(value, BaseModel):
        return {name: _dump(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


def resolved(config: Config) -> dict[str, Any]:
    """The config as a plain dict with every default filled in, in schema order.

    Components keep only the arguments that were given (Keras supplies the rest). Component type names are
    left as written; ``dlkit.models.canonicalize`` makes them canonical.
    """
    out = _dump(config)
    assert isinstance(out, dict)
    return out


class _Dumper(CoreDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _is_flat(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _represent_dict(dumper: Any, data: Any) -> yaml.Node:
    # Components read best one per line: `- {type: Dense, units: 10, activation: softmax}`.
    flow = "type" in data and all(_is_flat(v) or (isinstance(v, list) and all(map(_is_flat, v))) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_list(dumper: Any, data: Any) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=all(map(_is_flat, data)))


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def to_yaml(raw: dict[str, Any]) -> str:
    """Render a config mapping as YAML that dlkit (YAML 1.2) and YAML 1.1 tools read back identically.

    Strings that would read as numbers, booleans or null (``'1e-3'``, ``'yes'``) are quoted.
    """
    return yaml.dump(raw, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a dlkit config, for editors via yaml-language-server."""
    schema = Config.model_json_schema(mode="validation", ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    schema.pop("title", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"dlkit config (dlkit {__version__})",
        **schema,
        "definitions": definitions,
    }
