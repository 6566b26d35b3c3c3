"""The resolved config as YAML, and the JSON Schema editors use (both generated from the pydantic schema)."""

from __future__ import annotations

import jsonschema
import pytest

from dlkit.config import config_from_dict, json_schema, load_config, resolved, to_yaml
from dlkit.config.yaml_io import load_yaml_text

# The seed example of the product contract (DESIGN.md), verbatim.
SEED = """
name: cifar10-cnn
seed: 42
data:
  source: keras:cifar10
  validation_split: 0.1
  batch_size: 32
  preprocessing:
    - {type: Rescaling, scale: 0.00392156862}
  augmentation:
    - {type: RandomFlip, mode: horizontal}
model:
  input_shape: [32, 32, 3]
  layers:
    - {type: Conv2D, filters: 32, kernel_size: 3, activation: relu}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: Conv2D, filters: 64, kernel_size: 3, activation: relu}
    - {type: MaxPooling2D, pool_size: 2}
    - Flatten
    - {type: Dense, units: 10, activation: softmax}
  regularization: {l2: 1.0e-4}
optimizer:
  type: adam
  learning_rate: 0.001
  global_clipnorm: 1.0
loss: sparse_categorical_crossentropy
metrics: [accuracy]
callbacks:
  - {type: EarlyStopping, monitor: val_loss, patience: 3, restore_best_weights: true}
training:
  epochs: 10
  precision: auto
export:
  formats: [saved_model, tflite]
  quantize: [none, int8]
"""


def test_resolved_fills_defaults_and_round_trips(write_config):
    loaded = load_config([write_config(SEED)])
    out = resolved(loaded.config)
    assert list(out) == [
        "name",
        "seed",
        "data",
        "model",
        "optimizer",
        "loss",
        "metrics",
        "callbacks",
        "training",
        "export",
    ]
    assert out["training"]["jit_compile"] == "auto" and out["export"]["calibration_samples"] == 500
    assert out["model"]["layers"][4] == {"type": "Flatten"}
    assert out["optimizer"] == {"type": "adam", "learning_rate": 0.001, "global_clipnorm": 1.0}
    text = to_yaml(out)
    assert "  - {type: Conv2D, filters: 32, kernel_size: 3, activation: relu}\n" in text
    assert "  input_shape: [32, 32, 3]\n" in text
    again, _ = load_yaml_text(text, "resolved.yaml")
    assert again == out
    assert config_from_dict(again).config == loaded.config


@pytest.mark.parametrize("value", ["1e-3", "yes", "no", "on", "null", "true", "12", "0x10", ".5", "~", ""])
def test_strings_that_look_like_other_types_stay_strings(value):
    text = to_yaml({"name": value})
    assert load_yaml_text(text, "x")[0] == {"name": value}
    import yaml

    assert yaml.safe_load(text) == {"name": value}  # YAML 1.1 readers agree


def test_json_schema_is_for_editors_and_matches_the_validator():
    schema = json_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["title"].startswith("dlkit config")
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["loss", "model"]
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    data, _ = load_yaml_text(SEED, "seed.yaml")
    assert list(validator.iter_errors(data)) == []  # bare strings (`- Flatten`, `loss: ...`) are valid
    bad = {**data, "training": {"epochs": 0, "precison": "auto"}}
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert any("precison" in m for m in messages)
    assert any("0 is less than the minimum of 1" in m for m in messages)
