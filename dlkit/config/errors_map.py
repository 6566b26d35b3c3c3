"""Turning pydantic's validation errors into located, plain-words :class:`~dlkit.errors.Problem` items.

pydantic's ``loc`` mixes key paths with internal parts (union member tags such as ``constrained-int`` or
``literal['auto']``, ``[key]`` for dict keys). They are removed by walking the schema's own annotations along
the loc, which also yields the valid field names for did-you-mean on unknown keys. Errors from the members
of one union are merged into a single "expected A or B" problem.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel

from dlkit.config.suggest import did_you_mean
from dlkit.config.yaml_io import dotted
from dlkit.errors import Problem

Where = Callable[[tuple[str | int, ...]], tuple[str | None, int | None]]

# Errors that say "the value is not of this kind" (as opposed to "right kind, wrong value").
_KIND_ERRORS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}
_MISMATCH = {*_KIND_ERRORS, "literal_error"}


@dataclass
class _Located:
    path: tuple[str | int, ...]  # clean key path
    union_at: tuple[str | int, ...] | None  # clean path of the first union the loc went through
    parent: type[BaseModel] | None  # the model whose field (or extra key) is the last path element
    member: Any  # the union member the error belongs to (or the field type)
    is_key: bool = False  # the error is about a mapping key, not its value


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _members(tp: Any) -> list[Any]:
    return [_strip(a) for a in typing.get_args(tp) if a is not type(None)]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _match_member(members: list[Any], tag: str) -> Any:
    for m in members:
        if _is_model(m) and re.search(rf"\b{m.__name__}\b", tag):
            return m
    origin_for = {"literal": Literal, "list": list, "dict": dict}
    head = tag.split("[", 1)[0]
    for m in members:
        if head in origin_for and typing.get_origin(m) is origin_for[head]:
            return m
    for m in members:
        if isinstance(m, type) and m.__name__ in tag:
            return m
    return members[0] if members else Any


def locate(model: type[BaseModel], loc: tuple[str | int, ...]) -> _Located:
    """Walk ``model``'s annotations along a pydantic ``loc``; drop the parts that are not user keys."""
    tp: Any = model
    path: list[str | int] = []
    union_at: tuple[str | int, ...] | None = None
    parent: type[BaseModel] | None = None
    member: Any = model
    is_key = False
    for part in loc:
        tp = _strip(tp)
        while _is_union(tp):
            members = _members(tp)
            if len(members) == 1:
                tp = members[0]
                continue
            if isinstance(part, str) and not (_is_model(members[0]) and part in members[0].model_fields):
                # `part` is pydantic's tag for the union member the error belongs to.
                if union_at is None:
                    union_at = tuple(path)
                tp = member = _match_member(members, part)
                part = None  # type: ignore[assignment]
            break
        if part is None:
            continue
        if part == "[key]":
            is_key = True
            continue
        if _is_model(tp):
            parent = tp
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            tp = field.annotation if field is not None else Any
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
            parent = None
        else:
            tp = Any
        path.append(part)
        member = _strip(tp)
    return _Located(tuple(path), union_at, parent, member, is_key)


def show(value: Any) -> str:
    """Render a received value the way it looks in YAML: 'ten', 3, true, null, [1, 2]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v) for v in value) + "]"
        return text if len(text) <= 60 else f"a list of {len(value)} items"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
        return text if len(text) <= 60 else "a mapping"
    return type(value).__name__


def _literals(ctx: dict[str, Any] | None) -> list[str]:
    return re.findall(r"'([^']*)'", (ctx or {}).get("expected", ""))


def _kind_phrase(err: dict[str, Any], member: Any) -> str:
    if err["type"] == "literal_error":
        vals = _literals(err.get("ctx"))
        return " or ".join(f"'{v}'" for v in vals) if vals else "one of the allowed values"
    if err["type"] in ("model_type", "dict_type") and _is_model(member) and member.__name__ != "dict":
        from dlkit.config.schema import Component

        if issubclass(member, Component):
            return "a component (a name, or a mapping with `type:`)"
    return _KIND_ERRORS.get(err["type"], err["msg"])


def _plain(err: dict[str, Any], located: _Located) -> tuple[str, str | None, str | None, bool | str]:
    """(message, suggestion, extra key, show got) for one error that is not merged with others.

    "show got" is "always" for wrong kinds and bounds (the value itself is the problem), True to show it only
    when it is short and scalar-like (not the whole mapping a model-level check looked at), False never.
    """
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "dlkit":
        return ctx["message"], ctx.get("suggestion"), ctx.get("key"), "(got" not in ctx["message"]
    if kind == "extra_forbidden":
        key = located.path[-1] if located.path else ""
        fields = list(located.parent.model_fields) if located.parent else []
        near = did_you_mean(key, fields)
        if near or not fields:
            return f"unknown key '{key}'", near, None, False
        return f"unknown key '{key}'; valid keys: {', '.join(fields)}", None, None, False
    if kind == "missing":
        return "required key is missing", None, None, False
    if kind == "literal_error":
        vals = _literals(ctx)
        return f"expected one of {', '.join(vals)}", did_you_mean(value, vals), None, "always"
    if kind in _KIND_ERRORS:
        what = _kind_phrase(err, located.member)
        return f"expected {what} as key" if located.is_key else f"expected {what}", None, None, "always"
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "greater_than": ("must be greater than", "gt"),
        "less_than_equal": ("must be at most", "le"),
        "less_than": ("must be less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"{words} {bound}", None, None, "always"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        what = "one item" if n == 1 else f"{n} items"
        return f"needs at least {what}", None, None, "always"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} items", None, None, "always"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg[:1].lower() + msg[1:], None, None, "(got" not in msg


def _scalarish(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list)


def convert(model: type[BaseModel], errors: Sequence[Any], where: Where) -> list[Problem]:
    """Convert pydantic ``errors`` (from ``ValidationError.errors()``) into located problems."""
    located = [(err, locate(model, tuple(err["loc"]))) for err in errors]
    groups: dict[tuple[str | int, ...], list[tuple[dict[str, Any], _Located]]] = {}
    singles: list[tuple[dict[str, Any], _Located]] = []
    for err, loc in located:
        if loc.union_at is None:
            singles.append((err, loc))
        else:
            groups.setdefault(loc.union_at, []).append((err, loc))

    problems: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str, got: Any, show_got: bool | str, suggestion: str | None) -> None:
        file, line = where(path)
        problems.append(
            Problem(
                file,
                line,
                dotted(path),
                message,
                got=show(got) if show_got == "always" or (show_got and _scalarish(got)) else None,
                suggestion=suggestion,
            )
        )

    for union_path, members in groups.items():
        # If the value had the right kind for some member and failed deeper or on a bound, that member's errors
        # are the useful ones; otherwise say every kind that would have been accepted.
        specific = [(e, lo) for e, lo in members if lo.path != union_path or e["type"] not in _MISMATCH]
        if specific and len(specific) < len(members) or len(members) == 1:
            singles.extend(specific or members)
            continue
        phrases = list(dict.fromkeys(_kind_phrase(e, lo.member) for e, lo in members))
        if "true or false" in phrases:  # read "true, false or 'auto'", not "true or false or 'auto'"
            at = phrases.index("true or false")
            phrases[at : at + 1] = ["true", "false"]
        literal_values = [v for e, _ in members if e["type"] == "literal_error" for v in _literals(e.get("ctx"))]
        value = members[0][0].get("input")
        text = ", ".join(phrases[:-1]) + " or " + phrases[-1] if len(phrases) > 1 else phrases[0]
        add(union_path, f"expected {text}", value, "always", did_you_mean(value, literal_values))

    for err, loc in singles:
        message, suggestion, key, show_got = _plain(err, loc)
        path = (*loc.path, key) if key else loc.path
        add(path, message, err.get("input"), show_got, suggestion)

    unique: dict[tuple[Any, ...], Problem] = {}
    for p in problems:
        unique.setdefault((p.file, p.line, p.path, p.render()), p)
    return sorted(unique.values(), key=Problem.sort_key)
