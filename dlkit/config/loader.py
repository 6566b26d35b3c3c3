"""From config files and ``--set`` overrides to a validated :class:`~dlkit.config.schema.Config`.

Files merge left to right (mappings deep-merge, lists are replaced), then ``--set KEY=VALUE`` overrides
apply. Every key keeps the ``(file, line)`` it came from, so each problem (schema or Keras) is reported as
``FILE:LINE  dotted.key: message`` and all of them at once, sorted by file and line.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dlkit.config.errors_map import Where, convert, locate
from dlkit.config.schema import Component, Config
from dlkit.config.yaml_io import Origins, dotted, load_yaml, parse_value
from dlkit.errors import ConfigError, DlkitError, Problem

log = logging.getLogger("dlkit.config")

Path_ = tuple[str | int, ...]
ComponentChecker = Callable[[dict[str, Any], Where], list[Problem]]

DATA_PATH_KEYS = ("path", "train", "validation", "test")
"""``data`` keys holding file or folder paths; relative ones resolve against the file that set them."""


@dataclass
class LoadedConfig:
    """A validated config plus where every value came from.

    Attributes:
        config: The validated config.
        raw: The merged dict after overrides (data paths absolute), as the user wrote it.
        origins: Key path -> (file or ``--set KEY``, line).
        files: The config files, in merge order.
        overrides: The ``--set`` arguments, verbatim.
    """

    config: Config
    raw: dict[str, Any]
    origins: Origins = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)

    def where(self, path: Path_) -> tuple[str | None, int | None]:
        """The (file, line) of ``path``, or of its nearest ancestor that has one."""
        return _where(self.origins)(path)

    def problem(self, path: Path_, message: str, **kw: Any) -> Problem:
        """A :class:`Problem` at ``path`` (``kw``: ``got``, ``suggestion``, ``hint``)."""
        file, line = self.where(path)
        return Problem(file, line, dotted(path), message, **kw)


def _where(origins: Origins) -> Where:
    def where(path: Path_) -> tuple[str | None, int | None]:
        path = tuple(path)
        while True:
            if path in origins:
                return origins[path]
            if not path:
                return None, None
            path = path[:-1]

    return where


# ---------------------------------------------------------------------------------------------- merging


def _drop_under(origins: Origins, path: Path_) -> None:
    for key in [k for k in origins if k[: len(path)] == path]:
        del origins[key]


def _merge(dst: dict[Any, Any], src: dict[Any, Any], path: Path_, origins: Origins, src_origins: Origins) -> None:
    """Deep-merge ``src`` into ``dst`` (later wins; lists replaced), moving origins along."""
    for key, value in src.items():
        sub = (*path, key)
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            if sub in src_origins:
                origins[sub] = src_origins[sub]
            _merge(dst[key], value, sub, origins, src_origins)
            continue
        _drop_under(origins, sub)
        dst[key] = copy.deepcopy(value)
        origins.update({k: v for k, v in src_origins.items() if k[: len(sub)] == sub})


def _resolve_data_paths(data: dict[Any, Any], base: Path) -> None:
    """Make relative ``data.path/train/validation/test`` absolute against ``base`` (in place)."""
    section = data.get("data")
    if not isinstance(section, dict):
        return
    for key in DATA_PATH_KEYS:
        value = section.get(key)
        if isinstance(value, str) and value and "://" not in value:
            expanded = os.path.expanduser(value)
            section[key] = expanded if os.path.isabs(expanded) else os.path.normpath(base / expanded)


# --------------------------------------------------------------------------------------------- overrides

_SEGMENT_RE = re.compile(r"^([^\[\]]*)((?:\[-?\d+\])*)$")


def _parse_key(key: str) -> list[str | int] | None:
    """``model.layers[0].units`` / ``model.layers.0.units`` -> ['model', 'layers', 0, 'units']."""
    parts: list[str | int] = []
    for segment in key.split("."):
        m = _SEGMENT_RE.match(segment)
        if not m or (not m.group(1) and not m.group(2)):
            return None
        name, indices = m.group(1), m.group(2)
        if name:
            parts.append(int(name) if re.fullmatch(r"-?\d+", name) else name)
        parts.extend(int(i) for i in re.findall(r"-?\d+", indices))
    return parts


def _schema_type(path: Path_) -> Any:
    return locate(Config, path).member if path else Config


def apply_override(raw: dict[str, Any], origins: Origins, override: str, cwd: Path | None = None) -> None:
    """Apply one ``KEY=VALUE`` (VALUE parsed as YAML) to ``raw`` in place, recording its origin.

    Numeric parts index lists (``layers.0`` or ``layers[0]``); a component given as a bare string
    (``optimizer: adam``) turns into a mapping when a key below it is set. Raises :class:`ConfigError`.
    """
    key_text, sep, value_text = override.partition("=")
    key_text = key_text.strip()
    parts = _parse_key(key_text) if sep and key_text else None
    if parts is None:
        raise ConfigError(
            problems=[
                Problem(
                    f"--set {override}",
                    None,
                    "",
                    "expected KEY=VALUE with a dotted key",
                    hint="For example: --set training.epochs=5 or --set model.layers[0].units=64",
                )
            ]
        )
    label = f"--set {dotted(tuple(parts))}"
    value = parse_value(value_text, label)
    node: Any = raw
    done: list[str | int] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where_ = tuple(done)
        if isinstance(node, list):
            if not isinstance(part, int):
                raise ConfigError(
                    problems=[Problem(label, None, dotted(where_), f"is a list; use an index like [0], not '{part}'")]
                )
            if not -len(node) <= part < len(node):
                raise ConfigError(
                    problems=[
                        Problem(
                            label,
                            None,
                            dotted(where_),
                            f"has {len(node)} item{'s' if len(node) != 1 else ''}; index {part} is out of range",
                            hint=f"To add items, set the whole list: --set '{dotted(where_)}=[...]'",
                        )
                    ]
                )
            part = part % len(node)
        elif isinstance(node, dict):
            if isinstance(part, int) and part not in node:
                part = str(part)
        else:
            raise ConfigError(
                problems=[Problem(label, None, dotted(where_), f"is {_kind(node)}, so it has no key '{part}'")]
            )
        done.append(part)
        container: Any = node  # a list indexed by int or a dict, checked above
        if last:
            container[part] = value
            break
        child = container[part] if isinstance(node, list) or part in container else None
        if child is None:
            child = container[part] = {}
            origins[tuple(done)] = (label, None)
        elif isinstance(child, str) and _is_component(tuple(done)):
            child = container[part] = {"type": child}
            origins[(*done, "type")] = origins.get(tuple(done), (label, None))
        node = child
    path = tuple(done)
    label = f"--set {dotted(path)}"  # negative indices resolved
    _drop_under(origins, path)
    origins[path] = (label, None)
    for sub in _sub_paths(value, path):
        origins[sub] = (label, None)
    if path[:1] == ("data",) and (len(path) == 1 or path[1] in DATA_PATH_KEYS):
        _resolve_data_paths(raw, cwd or Path.cwd())


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"a string ('{value}')"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _is_component(path: Path_) -> bool:
    tp = _schema_type(path)
    return isinstance(tp, type) and issubclass(tp, Component)


def _sub_paths(value: Any, path: Path_) -> Iterable[Path_]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            yield from _sub_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*path, i)
            yield from _sub_paths(v, (*path, i))


# --------------------------------------------------------------------------------------------- validating


def _validate(
    raw: dict[str, Any], origins: Origins, component_checker: ComponentChecker | None
) -> tuple[Config | None, list[Problem]]:
    where = _where(origins)
    config: Config | None = None
    problems: list[Problem] = []
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        problems = convert(Config, error.errors(include_url=False), where)
    if component_checker is not None:
        try:
            extra = component_checker(raw, where)
        except DlkitError as error:
            extra = list(error.problems) or [Problem(None, None, "", error.message)]
        except Exception:
            if not problems:
                raise
            # The schema problems explain the malformed input the checker tripped on.
            log.debug("component checker failed on an invalid config", exc_info=True)
            extra = []
        taken = [p.path for p in problems if p.path]
        problems += [p for p in extra if not any(_overlaps(p.path, t) for t in taken)]
    return config, sorted(problems, key=Problem.sort_key)


def _overlaps(a: str, b: str) -> bool:
    """Whether two dotted paths name the same value or one contains the other (one problem is enough)."""
    short, long = sorted((a, b), key=len)
    return bool(short) and (long == short or long.startswith((short + ".", short + "[")))


def _finish(
    raw: dict[str, Any],
    origins: Origins,
    files: list[str],
    overrides: list[str],
    component_checker: ComponentChecker | None,
) -> LoadedConfig:
    config, problems = _validate(raw, origins, component_checker)
    if problems or config is None:
        raise ConfigError(problems=problems)
    return LoadedConfig(config=config, raw=raw, origins=origins, files=files, overrides=overrides)


def load_config(
    paths: Sequence[str | os.PathLike[str]],
    overrides: Sequence[str] = (),
    component_checker: ComponentChecker | None = None,
) -> LoadedConfig:
    """Load, merge, override and validate config files.

    Args:
        paths: One or more YAML files; later ones win (mappings deep-merge, lists are replaced).
        overrides: ``KEY=VALUE`` strings applied after the files (VALUE parsed as YAML). Defaults to none.
        component_checker: ``checker(raw, where) -> list[Problem]`` checking Keras names and arguments
            (``dlkit.models.validate_components``); its problems are reported with the schema's. Defaults
            to None (schema only).

    Raises:
        ConfigError: every problem found, sorted by file and line.
    """
    if not paths:
        raise ConfigError("no config file given")
    raw: dict[str, Any] = {}
    origins: Origins = {}
    problems: list[Problem] = []
    files = [str(p) for p in paths]
    for file in files:
        try:
            data, file_origins = load_yaml(file)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        _resolve_data_paths(data, Path(file).resolve().parent)
        origins.setdefault((), file_origins[()])
        _merge(raw, data, (), origins, file_origins)
    if problems:
        raise ConfigError(problems=problems)
    for override in overrides:
        try:
            apply_override(raw, origins, override)
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems=problems)
    return _finish(raw, origins, files, list(overrides), component_checker)


def config_from_dict(
    raw: dict[str, Any],
    base_dir: str | os.PathLike[str] | None = None,
    component_checker: ComponentChecker | None = None,
    overrides: Sequence[str] = (),
) -> LoadedConfig:
    """Validate an in-memory config (tests, a run folder's resolved config on resume).

    Args:
        raw: The config mapping; it is copied, not modified.
        base_dir: Folder that relative data paths resolve against. Defaults to leaving them as they are.
        component_checker: As for :func:`load_config`. Defaults to None.
        overrides: ``KEY=VALUE`` strings applied first. Defaults to none.

    Raises:
        ConfigError: every problem found.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping (got {type(raw).__name__})")
    raw = copy.deepcopy(raw)
    if base_dir is not None:
        _resolve_data_paths(raw, Path(base_dir).resolve())
    origins: Origins = {}
    for override in overrides:
        apply_override(raw, origins, override)
    return _finish(raw, origins, [], list(overrides), component_checker)


def model_fields_at(path: Path_) -> list[str]:
    """Field names valid at ``path`` of the schema (for suggestions); empty when none are known."""
    tp = _schema_type(path)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []
