"""Typed errors raised by the library; only the CLI renders them and picks the exit code.

Every expected failure is a :class:`DlkitError` subclass carrying the contract's exit code
(../shared/DESIGN.md, "Exit codes"). Anything else that escapes is an internal error (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can.

    Attributes:
        file: The file the value came from (a config path, a data file, or ``--set``). Defaults to None.
        line: 1-based line in ``file``. Defaults to None.
        path: Dotted key path, e.g. ``model.layers[1].activaton``. Defaults to "".
        message: What is wrong and what was expected, e.g. ``Dense has no argument 'activaton'``.
        got: The value received, rendered in the message as ``(got X)``. Defaults to None.
        suggestion: A near match, rendered as ``Did you mean 'Y'?``. Defaults to None.
        hint: A free-form fix, rendered after the suggestion. Defaults to None.
    """

    file: str | None = None
    line: int | None = None
    path: str = ""
    message: str = ""
    got: str | None = field(default=None, compare=False)
    suggestion: str | None = field(default=None, compare=False)
    hint: str | None = field(default=None, compare=False)

    def sort_key(self) -> tuple[str, int, str]:
        """Order problems by file, then line, then key path (unlocated ones last)."""
        return (self.file or "\uffff", self.line if self.line is not None else 1 << 30, self.path)

    def render(self) -> str:
        """Render as ``FILE:LINE  dotted.path: message (got X). Did you mean 'Y'? hint``."""
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = self.message
        if self.got is not None:
            text += f" (got {self.got})"
        if self.suggestion:
            text += f". Did you mean '{self.suggestion}'?"
        if self.hint:
            text += ("" if text.endswith((".", "?")) else ".") + f" {self.hint}"
        head = f"{self.path}: " if self.path else ""
        return f"{where}  {head}{text}" if where else f"{head}{text}"


class DlkitError(Exception):
    """Base of every expected failure. ``exit_code`` follows the contract."""

    exit_code = 1

    def __init__(self, message: str = "", problems: list[Problem] | None = None) -> None:
        self.problems = sorted(problems or [], key=Problem.sort_key)
        super().__init__(message or "\n".join(p.render() for p in self.problems))

    @property
    def message(self) -> str:
        """The headline message (may be empty when ``problems`` say it all)."""
        return str(self)


class UsageError(DlkitError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class ConfigError(DlkitError):
    """One or more problems in the config files or ``--set`` overrides (exit 2)."""

    exit_code = 2


class DataError(DlkitError):
    """Missing, unreadable, empty or inconsistent data (exit 3)."""

    exit_code = 3


class DivergedError(DlkitError):
    """Training produced NaN/Inf; the last good checkpoint is kept (exit 4)."""

    exit_code = 4


class ExportError(DlkitError):
    """An export failed or failed verification; the trained model is kept (exit 5)."""

    exit_code = 5


class Interrupted(DlkitError):
    """Stopped by SIGINT (exit 130) or SIGTERM (exit 143); state was saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def tf_message(error: BaseException) -> str:
    """The readable first line of a TensorFlow op error, without ``{{function_node ...}}`` and ``[Op:...] name:``."""
    import re

    text = str(getattr(error, "message", None) or error).strip()
    text = text.splitlines()[0] if text else ""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip()
    return text[:200] or type(error).__name__
