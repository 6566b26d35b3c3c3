"""Reading config YAML safely, the way a person means it, with the line of every key.

PyYAML alone reads YAML 1.1: ``1e-3`` is a string, ``no`` is False, a repeated key silently keeps the last
value and ``yaml.unsafe_load`` runs ``!!python/object/apply`` payloads (FIELD_NOTES, "Numerics and data").
Here the document is only *composed* into nodes (tags are never constructed), scalars are resolved with
YAML 1.2 core-schema rules, and the Python values are built by walking the nodes, which also records the
``(file, line)`` of every key and list item and reports every duplicate key and foreign tag at once.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import yaml

from dlkit.errors import ConfigError, Problem

Origins = dict[tuple[str | int, ...], tuple[str, int | None]]
"""Key path -> (file or ``--set KEY``, 1-based line or None)."""

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, "!"}

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# YAML 1.1 words that other tools still read as booleans: quoted when we write, strings when we read.
_BOOL11_RE = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")

_MAX_NODES = 200_000
_MAX_DEPTH = 64


def _core_resolvers(cls: type, quote_yaml11: bool) -> None:
    cls.yaml_implicit_resolvers = {}  # type: ignore[attr-defined]
    cls.add_implicit_resolver(_BOOL, _BOOL_RE, list("tTfF"))  # type: ignore[attr-defined]
    if quote_yaml11:
        cls.add_implicit_resolver(_BOOL, _BOOL11_RE, list("yYnNoO"))  # type: ignore[attr-defined]
    cls.add_implicit_resolver(_NULL, _NULL_RE, ["~", "n", "N", ""])  # type: ignore[attr-defined]
    cls.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))  # type: ignore[attr-defined]
    cls.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))  # type: ignore[attr-defined]
    cls.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])  # type: ignore[attr-defined]


class _Composer(yaml.SafeLoader):
    """Parses and composes nodes only; its constructors are never called."""


class CoreDumper(yaml.SafeDumper):
    """A SafeDumper whose quoting follows the reader above (and still quotes YAML 1.1 booleans)."""


_core_resolvers(_Composer, quote_yaml11=False)
_core_resolvers(CoreDumper, quote_yaml11=True)


def dotted(path: tuple[str | int, ...]) -> str:
    """Render a key path the way users write it: ``("model", "layers", 1, "units")`` -> ``model.layers[1].units``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


class _Builder:
    """Turns composed nodes into plain Python values, recording origins and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.origins: Origins = {}
        self.problems: list[Problem] = []
        self.count = 0

    def problem(self, node: yaml.Node, path: tuple[str | int, ...], message: str, **kw: Any) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, dotted(path), message, **kw))

    def build(self, node: yaml.Node, path: tuple[str | int, ...], stack: tuple[int, ...] = ()) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            if self.count == _MAX_NODES + 1:
                self.problem(node, path, "the document expands to too many values (nested YAML aliases?)")
            return None
        if id(node) in stack or len(stack) > _MAX_DEPTH:
            self.problem(node, path, "a YAML alias refers to itself, or the nesting is too deep")
            return None
        stack = (*stack, id(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                return self.bad_tag(node, path)
            out = []
            for i, child in enumerate(node.value):
                self.origins[(*path, i)] = (self.file, child.start_mark.line + 1)
                out.append(self.build(child, (*path, i), stack))
            return out
        assert isinstance(node, yaml.MappingNode)
        if node.tag != _MAP:
            return self.bad_tag(node, path)
        return self.mapping(node, path, stack)

    def bad_tag(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        self.problem(
            node,
            path,
            f"YAML tag '{_show_tag(node.tag)}' is not allowed",
            hint="A config is plain data: mappings, lists, strings, numbers, true/false and null.",
        )

    def scalar(self, node: yaml.ScalarNode, path: tuple[str | int, ...]) -> Any:
        tag, text = node.tag, node.value
        if tag not in _SCALAR_TAGS:
            return self.bad_tag(node, path)
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return text.lower() == "true"
            if tag == _INT:
                clean = text.replace("_", "")
                if clean.startswith(("0o", "0x")):
                    return int(clean, 8 if clean[1] == "o" else 16)
                return int(clean)
            if tag == _FLOAT:
                low = text.lower().lstrip("+")
                if low in (".inf", "-.inf"):
                    return -math.inf if low.startswith("-") else math.inf
                if low == ".nan":
                    return math.nan
                return float(text)
        except ValueError:
            self.problem(node, path, f"'{text}' is not a valid {_show_tag(tag)}")
            return None
        return text

    def key(self, node: yaml.Node, path: tuple[str | int, ...]) -> str | int | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, path, "mapping keys must be plain names, not lists or mappings")
            return None
        value = self.scalar(node, path)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return node.value if not isinstance(value, str) else value

    def mapping(self, node: yaml.MappingNode, path: tuple[str | int, ...], stack: tuple[int, ...]) -> dict:
        out: dict[Any, Any] = {}
        merges = [v for k, v in node.value if k.tag == _MERGE]
        sources: list[yaml.Node] = []
        for merge in merges:
            sources.extend(merge.value if isinstance(merge, yaml.SequenceNode) else [merge])
        for source in reversed(sources):  # earlier merge sources win over later ones
            if not isinstance(source, yaml.MappingNode):
                self.problem(source, path, "a '<<' merge needs a mapping (or a list of mappings)")
                continue
            merged = self.mapping(source, path, stack)
            out.update(merged)
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                self.problem(key_node, (*path, key), f"duplicate key '{key}' (first set on line {seen[key]})")
                continue
            seen[key] = line
            self.origins[(*path, key)] = (self.file, line)
            out[key] = self.build(value_node, (*path, key), stack)
        return out


def _syntax_problem(file: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    hint = None
    if "\\t" in problem or "'\\t'" in problem or "\t" in problem:
        hint = "Indent with spaces, not tabs."
    elif "mapping values are not allowed" in problem:
        hint = "Check the indentation, or quote a value that contains ': '."
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return Problem(file, line, "", message, hint=hint)


def _compose(text: str, file: str) -> yaml.Node | None:
    loader = _Composer(text)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as error:
        raise ConfigError(problems=[_syntax_problem(file, error)]) from None
    finally:
        loader.dispose()


def load_yaml_text(text: str, file: str) -> tuple[Any, Origins]:
    """Parse YAML ``text`` (any top-level type) named ``file`` in messages.

    Returns ``(value, origins)``; ``value`` is None for an empty document. Raises :class:`ConfigError`
    listing every syntax error, duplicate key and foreign tag.
    """
    node = _compose(text, file)
    if node is None:
        return None, {}
    builder = _Builder(file)
    value = builder.build(node, ())
    if builder.problems:
        # An anchor used several times would repeat its problems once per use: report each line once.
        unique = {(p.line, p.message): p for p in reversed(builder.problems)}
        raise ConfigError(problems=list(unique.values()))
    return value, builder.origins


def load_yaml(path: str | Path) -> tuple[dict[str | int, Any], Origins]:
    """Read one config file: a non-empty YAML mapping.

    Args:
        path: The file, named in messages exactly as given.

    Returns:
        ``(data, origins)``; ``origins[()]`` is ``(file, None)``.

    Raises:
        ConfigError: unreadable file, YAML syntax error (with its line), duplicate keys, python or other
            foreign tags, an empty file or a top level that is not a mapping.
    """
    file = str(path)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(problems=[Problem(file, None, "", "no such config file")]) from None
    except IsADirectoryError:
        raise ConfigError(problems=[Problem(file, None, "", "is a folder, not a YAML config file")]) from None
    except UnicodeDecodeError as error:
        raise ConfigError(problems=[Problem(file, None, "", f"not UTF-8 text ({error.reason})")]) from None
    except OSError as error:
        raise ConfigError(problems=[Problem(file, None, "", f"cannot read: {error.strerror}")]) from None
    data, origins = load_yaml_text(text, file)
    if data is None:
        raise ConfigError(
            problems=[
                Problem(
                    file,
                    None,
                    "",
                    "the file is empty",
                    hint="A config is a mapping of sections such as model:, loss: and training:.",
                )
            ]
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the value {data!r}"
        raise ConfigError(
            problems=[
                Problem(
                    file,
                    1,
                    "",
                    f"the top level must be a mapping of sections such as model: and training: (got {kind})",
                )
            ]
        )
    origins[()] = (file, None)
    return data, origins


def parse_value(text: str, label: str = "--set") -> Any:
    """Parse a ``--set`` VALUE as YAML (``8`` -> 8, ``1e-3`` -> 0.001, ``[1, 2]`` -> list, ``relu`` -> 'relu').

    An empty VALUE is null. Raises :class:`ConfigError` naming ``label`` for invalid YAML or tags.
    """
    try:
        value, _ = load_yaml_text(text, label)
    except ConfigError as error:  # a one-line value has no useful line number
        raise ConfigError(problems=[dataclasses.replace(p, line=None) for p in error.problems]) from None
    return value
