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


@pytest.mark.parametrize(
    "monitor", ["val_loss", "val_accuracy", "sparse_top_k_categorical_accuracy", "lr, mode: min", "time, mode: max"]
)
def test_logged_monitors_pass(runner, write_config, monitor: str) -> None:
    result = runner.invoke(cli, ["config", "check", str(write_config(CONFIG.replace("MONITOR", monitor)))])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("metric", "monitor", "why"),
    [
        (
            "{type: SparseTopKCategoricalAccuracy, k: 2}",
            "lr",
            "'lr' is logged by dlkit, and Keras infers a direction only for the loss and for metrics",
        ),
        ("TruePositives", "val_true_positives", "Keras' TruePositives metric does not say whether higher is better"),
        ("{type: Mean, name: avg}", "avg", "Keras' Mean metric does not say whether higher is better"),
    ],
)
def test_a_logged_monitor_keras_cannot_rank_in_mode_auto_is_reported(
    runner, write_config, metric: str, monitor: str, why: str
) -> None:
    # Keras would raise at the end of the first epoch: in mode auto it ranks only the loss and metrics that
    # declare a direction, and neither dlkit's own logs nor these built-in metrics do.
    text = CONFIG.replace("{type: SparseTopKCategoricalAccuracy, k: 2}", metric).replace("MONITOR", monitor)
    path = write_config(text)
    result = runner.invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:7  callbacks[0].monitor: EarlyStopping cannot tell whether '{monitor}' should be minimized "
        f"or maximized: {why}. Set `mode: min` or `mode: max` on this callback.\n"
    )


@pytest.mark.parametrize(("metric", "monitor"), [("AUC", "val_auc"), ("{type: Precision, name: prec}", "prec")])
def test_a_built_in_metric_with_a_direction_passes(runner, write_config, metric: str, monitor: str) -> None:
    text = CONFIG.replace("{type: SparseTopKCategoricalAccuracy, k: 2}", metric).replace("MONITOR", monitor)
    result = runner.invoke(cli, ["config", "check", str(write_config(text))])
    assert result.exit_code == 0, result.stderr


UNRANKABLE = (
    "callbacks[0].monitor: {callback} cannot tell whether 'my_log' should be minimized or maximized: it is not the "
    "loss or a metric of this config (logged: loss, accuracy, SparseTopKCategoricalAccuracy, "
    "sparse_top_k_categorical_accuracy, val_loss, val_accuracy, val_SparseTopKCategoricalAccuracy, "
    "val_sparse_top_k_categorical_accuracy). Monitor one of those or, if something else logs it, set `mode: min` "
    "or `mode: max`.\n"
)


@pytest.mark.parametrize(
    ("callback", "mode"),
    [
        ("EarlyStopping", ""),
        ("early_stopping", ", mode: auto"),
        ("ReduceLROnPlateau", ""),
        ("ModelCheckpoint", ", save_best_only: true"),
    ],
)
def test_a_monitor_keras_cannot_rank_in_mode_auto_is_reported(runner, write_config, callback: str, mode: str) -> None:
    # Keras would raise at the end of the first epoch, after the run folder exists: the name is neither the loss
    # nor a metric whose direction it knows, and every metric is a built-in one (no plugin can log it).
    text = CONFIG.replace("{type: EarlyStopping, monitor: MONITOR}", f"{{type: {callback}, monitor: my_log{mode}}}")
    path = write_config(text)
    result = runner.invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2
    canonical = "EarlyStopping" if callback == "early_stopping" else callback
    assert result.stderr == f"error: {path}:7  " + UNRANKABLE.format(callback=canonical)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_an_unlogged_monitor_with_an_explicit_mode_passes(runner, write_config, mode: str) -> None:
    # something else (a custom callback) may log it; with a mode Keras does not need to guess a direction
    text = CONFIG.replace("monitor: MONITOR", f"monitor: my_log, mode: {mode}")
    result = runner.invoke(cli, ["config", "check", str(write_config(text))])
    assert result.exit_code == 0, result.stderr


def test_an_unlogged_monitor_is_left_alone_when_a_metric_is_not_built_in(runner, write_config) -> None:
    # a metric Keras does not ship could log `my_log` with a known direction: only the metric is reported
    text = CONFIG.replace("metrics: [accuracy,", "metrics: [MyPluginMetric,").replace("MONITOR", "my_log")
    path = write_config(text)
    result = runner.invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:5  metrics[0]: unknown metric 'MyPluginMetric'")
    assert "callbacks[0]" not in result.stderr


@pytest.mark.parametrize(("metric", "monitor"), [("FBetaScore", "val_fbeta_score"), ("LogCoshError", "val_logcosh")])
def test_a_metric_class_default_name_is_a_logged_name(runner, write_config, metric: str, monitor: str) -> None:
    # Keras names these `fbeta_score` and `logcosh`, which no snake_case of the class name gives
    text = CONFIG.replace("{type: SparseTopKCategoricalAccuracy, k: 2}", f"{{type: {metric}}}")
    result = runner.invoke(cli, ["config", "check", str(write_config(text.replace("MONITOR", monitor)))])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("metric", "monitor"), [("FBetaScore", "fbeta_score"), ("LogCoshError", "val_logcosh")])
def test_a_bare_metric_class_default_name_is_a_logged_name(runner, write_config, metric: str, monitor: str) -> None:
    # `metrics: [LogCoshError]` logs `logcosh` just as `{type: LogCoshError}` does
    text = CONFIG.replace("{type: SparseTopKCategoricalAccuracy, k: 2}", metric)
    result = runner.invoke(cli, ["config", "check", str(write_config(text.replace("MONITOR", monitor)))])
    assert result.exit_code == 0, result.stderr


def test_train_refuses_an_unrankable_monitor_before_writing_the_run_folder(runner, write_config, tmp_path) -> None:
    path = write_config(CONFIG.replace("MONITOR", "my_log") + "training: {epochs: 1}\n")
    runs = tmp_path / "runs"
    result = runner.invoke(cli, ["train", str(path), "--runs-dir", str(runs)])
    assert result.exit_code == 2, result.stderr
    assert f"error: {path}:7  " + UNRANKABLE.format(callback="EarlyStopping") in result.stderr
    assert not runs.exists()
