"""A callback `monitor` that misspells a logged name is a config error (Keras would fail or warn mid-run)."""

from __future__ import annotations

import pytest

from dlkit.cli.main import cli

CONFIG = """
name: m
data: {source: synthetic, samples: 32}
model: {input_shape: [4], layers: [{type: Dense, units: 3, activation: softmax}]}
loss: sparse_categorical_crossentropy
metrics: [accuracy, {type: SparseTopKCategoricalAccuracy, k: 2}]
callbacks:
  - {type: EarlyStopping, monitor: MONITOR}
"""


def test_misspelled_monitor_is_reported_with_file_line_and_suggestion(runner, write_config) -> None:
    path = write_config(CONFIG.replace("MONITOR", "val_los"))
    result = runner.invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:7  callbacks[0].monitor: 'val_los' is not logged during training (logged: loss, accuracy, "
        "SparseTopKCategoricalAccuracy, sparse_top_k_categorical_accuracy, val_loss, val_accuracy, "
        "val_SparseTopKCategoricalAccuracy, val_sparse_top_k_categorical_accuracy). Did you mean 'val_loss'?\n"
    )


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy", "sparse_top_k_categorical_accuracy", "lr", "my_log"])
def test_logged_or_unrelated_monitors_pass(runner, write_config, monitor: str) -> None:
    # names with no near match are left alone: a plugin metric may log under a name the config cannot show
    result = runner.invoke(cli, ["config", "check", str(write_config(CONFIG.replace("MONITOR", monitor)))])
    assert result.exit_code == 0, result.stderr
