"""``dlkit evaluate``, ``export``, ``predict`` and ``plot``: thin commands over :mod:`dlkit.export`."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from dlkit.cli.render import emit_json, err_console, handle_errors, info, split_multi
from dlkit.export.formats import FORMATS, QUANTIZATIONS, help_text

PLUGIN_HELP = "Import MODULE to register custom layers (dlkit.plugins entry points load too)."


def _load_plugins(plugins: tuple[str, ...]) -> None:
    """Register custom layers before a model file is deserialized."""
    from dlkit.models.registry import load_plugins

    load_plugins(list(plugins))


def _out(as_json: bool) -> Console:
    """Where human results go: stdout normally, stderr when stdout carries the JSON object."""
    return err_console() if as_json else Console(highlight=False, soft_wrap=True)


@click.command()
@click.argument("target", metavar="RUN_DIR|MODEL_FILE|ARTIFACT")
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True)
@click.option("--data", "data", metavar="PATH", help="Score this data file/folder (read with the run's data settings).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help=PLUGIN_HELP)
@handle_errors
def evaluate(target: str, split: str, data: str | None, as_json: bool, plugins: tuple[str, ...]) -> None:
    """Score a run, model file or exported artifact (SavedModel, .tflite, .onnx) on a split.

    Writes eval.json in the run folder and, for classifiers, plots/confusion_matrix.png.
    """
    from dlkit.export.evaluate import evaluate as run_evaluate
    from dlkit.export.report import eval_tables

    _load_plugins(plugins)
    result = run_evaluate(target, split=split, data=data)
    console = _out(as_json)
    for table in eval_tables(result):
        console.print(table)
    for path in result["files"]:
        info(f"wrote {path}")
    if as_json:
        emit_json(result)


@click.command(epilog="\b\n" + help_text())
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--format", "formats", multiple=True, metavar="|".join(FORMATS), help="Repeatable or comma list.")
@click.option("--quantize", multiple=True, metavar="|".join(QUANTIZATIONS), help="TFLite; repeatable or comma list.")
@click.option("--calibration-samples", type=click.IntRange(min=1), help="int8 calibration samples from train.")
@click.option("--no-verify", is_flag=True, help="Skip running the artifacts on held-out data.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help=PLUGIN_HELP)
@handle_errors
def export(
    run_dir: str,
    formats: tuple[str, ...],
    quantize: tuple[str, ...],
    calibration_samples: int | None,
    no_verify: bool,
    as_json: bool,
    plugins: tuple[str, ...],
) -> None:
    """Export a run's model, load every artifact in its own runtime and verify it against the Keras model.

    Defaults come from the config's export section. Artifacts land in RUN_DIR/export/ (export-2/, ...
    when an export already exists: nothing is merged or overwritten). Exit 5 when an artifact fails to
    convert or to verify; what was produced and export_report.json are kept.
    """
    from dlkit.export.exporter import ExportFailed, export_run

    _load_plugins(plugins)
    try:
        report = export_run(
            run_dir, split_multi(formats), split_multi(quantize), calibration_samples, False if no_verify else None
        )
    except ExportFailed as failure:
        _show_export(failure.report, as_json)
        raise
    _show_export(report, as_json)


def _show_export(report: dict[str, Any], as_json: bool) -> None:
    from dlkit.export.report import export_heading, export_messages, export_table

    console = _out(as_json)
    console.print(export_heading(report), markup=False)
    console.print(export_table(report))
    for line in export_messages(report):
        info(line)
    if as_json:
        emit_json(report)


@click.command()
@click.argument("target", metavar="RUN_DIR|ARTIFACT")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--output", "-o", metavar="FILE", help="Write .csv or .json; default: JSON on stdout.")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help=PLUGIN_HELP)
@handle_errors
def predict(target: str, inputs: tuple[str, ...], output: str | None, top_k: int, plugins: tuple[str, ...]) -> None:
    """Predict image files, CSV files (the training feature columns) or npz arrays with a run or artifact."""
    from dlkit.export.predict import check_output, write_predictions
    from dlkit.export.predict import predict as run_predict
    from dlkit.export.report import predictions_table

    if output:
        check_output(output)
    _load_plugins(plugins)
    result = run_predict(target, list(inputs), top_k=top_k)
    if output is None:
        emit_json(result)
        return
    path = write_predictions(result, output)
    Console(highlight=False, soft_wrap=True).print(predictions_table(result))
    info(f"wrote {len(result['predictions'])} predictions to {path}")


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@handle_errors
def plot(run_dir: str) -> None:
    """Plot learning curves (loss and each metric, train vs validation) and confusion matrices as PNG."""
    from dlkit.export.plot import plot_run
    from dlkit.training.run_dir import resolve_run_dir

    for path in plot_run(resolve_run_dir(run_dir)):
        click.echo(str(path))
