"""``dlkit train``: train from configs, or resume a run. Parse, call the library, render."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import click

from dlkit.cli.render import emit_json, err_console, handle_errors, info


class _ConsoleLog(logging.Handler):
    """dlkit's log records (warnings, run folder) as lines on the stderr console.

    Also receives Keras/TensorFlow's ``absl`` warnings (e.g. the legacy ``.h5`` save notice), shown once each as
    dlkit ``warning:`` lines instead of Python's raw ``WARNING:absl:...`` fallback format.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.name.startswith("absl"):
            if record.levelno < logging.WARNING or text in self.seen:
                return
            self.seen.add(text)
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        info(prefix + text)


@contextlib.contextmanager
def _logging() -> Iterator[None]:
    """Show dlkit's INFO/WARNING records on stderr while the command runs; restore the logger afterwards."""
    handler = _ConsoleLog()
    loggers = [(logging.getLogger("dlkit"), logging.INFO), (logging.getLogger("absl"), logging.WARNING)]
    saved = [(logger.level, logger.propagate) for logger, _ in loggers]
    for logger, level in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    try:
        yield
    finally:
        for (logger, _), (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


_SPLITS = ("train", "validation", "test")


def _plain(key: str, value: Any) -> str:
    """A dry-run plan value as human text: ``train 1258, validation 180, test 359``, ``cpu (x86_64)``."""
    if isinstance(value, dict):
        if key == "device" and "kind" in value:
            count = value.get("count") or 1
            name = f" ({value['name']})" if value.get("name") else ""
            return f"{value['kind']}{name}" + (f" x{count}" if count > 1 else "")
        keys = [k for k in _SPLITS if k in value] + [k for k in value if k not in _SPLITS]
        return ", ".join(f"{k} {_plain(k, value[k])}" for k in keys) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(key, v) for v in value) or "none"
    if value is None:
        return "none"
    return str(value)


def _run(
    configs: tuple[str, ...],
    overrides: tuple[str, ...],
    name: str | None,
    runs_dir: str,
    resume_dir: str | None,
    dry_run: bool,
    plugins: tuple[str, ...],
) -> Any:
    from dlkit.errors import UsageError

    if plugins:
        from dlkit.models.registry import load_plugins

        load_plugins(plugins)
    from dlkit.training import trainer

    console = err_console()
    if resume_dir:
        if name or dry_run:
            raise UsageError("--name and --dry-run do not apply to --resume")
        result = trainer.resume(resume_dir, list(overrides), command=sys.argv, console=console)
    else:
        result = trainer.train_files(
            configs, overrides, runs_dir=runs_dir, name=name, dry_run=dry_run, command=sys.argv, console=console
        )
    return result


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("configs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (YAML).")
@click.option("--name", default=None, help="Run name. Defaults to the config's `name`.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False), help="Runs folder.")
@click.option("--resume", "resume_dir", default=None, type=click.Path(), help="Continue this run folder.")
@click.option("--dry-run", is_flag=True, help="Validate, build, load data and check it; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print only the final JSON object on stdout.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="Import MODULE to register components.")
@handle_errors
def train(
    configs: tuple[str, ...],
    overrides: tuple[str, ...],
    name: str | None,
    runs_dir: str,
    resume_dir: str | None,
    dry_run: bool,
    as_json: bool,
    plugins: tuple[str, ...],
) -> None:
    """Train a model from CONFIG files (merged left to right), or continue one with --resume RUN_DIR.

    \b
    Exit codes: 2 config error, 3 data error, 4 diverged, 130/143 interrupted (state saved).
    """
    from dlkit.errors import UsageError

    if bool(configs) == bool(resume_dir):
        raise UsageError("give CONFIG files to start a run, or --resume RUN_DIR to continue one (not both)")
    with _logging():
        try:
            result = _run(configs, overrides, name, runs_dir, resume_dir, dry_run, plugins)
        except BaseException as error:
            # A run that started and then stopped (signal, divergence, failure) still prints its JSON object,
            # so a script learns the run_dir to resume; the error is then rendered with its exit code.
            stopped = getattr(error, "result", None)
            if as_json and stopped is not None:
                emit_json(stopped.as_json())
            raise
    if as_json:
        emit_json(result.as_json())
    elif result.plan is not None:
        for key, value in result.plan.items():
            info(f"{key}: {_plain(key, value)}")
        info("dry run: nothing was written")
    elif result.worker is not None:
        info(f"{result.worker} {result.status}: {result.epochs} epochs; the chief wrote the run folder")
    else:
        info(f"{result.status}: {result.epochs} epochs, run folder {result.run_dir}")
