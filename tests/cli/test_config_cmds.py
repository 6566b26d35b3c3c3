"""``dlkit config check|render|schema`` in-process: exit codes and the exact ``file:line  path: message`` lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlkit.cli.main import cli

GOOD = """
name: tiny
data: {source: synthetic, samples: 64, batch_size: 16}
model:
  input_shape: [8]
  layers:
    - {type: dense, units: 4, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
optimizer: {type: adam, learning_rate: 1e-3}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 1}
"""


def run(runner, *args):
    result = runner.invoke(cli, list(map(str, args)))
    assert "Traceback" not in result.output, result.output
    return result


def errors(result) -> list[str]:
    """The problem lines of a failed command (the first one follows 'error: ')."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    return [lines[0].removeprefix("error: "), *lines[1:]]


def check(runner, write_config, text, *extra):
    path = write_config(text)
    return str(path), errors(run(runner, "config", "check", path, *extra))


def with_(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# ---------------------------------------------------------------------------------- bad input, one at a time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(GOOD + "trainng: {epochs: 2}\n", "12  trainng: unknown key 'trainng'. Did you mean 'training'?",
                     id="unknown-top-level-key"),
        pytest.param(with_("training: {epochs: 1}", "training: {epochs: 1, patience: 3}"),
                     "11  training.patience: unknown key 'patience'; valid keys: epochs, precision, deterministic, "
                     "steps_per_execution, jit_compile, gradient_monitor, nan_recovery, class_weight, distribution",
                     id="unknown-nested-key"),
        pytest.param(with_("{epochs: 1}", "{epochs: ten}"), "11  training.epochs: expected an integer (got 'ten')",
                     id="wrong-type"),
        pytest.param(with_("batch_size: 16", "batch_size: 0"), "2  data.batch_size: must be at least 1 (got 0)",
                     id="out-of-range"),
        pytest.param(with_("learning_rate: 1e-3", "learning_rate: 1e-3, clipnorm: 1.0, global_clipnorm: 2"),
                     "8  optimizer.global_clipnorm: give only one of clipnorm, clipvalue, global_clipnorm "
                     "(got clipnorm, global_clipnorm)", id="two-clip-args"),
        pytest.param(with_("learning_rate: 1e-3", "clipnorm: -1"), "8  optimizer.clipnorm: must be greater than 0 "
                     "(got -1)", id="negative-clipnorm"),
        pytest.param(with_("{epochs: 1}", "{epochs: 1, precision: mixed_fp16}"),
                     "11  training.precision: expected one of auto, float32, mixed_float16, mixed_bfloat16 "
                     "(got 'mixed_fp16'). Did you mean 'mixed_float16'?", id="enum-typo"),
        pytest.param(GOOD + "seed: 1\nseed: 2\n", "13  seed: duplicate key 'seed' (first set on line 12)",
                     id="duplicate-key"),
        pytest.param(with_("{type: Dense, units: 3, activation: softmax}", "{type: Dense, units: 3"),
                     "8  invalid YAML: expected ',' or '}', but got ':' (while parsing a flow mapping)",
                     id="yaml-syntax"),
        pytest.param(with_("loss: sparse_categorical_crossentropy",
                           "loss: !!python/object/apply:os.system [echo hacked]"),
                     "9  loss: YAML tag '!!python/object/apply:os.system' is not allowed. A config is plain data: "
                     "mappings, lists, strings, numbers, true/false and null.", id="python-tag"),
        pytest.param(with_("{type: dense, units: 4", "{type: keras.layers.Dense, units: 4"),
                     "6  model.layers[0].type: import paths are not allowed; name a registered component "
                     "(got 'keras.layers.Dense'). Did you mean 'Dense'?", id="import-path"),
        pytest.param(with_("loss: sparse_categorical_crossentropy", "loss: 'os:system'"),
                     "9  loss.type: import paths are not allowed; name a registered component (got 'os:system')",
                     id="import-path-colon"),
        pytest.param("model:\n  input_shape: [8]\n  layers: []\nloss: mse\n",
                     "3  model.layers: needs at least one item (got [])", id="no-layers"),
        pytest.param(with_("name: tiny", "name: ../tiny"), "1  name: run name must be a plain name: letters, digits, "
                     "'.', '_' and '-', no path separators (got '../tiny')", id="run-name-with-slash"),
        pytest.param(with_("{type: dense, units: 4, activation: relu}", "{type: dense, units: 4, activaton: relu}"),
                     "6  model.layers[0].activaton: Dense has no argument 'activaton'. Did you mean 'activation'?",
                     id="layer-arg-typo"),
        pytest.param(with_("{type: Dense, units: 3", "{tpye: Dense, units: 3"),
                     "7  model.layers[1].tpye: a layer needs a `type` (a Keras layer name) or a `block`. "
                     "Did you mean 'type'?", id="layer-type-key-typo"),
    ],
)  # fmt: skip
def test_bad_input(runner, write_config, text, expected):
    path, lines = check(runner, write_config, text)
    line, _, message = expected.partition("  ")
    assert lines == [f"{path}:{line}  {message}"]


def test_empty_file(runner, write_config):
    path, lines = check(runner, write_config, "\n# only a comment\n")
    assert lines == [
        f"{path}  the file is empty. A config is a mapping of sections such as model:, loss: and training:."
    ]


def test_missing_file(runner, tmp_path):
    lines = errors(run(runner, "config", "check", tmp_path / "nope.yaml"))
    assert lines == [f"{tmp_path / 'nope.yaml'}  no such config file"]


def test_unknown_component_names(runner, write_config):
    text = with_("{type: Dense, units: 3, activation: softmax}", "{type: Dence, units: 3}")
    text = text.replace("{type: adam,", "{type: adamm,").replace("[accuracy]", "[acuracy]")
    path, lines = check(runner, write_config, text)
    assert lines == [
        f"{path}:7  model.layers[1].type: unknown layer 'Dence'. Did you mean 'Dense'?",
        f"{path}:8  optimizer.type: unknown optimizer 'adamm'. Did you mean 'Adam'?",
        f"{path}:10  metrics[0]: unknown metric 'acuracy'. Did you mean 'accuracy'?",
    ]


def test_every_problem_at_once_sorted_by_line(runner, write_config):
    text = GOOD.replace("name: tiny", "name: a/b").replace("batch_size: 16", "batch_size: 0")
    text = text.replace("activation: relu", "activaton: relu").replace("{epochs: 1}", "{epochs: ten, epoch: 3}")
    path, lines = check(runner, write_config, text, "--set", "training.precision=fp16")
    assert lines == [
        "--set training.precision  training.precision: expected one of auto, float32, mixed_float16, "
        "mixed_bfloat16 (got 'fp16')",
        f"{path}:1  name: run name must be a plain name: letters, digits, '.', '_' and '-', no path separators "
        "(got 'a/b')",
        f"{path}:2  data.batch_size: must be at least 1 (got 0)",
        f"{path}:6  model.layers[0].activaton: Dense has no argument 'activaton'. Did you mean 'activation'?",
        f"{path}:11  training.epoch: unknown key 'epoch'. Did you mean 'epochs'?",
        f"{path}:11  training.epochs: expected an integer (got 'ten')",
    ]


def test_set_typo_gets_a_suggestion(runner, write_config):
    _, lines = check(runner, write_config, GOOD, "--set", "training.epoch=3", "--set", "model.layers[0].unit=8")
    assert lines == [
        "--set model.layers[0].unit  model.layers[0].unit: Dense has no argument 'unit'. Did you mean 'units'?",
        "--set training.epoch  training.epoch: unknown key 'epoch'. Did you mean 'epochs'?",
    ]


def test_multi_file_merge_reports_the_file_that_set_the_value(runner, write_config):
    base = write_config(GOOD, "base.yaml")
    over = write_config("training:\n  epochs: 0\n", "over.yaml")
    lines = errors(run(runner, "config", "check", base, over))
    assert lines == [f"{over}:2  training.epochs: must be at least 1 (got 0)"]


def test_traceback_flag_shows_the_traceback(runner, write_config):
    path = write_config(with_("{epochs: 1}", "{epochs: 0}"))
    result = runner.invoke(cli, ["--traceback", "config", "check", str(path)])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


# ------------------------------------------------------------------------------------------- good input


@pytest.mark.slow
def test_check_builds_the_model(runner, write_config):
    result = run(runner, "config", "check", write_config(GOOD), "--set", "model.layers[0].units=16")
    assert result.exit_code == 0, result.output
    # Dense(8 -> 16) + Dense(16 -> 3)
    assert result.stderr.strip().splitlines()[-1] == f"ok: {8 * 16 + 16 + 16 * 3 + 3} parameters"


def test_render_prints_the_resolved_config(runner, write_config):
    result = run(runner, "config", "render", write_config(GOOD), "--set", "optimizer.clipnorm=1")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "  - {type: Dense, units: 4, activation: relu}\n" in text  # alias written back canonical
    assert "optimizer: {type: Adam, learning_rate: 0.001, clipnorm: 1.0}\n" in text
    assert "  precision: auto\n" in text and "  calibration_samples: 500\n" in text  # defaults filled
    assert "loss: {type: sparse_categorical_crossentropy}\n" in text


def test_render_of_a_bad_config_fails_like_check(runner, write_config):
    path = write_config(with_("{epochs: 1}", "{epochs: 0}"))
    assert errors(run(runner, "config", "render", path)) == [f"{path}:11  training.epochs: must be at least 1 (got 0)"]


def test_schema_prints_json_schema(runner, tmp_path):
    result = run(runner, "config", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert set(schema["properties"]) == {
        "name", "seed", "data", "model", "optimizer", "loss", "metrics", "callbacks", "training", "export"
    }  # fmt: skip
    out = tmp_path / "dlkit.schema.json"
    result = run(runner, "config", "schema", "-o", out)
    assert result.exit_code == 0 and json.loads(out.read_text()) == schema


def test_config_commands_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dlkit.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['config', 'schema'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(cli, ['config', '--help'])\n"
        "assert r.exit_code == 0 and 'render' in r.output, r.output\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_plugin_layers_can_be_named(runner, write_config, tmp_path, monkeypatch):
    plugin = tmp_path / "plugins" / "my_dlkit_layers.py"
    plugin.parent.mkdir()
    plugin.write_text(
        "import keras\n"
        "from dlkit.models.registry import register_layer\n\n\n"
        "@register_layer\n"
        "class TimesTwo(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return x * 2\n"
    )
    monkeypatch.syspath_prepend(str(plugin.parent))
    path = write_config(with_("{type: Dense, units: 3, activation: softmax}", "TimesTwo"))
    without = errors(run(runner, "config", "check", path))
    assert without == [f"{path}:7  model.layers[1]: unknown layer 'TimesTwo'"]
    from dlkit.models.registry import unregister_layer

    try:
        result = run(runner, "config", "check", path, "--plugin", "my_dlkit_layers")
    finally:
        unregister_layer("TimesTwo")
        sys.modules.pop("my_dlkit_layers", None)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == "ok: 36 parameters"
    missing = errors(run(runner, "config", "check", path, "--plugin", "no_such_plugin_module"))
    assert missing[0].startswith("--plugin no_such_plugin_module: cannot import plugin module 'no_such_plugin_module'")
