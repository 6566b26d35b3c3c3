"""Every shipped config passes the schema, and the generated JSON Schema agrees (no TensorFlow here)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from dlkit.config import json_schema, load_config, resolved, to_yaml
from dlkit.config.yaml_io import load_yaml, load_yaml_text

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.skipif(not CONFIGS, reason="no configs/ folder")
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates_and_round_trips(path: Path):
    loaded = load_config([path])
    raw, _ = load_yaml(path)
    assert list(jsonschema.Draft7Validator(json_schema()).iter_errors(raw)) == []
    again, _ = load_yaml_text(to_yaml(resolved(loaded.config)), "resolved.yaml")
    assert again == resolved(loaded.config)
