"""Safe YAML reading: YAML 1.2 scalars, duplicate keys, tags, syntax errors and the line map."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dlkit.config.yaml_io import dotted, load_yaml, load_yaml_text, parse_value
from dlkit.errors import ConfigError


def rendered(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [p.render() for p in error.value.problems]


def test_yaml12_numbers_and_booleans(write_config):
    path = write_config(
        """
        a: 1e-3
        b: 1E5
        c: .5
        d: -2.5e+2
        e: 12
        f: 0x1f
        g: .inf
        t: true
        u: False
        y: yes
        n: no
        o: on
        off_: off
        z: ~
        s: '1e-3'
        date: 2024-01-02
        """
    )
    data, _ = load_yaml(path)
    assert data["a"] == 0.001 and isinstance(data["a"], float)
    assert data["b"] == 100000.0 and isinstance(data["b"], float)
    assert data["c"] == 0.5
    assert data["d"] == -250.0
    assert data["e"] == 12 and isinstance(data["e"], int)
    assert data["f"] == 31
    assert math.isinf(data["g"])
    assert data["t"] is True and data["u"] is False
    assert [data["y"], data["n"], data["o"], data["off_"]] == ["yes", "no", "on", "off"]
    assert data["z"] is None
    assert data["s"] == "1e-3"
    assert data["date"] == "2024-01-02"


def test_every_key_and_list_item_has_its_line(write_config):
    path = write_config(
        """
        model:
          input_shape: [4]
          layers:
            - {type: Dense, units: 8}
            -
              type: Dense
              units: 2
        """
    )
    _, origins = load_yaml(path)
    f = str(path)
    assert origins[()] == (f, None)
    assert origins[("model",)] == (f, 1)
    assert origins[("model", "layers")] == (f, 3)
    assert origins[("model", "layers", 0)] == (f, 4)
    assert origins[("model", "layers", 0, "units")] == (f, 4)
    assert origins[("model", "layers", 1, "units")] == (f, 7)


def test_duplicate_keys_are_errors_at_the_second_one(write_config):
    path = write_config(
        """
        training:
          epochs: 3
          epochs: 5
        seed: 1
        seed: 2
        """
    )
    with pytest.raises(ConfigError) as error:
        load_yaml(path)
    assert rendered(error) == [
        f"{path}:3  training.epochs: duplicate key 'epochs' (first set on line 2)",
        f"{path}:5  seed: duplicate key 'seed' (first set on line 4)",
    ]


def test_python_tags_are_refused_and_never_run(write_config, tmp_path: Path):
    marker = tmp_path / "pwned"
    path = write_config(
        f"""
        name: x
        model: !!python/object/apply:os.system ["touch {marker}"]
        """
    )
    with pytest.raises(ConfigError) as error:
        load_yaml(path)
    assert rendered(error) == [
        f"{path}:2  model: YAML tag '!!python/object/apply:os.system' is not allowed. "
        "A config is plain data: mappings, lists, strings, numbers, true/false and null."
    ]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence)"),
        ("a:\n  b: 1\n\tc: 2\n", 3, "invalid YAML: found character '\\t' that cannot start any token"),
        ("a: b: c\n", 1, "invalid YAML: mapping values are not allowed here"),
    ],
)
def test_syntax_errors_name_the_line(write_config, text, line, message):
    path = write_config(text)
    with pytest.raises(ConfigError) as error:
        load_yaml(path)
    (problem,) = error.value.problems
    assert (problem.file, problem.line) == (str(path), line)
    assert problem.message.startswith(message)


def test_empty_file_and_non_mapping_top(write_config):
    empty = write_config("# nothing here\n", "empty.yaml")
    with pytest.raises(ConfigError) as error:
        load_yaml(empty)
    assert rendered(error) == [
        f"{empty}  the file is empty. A config is a mapping of sections such as model:, loss: and training:."
    ]

    listing = write_config("- model\n- loss\n", "list.yaml")
    with pytest.raises(ConfigError) as error:
        load_yaml(listing)
    assert rendered(error) == [
        f"{listing}:1  the top level must be a mapping of sections such as model: and training: (got a list)"
    ]


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as error:
        load_yaml(tmp_path / "nope.yaml")
    assert rendered(error) == [f"{tmp_path / 'nope.yaml'}  no such config file"]


def test_anchors_merge_keys_and_alias_bombs():
    data, origins = load_yaml_text("base: &b {units: 8, activation: relu}\nlayer:\n  <<: *b\n  units: 4\n", "f")
    assert data["layer"] == {"units": 4, "activation": "relu"}
    assert origins[("layer", "units")] == ("f", 4)
    assert origins[("layer", "activation")] == ("f", 1)

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(ConfigError, match="too many values"):
        load_yaml_text(bomb, "bomb.yaml")


def test_parse_value_reads_yaml():
    assert parse_value("8") == 8
    assert parse_value("1e-3") == 0.001
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("{type: Dense, units: 4}") == {"type": "Dense", "units": 4}
    assert parse_value("relu") == "relu"
    assert parse_value("no") == "no"
    assert parse_value("") is None
    with pytest.raises(ConfigError, match=r"--set x  invalid YAML"):
        parse_value("[1, 2", "--set x")


def test_dotted():
    assert dotted(("model", "layers", 1, "units")) == "model.layers[1].units"
    assert dotted((0, "a")) == "[0].a"
    assert dotted(()) == ""


def test_problems_inside_a_reused_anchor_are_reported_once():
    text = "base: &b\n  units: 1\n  units: 2\nx:\n  <<: *b\ny:\n  <<: *b\n"
    with pytest.raises(ConfigError) as error:
        load_yaml_text(text, "f")
    assert rendered(error) == ["f:3  base.units: duplicate key 'units' (first set on line 2)"]
