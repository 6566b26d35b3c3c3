"""``dlkit summary`` and ``dlkit list`` in-process: exit codes, JSON on stdout only, pinned messages."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from dlkit.cli.main import cli

SEED = Path(__file__).resolve().parents[2] / "configs" / "cifar10_cnn.yaml"


def run(runner, *args):
    result = runner.invoke(cli, list(map(str, args)))
    assert "Traceback" not in result.output, result.output
    return result


def test_summary_json_of_the_seed_cnn(runner) -> None:
    result = run(runner, "summary", SEED, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["params"] == {"total": 42442, "trainable": 42442, "non_trainable": 0}
    assert info["flops"] == 7_831_296
    assert info["weight_bytes"] == 42442 * 4
    assert [layer["type"] for layer in info["layers"]] == [
        "Rescaling",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    last = info["layers"][-1]
    assert last.pop("name").startswith("dense")  # Keras numbers auto names per process: dense, dense_1 ...
    assert last == {
        "type": "Dense",
        "output_shape": [None, 10],
        "params": 23050,
        "flops": 46080,
    }


def test_summary_table_goes_to_stderr(runner) -> None:
    result = run(runner, "summary", SEED, "--set", "model.layers[5].units=5")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Total params: 30,917  trainable: 30,917  non-trainable: 0" in result.stderr
    assert "FLOPs per sample: 7,808,256" in result.stderr
    assert "Weight memory: 120.8 KiB (123,668 bytes)" in result.stderr


def test_summary_reports_every_problem_with_file_and_line(runner, write_config) -> None:
    path = write_config(
        """
        model:
          input_shape: [4]
          layers:
            - {type: Dens, units: 2}
            - {type: Dense, units: 2, activaton: relu}
        optimizer: {type: adam, learning_rat: 0.1}
        loss: mse
        """
    )
    result = run(runner, "summary", path, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}:4  model.layers[0].type: unknown layer 'Dens'. Did you mean 'Dense'?",
        f"{path}:5  model.layers[1].activaton: Dense has no argument 'activaton'. Did you mean 'activation'?",
        f"{path}:6  optimizer.learning_rat: Adam has no argument 'learning_rat'. Did you mean 'learning_rate'?",
    ]


def test_summary_build_error_is_located(runner, write_config) -> None:
    path = write_config(
        """
        model:
          input_shape: [4]
          layers:
            - {type: Dense, units: 2}
            - {type: Add, inputs: [input, missing]}
        loss: mse
        """
    )
    result = run(runner, "summary", path)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}:5  model.layers[1].inputs[1]: unknown input 'missing'; "
        "inputs may name 'input' or an earlier layer"
    )


def test_summary_with_plugin(runner, write_config, tmp_path: Path, monkeypatch) -> None:
    from dlkit.models import unregister_layer

    (tmp_path / "dlkit_cli_plugin.py").write_text(
        textwrap.dedent(
            """
            import keras
            from dlkit.models import register_layer

            @register_layer
            class Twice(keras.layers.Layer):
                def call(self, x):
                    return 2 * x
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_config("model: {input_shape: [3], layers: [twice, {type: Dense, units: 1}]}\nloss: mse\n")
    try:
        result = run(runner, "summary", path)
        assert result.exit_code == 2
        assert "model.layers[0]: unknown layer 'twice'" in result.stderr
        result = run(runner, "summary", path, "--plugin", "dlkit_cli_plugin", "--json")
        assert result.exit_code == 0, result.output
        assert [layer["type"] for layer in json.loads(result.stdout)["layers"]] == ["Twice", "Dense"]
    finally:
        unregister_layer("Twice")


def test_missing_plugin_exit_2(runner) -> None:
    result = run(runner, "summary", SEED, "--plugin", "no_such_plugin_mod")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --plugin no_such_plugin_mod: cannot import plugin module 'no_such_plugin_mod'"
    )


def test_list_kinds(runner) -> None:
    result = run(runner, "list", "layers")
    assert result.exit_code == 0
    layers = result.stdout.split()
    assert {"Conv1D", "Conv2D", "Conv3D", "LSTM", "Bidirectional", "Dense"} <= set(layers)
    result = run(runner, "list", "optimizers", "--json")
    assert json.loads(result.stdout)["kind"] == "optimizers"
    assert "AdamW" in json.loads(result.stdout)["names"]
    for kind, expected in (
        ("losses", "sparse_categorical_crossentropy"),
        ("metrics", "accuracy"),
        ("callbacks", "EarlyStopping"),
        ("schedules", "CosineDecay"),
        ("activations", "gelu"),
        ("initializers", "HeNormal"),
        ("regularizers", "L1L2"),
        ("constraints", "MaxNorm"),
    ):
        result = run(runner, "list", kind)
        assert result.exit_code == 0 and expected in result.stdout.split(), (kind, result.output)


def test_list_datasets(runner) -> None:
    result = run(runner, "list", "datasets")
    assert result.exit_code == 0
    first = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"csv", "npz", "images", "tfrecord", "synthetic", "keras:mnist", "keras:cifar10", "sklearn:digits"} <= set(
        first
    )
    assert "tfds:NAME" in first


def test_list_typo_gets_did_you_mean(runner) -> None:
    result = run(runner, "list", "optimisers")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown kind 'optimisers'; choose one of layers, optimizers, losses, metrics, callbacks, schedules, "
        "datasets, activations, initializers, regularizers, constraints. Did you mean 'optimizers'?"
    )
