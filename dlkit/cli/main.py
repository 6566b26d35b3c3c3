"""The ``dlkit`` command group.

Sub-commands are imported lazily: ``dlkit --help`` and ``dlkit --version`` must not pay for TensorFlow
(3-6 s), so each command lives in its own module and is loaded only when it runs.
"""

from __future__ import annotations

import importlib
import os

import click

from dlkit import __version__

# name -> (module:attribute, one-line help shown by `dlkit --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dlkit.cli.train_cmd:train", "Train a model from one or more YAML configs, or resume a run."),
    "evaluate": ("dlkit.cli.export_cmds:evaluate", "Score a run, model file or exported artifact on a split."),
    "export": ("dlkit.cli.export_cmds:export", "Export a run to SavedModel/TFLite/Keras/ONNX and verify it."),
    "predict": ("dlkit.cli.export_cmds:predict", "Predict with a run or artifact on image, CSV or npz inputs."),
    "plot": ("dlkit.cli.export_cmds:plot", "Plot learning curves (and confusion matrix) of a run as PNG."),
    "summary": ("dlkit.cli.model_cmds:summary", "Model table, parameters, FLOPs and memory, without training."),
    "config": ("dlkit.cli.config_cmds:config", "Check, render or print the schema of configs."),
    "list": ("dlkit.cli.model_cmds:list_components", "List the Keras components a config may name."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else None
        if name is not None and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dlkit")
@click.option(
    "--traceback", is_flag=True, envvar="DLKIT_DEBUG", help="Show the Python traceback of expected failures too."
)
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Train, evaluate and export Keras models from one YAML file.

    \b
    Exit codes: 0 done, 1 internal error, 2 usage/config error, 3 data error,
    4 training diverged, 5 export failed, 130/143 interrupted (resume with --resume).
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback or os.environ.get("DLKIT_DEBUG", "") not in ("", "0")


def main() -> None:
    """Console-script entry point."""
    from dlkit.quiet_tf import install_import_hook

    install_import_hook()
    cli(prog_name="dlkit")
