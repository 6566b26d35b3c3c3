"""Terminal output and error rendering: the only place that prints and picks exit codes.

Diagnostics go to stderr, results to stdout, so ``dlkit evaluate RUN --json > m.json`` stays clean.
Respects ``NO_COLOR`` and non-terminals (rich does both).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import traceback as tb
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from dlkit.errors import DlkitError, Interrupted

F = TypeVar("F", bound=Callable[..., Any])

_err: Console | None = None


def err_console() -> Console:
    """The one stderr console (created lazily so tests capturing stderr see it)."""
    global _err
    if _err is None or _err.file is not sys.stderr:
        _err = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err


def info(message: str) -> None:
    """A human line on stderr."""
    err_console().print(message, markup=False)


def emit_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (nothing else goes to stdout with --json)."""
    click.echo(json.dumps(obj, indent=2, default=str))


def _want_traceback() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    flag = bool(root and isinstance(root.obj, dict) and root.obj.get("traceback"))
    return flag or os.environ.get("DLKIT_DEBUG", "") not in ("", "0")


def render_error(error: DlkitError) -> str:
    """The user-facing text of an expected failure: a headline and/or one line per problem."""
    lines = [p.render() for p in error.problems]
    head = error.message if not error.problems or error.message not in ("\n".join(lines),) else ""
    if error.problems and head:
        return head + "\n" + "\n".join(lines)
    return head or "\n".join(lines)


def _headline(error: DlkitError) -> str:
    """``error: ...`` for failures; an interruption (state saved, resumable) is not one: ``Interrupted ...``."""
    text = render_error(error)
    if isinstance(error, Interrupted):
        return text[:1].upper() + text[1:]
    return f"error: {text}"


def handle_errors(func: F) -> F:
    """Wrap a command: typed errors -> message + contract exit code; no traceback unless asked.

    Internal errors (anything not a DlkitError) exit 1 with a one-line summary and the hint to rerun
    with ``--traceback``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DlkitError as error:
            if _want_traceback():
                err_console().print(tb.format_exc(), markup=False)
            err_console().print(_headline(error), markup=False)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            err_console().print("Interrupted", markup=False)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 - the last line of defence
            logging.getLogger("dlkit").debug("internal error", exc_info=True)
            if _want_traceback():
                err_console().print(tb.format_exc(), markup=False)
            err_console().print(
                f"internal error: {type(error).__name__}: {error}\n"
                "This is a bug in dlkit; rerun with --traceback and report it.",
                markup=False,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def split_multi(values: tuple[str, ...]) -> list[str]:
    """Repeatable options that also take comma lists: ``--format a --format b,c`` -> [a, b, c]."""
    out: list[str] = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out
