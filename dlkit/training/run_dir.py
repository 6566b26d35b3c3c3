"""The run folder: ``runs/<name>/<NNN>/``, one new numbered folder per run, never overwritten.

Layout (../shared/DESIGN.md, "Run folder"): ``config.yaml``, ``run.json``, ``metrics.csv``, ``tensorboard/``,
``checkpoints/``, ``model.keras``. Every file goes through :mod:`dlkit.atomic`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from dlkit.atomic import write_json
from dlkit.config.schema import RUN_NAME_RE
from dlkit.errors import Problem, UsageError

RUN_JSON = "run.json"
CONFIG_YAML = "config.yaml"


def _check_name(name: str) -> None:
    if not RUN_NAME_RE.match(name) or name in (".", ".."):
        raise UsageError(
            problems=[
                Problem(
                    path="--name",
                    message="run name must be a plain name: letters, digits, '.', '_' and '-'",
                    got=repr(name),
                )
            ]
        )


def new_run_dir(runs_dir: str | os.PathLike[str], name: str) -> Path:
    """Create and return the next free ``runs_dir/name/NNN`` folder.

    ``mkdir`` without ``exist_ok`` is the lock: two processes starting at once get different numbers.

    Args:
        runs_dir: Parent of all runs. Created when missing.
        name: Plain run name (letters, digits, ``._-``); anything else raises :class:`UsageError`.
    """
    _check_name(name)
    root = Path(runs_dir).resolve()
    parent = (root / name).resolve()
    if parent.parent != root:  # belt and braces: the name check already forbids separators
        raise UsageError(f"run folder {parent} would land outside --runs-dir {root}")
    parent.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in parent.iterdir() if p.is_dir() and p.name.isdigit()]
    n = max(numbers, default=0) + 1
    while True:
        candidate = parent / f"{n:03d}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


def resolve_run_dir(path: str | os.PathLike[str]) -> Path:
    """Accept ``runs/<name>/<NNN>`` or ``runs/<name>`` (its newest numbered run); raise UsageError otherwise."""
    p = Path(path)
    if (p / RUN_JSON).is_file() or (p / CONFIG_YAML).is_file():
        return p
    if p.is_dir():
        numbered = sorted((c for c in p.iterdir() if c.is_dir() and c.name.isdigit()), key=lambda c: int(c.name))
        numbered = [c for c in numbered if (c / CONFIG_YAML).is_file()]
        if numbered:
            return numbered[-1]
    raise UsageError(
        problems=[
            Problem(
                path="RUN_DIR",
                message="not a dlkit run folder (no run.json or config.yaml inside)",
                got=str(p),
                hint="Pass runs/<name>/<NNN> or runs/<name> for its newest run.",
            )
        ]
    )


def read_run_json(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's ``run.json`` as a dict (empty when missing)."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def update_run_json(run_dir: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run.json`` (nested dicts merged one level) and write it atomically."""
    data = read_run_json(run_dir)
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    write_json(Path(run_dir) / RUN_JSON, data)
    return data


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The current git commit (with ``-dirty`` when the tree has changes), or None outside a repo."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "") if sha else None


def versions() -> dict[str, str]:
    """dlkit, TensorFlow, Keras, NumPy and Python versions."""
    import keras
    import numpy as np
    import tensorflow as tf

    import dlkit

    return {
        "dlkit": dlkit.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def import_run_plugins(run_dir: str | os.PathLike[str]) -> list[str]:
    """Import the plugin modules the run was trained with (``plugins`` in run.json) and the ``dlkit.plugins``
    entry points, so its config validates and ``keras.models.load_model`` finds the custom layers.

    Returns:
        The module names imported.

    Raises:
        UsageError: a recorded plugin module cannot be imported (names it and how to fix it).
    """
    from dlkit.models.registry import load_plugins

    recorded = read_run_json(run_dir).get("plugins") or []
    # Entry points are recorded as "module:attr"; importing the module registers what it defines.
    modules = list(dict.fromkeys(str(name).split(":")[0] for name in recorded if name))
    try:
        return load_plugins(modules)
    except UsageError as error:
        raise UsageError(
            problems=[
                Problem(
                    file=str(Path(run_dir) / RUN_JSON),
                    path="plugins",
                    message=f"the run was trained with plugin module(s) {', '.join(modules)}: {error.message}",
                    hint="Make the module importable (install it, or add its folder to PYTHONPATH).",
                )
            ]
        ) from None


def load_run(run_dir: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Load a finished (or interrupted) run: ``(LoadedConfig, keras.Model)``.

    The run's plugin modules are imported first (custom layers). The model is ``model.keras`` when present,
    else the newest good checkpoint.
    """
    import keras

    from dlkit.training.checkpoint import CheckpointStore
    from dlkit.training.frozen import load_run_config

    run = resolve_run_dir(run_dir)
    import_run_plugins(run)
    loaded = load_run_config(run)
    final = run / "model.keras"
    if final.is_file():
        return loaded, keras.models.load_model(final, compile=False)
    last = run / "checkpoints" / "last.keras"
    if last.is_file():
        return loaded, keras.models.load_model(last, compile=False)
    store = CheckpointStore(run / "checkpoints")
    if not store.epochs():
        raise UsageError(f"{run} has no model.keras and no checkpoint yet")
    raise UsageError(f"{run} has no model.keras; resume it with: dlkit train --resume {run}")
