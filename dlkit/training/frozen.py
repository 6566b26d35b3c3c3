"""What a resume may not change: the run's model and optimizer sections, compared in canonical form.

``config.yaml`` and run.json's ``frozen`` sections are written the way ``dlkit config render`` prints a config
(defaults filled in, component names canonical), so ``adam`` vs ``Adam`` or a default spelled out is never
mistaken for an edit; only a real change refuses the resume, naming the key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dlkit.errors import Problem, UsageError
from dlkit.training import run_dir as rd

FROZEN_SECTIONS = ("model", "optimizer")


def load_run_config(run: Path, overrides: tuple[str, ...] | list[str] = ()) -> Any:
    """The run's resolved ``config.yaml`` (+ ``overrides``) as a LoadedConfig."""
    from dlkit.config import load_config
    from dlkit.models import validate_components

    path = run / rd.CONFIG_YAML
    if not path.is_file():
        raise UsageError(f"{run} has no {rd.CONFIG_YAML}; it is not a dlkit run folder")
    return load_config([str(path)], list(overrides), component_checker=validate_components)


def canonical_config(config: Any) -> dict[str, Any]:
    """``config`` (a validated Config) as ``dlkit config render`` prints it: every default filled in, component
    types canonical (``adam`` -> ``Adam``, ``conv2d`` -> ``Conv2D``, ``he_normal`` -> ``HeNormal``)."""
    from dlkit.config import resolved
    from dlkit.models import canonicalize

    out: dict[str, Any] = canonicalize(resolved(config))
    return out


def resolved_config(loaded: Any) -> dict[str, Any]:
    """The run's config in canonical form (what ``config.yaml`` holds and what resume compares)."""
    return canonical_config(loaded.config)


def _frozen_canonical(loaded: Any, frozen: dict[str, Any]) -> dict[str, Any]:
    """The frozen sections recorded in run.json, put through the schema and canonicalized like the live config.

    Older runs recorded the sections as written (``adam``, no defaults); validating them again puts both sides of
    the comparison in the same form, so only real edits count as changes.
    """
    from pydantic import ValidationError

    from dlkit.config.schema import Config

    raw = copy.deepcopy(loaded.raw)
    for section in FROZEN_SECTIONS:
        if section in frozen:
            raw[section] = copy.deepcopy(frozen[section])
    try:
        return canonical_config(Config.model_validate(raw))
    except ValidationError:
        from dlkit.models import canonicalize

        out: dict[str, Any] = canonicalize({k: v for k, v in frozen.items() if k in FROZEN_SECTIONS})
        return out


def frozen_changes(loaded: Any, frozen: dict[str, Any]) -> list[Problem]:
    """One located problem per leaf of the model/optimizer sections that differs from ``frozen`` (run.json)."""
    old = _frozen_canonical(loaded, frozen)
    now = resolved_config(loaded)
    problems: list[Problem] = []
    for section in FROZEN_SECTIONS:
        if section not in frozen:
            continue
        for path, before, after in config_changes(old.get(section), now.get(section), (section,)):
            problems.append(
                loaded.problem(
                    path,
                    f"changed: {_short(before)} -> {_short(after)}",
                    hint="A run resumes only with the model and optimizer it started with; start a new run instead.",
                )
            )
    return problems


def config_changes(old: Any, new: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], Any, Any]]:
    """Every leaf that differs between ``old`` and ``new``: ``[(path, old, new), ...]``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            out += config_changes(old.get(key), new.get(key), (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += config_changes(a, b, (*path, i))
        return out
    return [] if old == new else [(path, old, new)]


def _short(value: Any) -> str:
    text = "(unset)" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
