"""Merging, overrides, data-path resolution and located schema problems (no TensorFlow here)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from dlkit.config import config_from_dict, load_config
from dlkit.errors import ConfigError, Problem

BASE = """
name: tiny
data:
  source: csv
  train: data/train.csv
  batch_size: 16
model:
  input_shape: [4]
  layers:
    - {type: Dense, units: 8, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
optimizer: {type: adam, learning_rate: 1e-3}
loss: sparse_categorical_crossentropy
training:
  epochs: 2
"""


def problems_of(paths, overrides=(), checker=None) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(paths, overrides, component_checker=checker)
    return [p.render() for p in error.value.problems]


def test_valid_config_loads_with_defaults(write_config):
    path = write_config(BASE)
    loaded = load_config([path])
    cfg = loaded.config
    assert cfg.name == "tiny"
    assert cfg.optimizer.learning_rate == 0.001
    assert cfg.training.epochs == 2 and cfg.training.precision == "auto"
    assert cfg.loss.type == "sparse_categorical_crossentropy"
    assert [layer.kwargs for layer in cfg.model.layers][0] == {"units": 8, "activation": "relu"}
    assert loaded.files == [str(path)]
    assert loaded.where(("model", "layers", 1, "units")) == (str(path), 10)
    assert loaded.where(("training", "precision")) == (str(path), 13)  # not set: nearest ancestor
    assert loaded.problem(("training", "epochs"), "boom").render() == f"{path}:14  training.epochs: boom"


def test_relative_data_paths_resolve_against_the_file_that_set_them(tmp_path, write_config):
    base = write_config(BASE, "configs/base.yaml")
    other = write_config("data: {validation: ../val/v.csv, path: /abs/x.npz}\n", "elsewhere/deep/over.yaml")
    loaded = load_config([base, other])
    assert loaded.config.data.train == str(tmp_path / "configs" / "data" / "train.csv")
    assert loaded.config.data.validation == str(tmp_path / "elsewhere" / "val" / "v.csv")
    assert loaded.config.data.path == "/abs/x.npz"


def test_set_data_path_resolves_against_cwd(write_config, tmp_path, monkeypatch):
    path = write_config(BASE)
    monkeypatch.chdir(tmp_path)
    loaded = load_config([path], ["data.test=sub/t.csv"])
    assert loaded.config.data.test == os.path.join(tmp_path, "sub", "t.csv")


def test_files_merge_left_to_right_dicts_deep_lists_replaced(write_config):
    base = write_config(BASE, "base.yaml")
    over = write_config(
        """
        training:
          epochs: 5
        model:
          layers:
            - {type: Dense, units: 1, activation: sigmoid}
        """,
        "over.yaml",
    )
    loaded = load_config([base, over])
    assert loaded.config.training.epochs == 5
    assert loaded.config.model.input_shape == [4]  # kept from base: dicts deep-merge
    assert [layer.kwargs["units"] for layer in loaded.config.model.layers] == [1]  # lists are replaced
    assert loaded.where(("training", "epochs")) == (str(over), 2)
    assert loaded.where(("model", "input_shape")) == (str(base), 7)
    assert ("model", "layers", 1) not in loaded.origins  # the replaced list's items are gone


def test_problems_in_a_later_file_point_at_that_file(write_config):
    base = write_config(BASE, "base.yaml")
    over = write_config("training:\n  epochs: ten\n", "over.yaml")
    assert problems_of([base, over]) == [f"{over}:2  training.epochs: expected an integer (got 'ten')"]


@pytest.mark.parametrize(
    "override",
    ["model.layers[0].units=32", "model.layers.0.units=32", "model.layers[-2].units=32"],
)
def test_set_indexes_lists_both_ways(write_config, override):
    loaded = load_config([write_config(BASE)], [override])
    assert loaded.config.model.layers[0].kwargs["units"] == 32
    assert loaded.where(("model", "layers", 0, "units")) == ("--set model.layers[0].units", None)
    assert loaded.overrides == [override]


def test_set_values_are_yaml_and_expand_bare_components(write_config):
    path = write_config(BASE.replace("optimizer: {type: adam, learning_rate: 1e-3}", "optimizer: adam"))
    loaded = load_config(
        [path],
        ["optimizer.learning_rate=5e-4", "training.precision=float32", "metrics=[accuracy]", "data.shuffle=false"],
    )
    cfg = loaded.config
    assert cfg.optimizer.type == "adam" and cfg.optimizer.learning_rate == 0.0005
    assert cfg.training.precision == "float32"
    assert [m.type for m in cfg.metrics] == ["accuracy"]
    assert cfg.data.shuffle is False


def test_set_typo_gets_a_suggestion(write_config):
    path = write_config(BASE)
    assert problems_of([path], ["training.epoch=3", "trainig.epochs=3"]) == [
        "--set trainig.epochs  trainig: unknown key 'trainig'. Did you mean 'training'?",
        "--set training.epoch  training.epoch: unknown key 'epoch'. Did you mean 'epochs'?",
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epochs", "--set training.epochs  expected KEY=VALUE with a dotted key. For example: "
         "--set training.epochs=5 or --set model.layers[0].units=64"),
        ("model.layers[5].units=3", "--set model.layers[5].units  model.layers: has 2 items; index 5 is out of range. "
         "To add items, set the whole list: --set 'model.layers=[...]'"),
        ("name.first=x", "--set name.first  name: is a string ('tiny'), so it has no key 'first'"),
        ("model.layers.units=3",
         "--set model.layers.units  model.layers: is a list; use an index like [0], not 'units'"),
        ("training.epochs=[1", "--set training.epochs  invalid YAML: expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence)"),
    ],
)  # fmt: skip
def test_bad_set_arguments(write_config, override, message):
    assert problems_of([write_config(BASE)], [override]) == [message]


def test_every_problem_at_once_sorted_by_line(write_config):
    path = write_config(
        """
        name: runs/../evil
        seed: 1
        data:
          batch_size: 0
          validation_split: 1.5
        model:
          input_shape: [4]
          layers: []
          extar: 1
        optimizer:
          type: sgd
          clipnorm: -1.0
        loss: mse
        training:
          epochs: ten
          epoch: 3
          precision: mixed_fp16
          jit_compile: atuo
        export:
          formats: [tflite, onx]
        """
    )
    f = str(path)
    assert problems_of([path]) == [
        f"{f}:1  name: run name must be a plain name: letters, digits, '.', '_' and '-', no path separators "
        "(got 'runs/../evil')",
        f"{f}:4  data.batch_size: must be at least 1 (got 0)",
        f"{f}:5  data.validation_split: must be less than 1 (got 1.5)",
        f"{f}:8  model.layers: needs at least one item (got [])",
        f"{f}:9  model.extar: unknown key 'extar'; valid keys: input_shape, layers, outputs, blocks, "
        "regularization, input_dtype",
        f"{f}:12  optimizer.clipnorm: must be greater than 0 (got -1.0)",
        f"{f}:15  training.epochs: expected an integer (got 'ten')",
        f"{f}:16  training.epoch: unknown key 'epoch'. Did you mean 'epochs'?",
        f"{f}:17  training.precision: expected one of auto, float32, mixed_float16, mixed_bfloat16 "
        "(got 'mixed_fp16'). Did you mean 'mixed_float16'?",
        f"{f}:18  training.jit_compile: expected true, false or 'auto' (got 'atuo'). Did you mean 'auto'?",
        f"{f}:20  export.formats[1]: expected one of saved_model, tflite, keras, onnx (got 'onx'). "
        "Did you mean 'onnx'?",
    ]


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        ("optimizer: {type: adam, clipnorm: 1.0, clipvalue: 0.5}", 11,
         "optimizer.clipvalue: give only one of clipnorm, clipvalue, global_clipnorm (got clipnorm, clipvalue)"),
        ("optimizer: {type: adam, learning_rate: -0.1}", 11,
         "optimizer.learning_rate: learning_rate must be greater than 0 (got -0.1)"),
        ("optimizer: keras.optimizers.Adam", 11,
         "optimizer.type: import paths are not allowed; name a registered component (got 'keras.optimizers.Adam'). "
         "Did you mean 'Adam'?"),
        ("optimizer: 'os:system'", 11,
         "optimizer.type: import paths are not allowed; name a registered component (got 'os:system')"),
        ("optimizer: {type: adam, learning_rate: [1, 2]}", 11,
         "optimizer.learning_rate: expected a number or a component (a name, or a mapping with `type:`) "
         "(got [1, 2])"),
    ],
)  # fmt: skip
def test_optimizer_problems(write_config, snippet, line, message):
    path = write_config(BASE.replace("optimizer: {type: adam, learning_rate: 1e-3}", snippet))
    assert problems_of([path]) == [f"{path}:{line}  {message}"]


def test_layer_problems_found_by_the_schema(write_config):
    path = write_config(
        BASE.replace(
            "    - {type: Dense, units: 3, activation: softmax}",
            "    - {tpye: Dense, units: 3}\n"
            "    - {type: keras.layers.Dense, units: 3}\n"
            "    - {block: res, type: Dense}",
        )
    )
    f = str(path)
    assert problems_of([path]) == [
        f"{f}:10  model.layers[1].tpye: a layer needs a `type` (a Keras layer name) or a `block`. Did you mean 'type'?",
        f"{f}:11  model.layers[2].type: import paths are not allowed; name a registered component "
        "(got 'keras.layers.Dense'). Did you mean 'Dense'?",
        f"{f}:12  model.layers[3]: give either `type` or `block`, not both",
    ]


def test_missing_required_sections(write_config):
    path = write_config("name: x\n")
    assert problems_of([path]) == [
        f"{path}  loss: required key is missing",
        f"{path}  model: required key is missing",
    ]


def test_yaml_problems_of_several_files_are_reported_together(write_config):
    a = write_config("a: 1\na: 2\n", "a.yaml")
    b = write_config("", "b.yaml")
    assert problems_of([a, b]) == [
        f"{a}:2  a: duplicate key 'a' (first set on line 1)",
        f"{b}  the file is empty. A config is a mapping of sections such as model:, loss: and training:.",
    ]


def test_component_checker_problems_are_merged_and_sorted(write_config):
    path = write_config(BASE.replace("training:\n  epochs: 2", "training:\n  epochs: 0"))
    seen = {}

    def checker(raw, where):
        seen["raw"] = raw
        file, line = where(("model", "layers", 0, "activation"))
        return [Problem(file, line, "model.layers[0].activation", "unknown activation 'relu'")]

    assert problems_of([path], checker=checker) == [
        f"{path}:9  model.layers[0].activation: unknown activation 'relu'",
        f"{path}:14  training.epochs: must be at least 1 (got 0)",
    ]
    assert seen["raw"]["model"]["input_shape"] == [4]


def test_a_checker_that_trips_on_invalid_input_does_not_hide_schema_problems(write_config):
    path = write_config(BASE.replace("input_shape: [4]", "input_shape: four"))

    def checker(raw, where):
        raise TypeError("cannot iterate")

    assert problems_of([path], checker=checker) == [f"{path}:7  model.input_shape: expected a list (got 'four')"]


def test_config_from_dict(tmp_path: Path):
    raw = {"model": {"input_shape": [2], "layers": ["Flatten"]}, "loss": "mse", "data": {"path": "d.npz"}}
    loaded = config_from_dict(raw, base_dir=tmp_path)
    assert loaded.config.model.layers[0].type == "Flatten"
    assert loaded.config.data.path == str(tmp_path / "d.npz")
    assert raw["data"]["path"] == "d.npz"  # the caller's dict is not modified
    with pytest.raises(ConfigError) as error:
        config_from_dict({**raw, "training": {"epochs": 0}})
    assert [p.render() for p in error.value.problems] == ["training.epochs: must be at least 1 (got 0)"]


def test_no_pydantic_internals_leak_into_messages():
    """Random wrong values anywhere in a valid config: every problem is located and in plain words."""
    import random

    from dlkit.config.yaml_io import load_yaml_text

    base, _ = load_yaml_text(BASE, "base.yaml")
    values = [None, "x", "ten", 0, -1, 1.5, True, [], [1, "a"], {}, {"type": "Dense"}, {"bogus": 1}, "keras.x.Y"]

    def paths(node, path=()):
        if path:
            yield path
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            yield from paths(value, (*path, key))

    all_paths = list(paths(base))
    rng = random.Random(0)
    leaks = []
    for _ in range(300):
        raw = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(all_paths)
            node = raw
            try:
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = copy.deepcopy(rng.choice(values))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier mutation removed the parent
        try:
            config_from_dict(raw)
        except ConfigError as error:
            for problem in error.problems:
                text = problem.render()
                if not problem.path or any(s in text for s in ("Input should", "function-", "literal[", "[key]")):
                    leaks.append(text)
    assert leaks == []


def test_a_quoted_learning_rate_is_a_number(write_config):
    path = write_config(BASE.replace("learning_rate: 1e-3", "learning_rate: '1e-3'"))
    assert load_config([path]).config.optimizer.learning_rate == 0.001


def test_booleans_and_quoted_numbers_are_not_silently_coerced(write_config):
    """YAML already types numbers: `epochs: true` is not 1 and `batch_size: "32"` is not 32."""
    base = write_config(BASE)
    over = write_config('data:\n  batch_size: "32"\n  validation_split: true\ntraining:\n  epochs: true\n', "over.yaml")
    found = problems_of([base, over])
    assert any(p.endswith("data.batch_size: expected an integer (got '32')") for p in found), found
    assert any(p.endswith("data.validation_split: expected a number (got true)") for p in found), found
    assert any(p.endswith("training.epochs: expected an integer (got true)") for p in found), found
