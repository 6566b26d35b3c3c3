"""Check every component name and keyword argument of a raw config against the live Keras signatures.

Runs on the raw (merged) config dict *before* anything is built, so ``dlkit config check`` reports
schema and Keras problems together. It tolerates malformed structure: a section of the wrong shape is
skipped here because the schema reports it.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from dlkit.errors import Problem
from dlkit.models import registry
from dlkit.models.registry import Entry

Path = tuple[str | int, ...]
Where = Callable[[Path], tuple[str | None, int | None]]

# Keys of a `model.layers` entry that belong to dlkit (graph wiring, blocks), not to the Keras layer.
LAYER_SPEC_KEYS = frozenset({"inputs", "block", "repeat"})
# File-path arguments that default into the run folder, so they may be left out of the config.
CALLBACK_PATH_ARGS = {
    "ModelCheckpoint": "filepath",
    "TensorBoard": "log_dir",
    "CSVLogger": "filename",
    "BackupAndRestore": "backup_dir",
}
# Layer arguments that hold another layer (wrappers): Bidirectional/TimeDistributed `layer`, RNN `cell`.
NESTED_LAYER_ARGS = frozenset({"layer", "backward_layer", "cell"})


def dotted(path: Path) -> str:
    """``("model", "layers", 1, "type")`` -> ``model.layers[1].type``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def sub_kind(kind: str, arg: str) -> str | None:
    """The registry kind of a component-valued argument (``kernel_initializer`` -> initializers), or None."""
    if kind == "optimizers":
        return "schedules" if arg == "learning_rate" else None
    if kind != "layers":
        return None
    if arg in NESTED_LAYER_ARGS:
        return "layers"
    if arg == "activation" or arg.endswith("_activation"):
        return "activations"
    for suffix, sub in (
        ("initializer", "initializers"),
        ("regularizer", "regularizers"),
        ("constraint", "constraints"),
    ):
        if arg.endswith(suffix):
            return sub
    return None


def component_name(value: Any) -> str | None:
    """The ``type`` of a component given as a bare string or a mapping; None when it has none."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value["type"]
    return None


def check_component(
    kind: str,
    value: Any,
    path: Path,
    where: Where | None = None,
    *,
    skip_keys: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Check one component (bare name or ``{type: NAME, **kwargs}``) and its nested components.

    Args:
        kind: Registry kind of the component.
        value: The raw value from the config.
        path: Its key path, e.g. ``("model", "layers", 1)``.
        where: Maps a key path to ``(file, line)``. Defaults to unlocated problems.
        skip_keys: Keys of the mapping that are not constructor arguments. Defaults to none.

    Returns:
        Every problem found (empty when the component is fine).
    """
    problems: list[Problem] = []

    def add(at: Path, message: str, suggestion: str | None = None) -> None:
        file, line = where(at) if where else (None, None)
        problems.append(Problem(file=file, line=line, path=dotted(at), message=message, suggestion=suggestion))

    name = component_name(value)
    if name is None:
        return problems  # wrong shape or no type: the schema reports it
    type_path = path if isinstance(value, str) else (*path, "type")
    if not name.strip():
        return problems
    entry = registry.lookup(kind, name)
    if entry is None:
        message, suggestion = registry.unknown_message(kind, name)
        add(type_path, message, suggestion)
        return problems
    kwargs = {k: v for k, v in value.items() if k != "type" and k not in skip_keys} if isinstance(value, dict) else {}
    target = entry
    if not entry.is_class and kwargs:
        sibling = registry.sibling_class(entry)
        if sibling is None:
            first = next(iter(kwargs))
            add((*path, str(first)), f"'{entry.name}' takes no arguments (got '{first}')")
            return problems
        target = sibling
    if target.is_class:
        _check_kwargs(target, kwargs, path, add)
    for arg, sub in kwargs.items():
        if not isinstance(arg, str):
            continue
        kind_of_arg = sub_kind(target.kind, arg)
        if kind_of_arg and (isinstance(sub, str) or (isinstance(sub, dict) and "type" in sub)):
            problems.extend(check_component(kind_of_arg, sub, (*path, arg), where))
    return problems


def _check_kwargs(entry: Entry, kwargs: dict[Any, Any], path: Path, add: Callable[..., None]) -> None:
    sig = registry.signature(entry.obj)
    for arg in kwargs:
        if str(arg) not in sig.accepted:
            add(
                (*path, str(arg)),
                f"{entry.name} has no argument '{arg}'",
                registry.suggest(str(arg), sig.accepted),
            )
    defaultable = {CALLBACK_PATH_ARGS.get(entry.name)} if entry.kind == "callbacks" else set()
    for arg in sig.required:
        if arg not in kwargs and arg not in defaultable:
            add(path, f"{entry.name} is missing required argument '{arg}'")


def iter_components(raw: dict[str, Any]) -> Iterator[tuple[str, Path, Any, frozenset[str]]]:
    """Every top-level component site of a raw config: ``(kind, path, value, skip_keys)``."""
    data = raw.get("data")
    if isinstance(data, dict):
        for section in ("preprocessing", "augmentation"):
            items = data.get(section)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    yield "layers", ("data", section, i), item, frozenset()
    model = raw.get("model")
    if isinstance(model, dict):
        layers = model.get("layers")
        if isinstance(layers, list):
            for i, item in enumerate(layers):
                yield "layers", ("model", "layers", i), item, LAYER_SPEC_KEYS
        blocks = model.get("blocks")
        if isinstance(blocks, dict):
            for block_name, items in blocks.items():
                if isinstance(items, list):
                    for i, item in enumerate(items):
                        yield "layers", ("model", "blocks", block_name, i), item, LAYER_SPEC_KEYS
    if "optimizer" in raw:
        yield "optimizers", ("optimizer",), raw["optimizer"], frozenset()
    if "loss" in raw:
        yield "losses", ("loss",), raw["loss"], frozenset()
    for section, kind in (("metrics", "metrics"), ("callbacks", "callbacks")):
        items = raw.get(section)
        if isinstance(items, list):
            for i, item in enumerate(items):
                yield kind, (section, i), item, frozenset()


def validate_components(raw: dict[str, Any], where: Where | None = None) -> list[Problem]:
    """Check every component name and argument in a raw config against the live Keras registries.

    Unknown names and arguments get did-you-mean suggestions; import paths are refused; block uses must
    name a block of ``model.blocks``. Layers, losses and metrics that pass are then constructed (not
    called, so no weights) to catch values Keras refuses (``units: -1``); no model is built.

    Args:
        raw: The merged config dict (before or after schema validation).
        where: Maps a key path tuple to ``(file, line)``. Defaults to unlocated problems.

    Returns:
        The problems found, in config order (the caller sorts them with the schema's).
    """
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return problems
    for kind, path, value, skip in iter_components(raw):
        found = check_component(kind, value, path, where, skip_keys=skip)
        if not found and kind in TRIAL_KINDS:
            found = _trial_instantiate(kind, value, path, where)
        problems.extend(found)
    problems.extend(_check_block_uses(raw, where))
    problems.extend(_check_monitors(raw, where))
    from dlkit.data.sources import validate_data  # no TensorFlow; data-source name and required keys

    problems.extend(validate_data(raw, where))
    return problems


# Epoch log entries dlkit's own callbacks add (learning rate, timing, gradient telemetry).
DLKIT_LOGS = ("lr", "time", "samples_per_s", "grad_norm", "grad_norm_max", "clipped_frac")


def _snake(name: str) -> str:
    """A metric class's default name, the way Keras derives it (``SparseTopKCategoricalAccuracy`` ->
    ``sparse_top_k_categorical_accuracy``)."""
    import re

    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _default_metric_name(item: dict[str, Any]) -> str | None:
    """The ``name`` a metric class logs under when the config sets none (``FBetaScore`` -> ``fbeta_score``,
    which :func:`_snake` cannot derive); None for unknown types and for names ``compile`` resolves itself."""
    name = component_name(item)
    entry = registry.lookup("metrics", name) if name is not None and "name" not in item else None
    if entry is None or (entry.name.islower() and set(item) == {"type"}):
        return None  # `{type: mae}` stays the string `mae` and is logged under it
    target = registry.sibling_class(entry)
    if target is None:
        return None
    try:
        param = inspect.signature(target.obj).parameters.get("name")
    except (TypeError, ValueError):  # pragma: no cover - a signature inspect cannot read
        return None
    return param.default if param is not None and isinstance(param.default, str) else None


def _metric_names(item: Any) -> list[str]:
    """The names one ``metrics`` entry may be logged under (the config's spelling, Keras' snake_case, the class's
    default ``name``): a superset, so a monitor that matches none of them is certainly not this metric."""
    if isinstance(item, str):
        return [item, _snake(item)] + [n for n in (_default_metric_name({"type": item}),) if n]
    if not isinstance(item, dict):
        return []
    names = [v for v in (item.get("name"), item.get("type")) if isinstance(v, str)]
    names += [_snake(item["type"])] if isinstance(item.get("type"), str) else []
    return names + [n for n in (_default_metric_name(item),) if n]


def logged_names(raw: dict[str, Any]) -> list[str]:
    """Names the epoch logs will hold: loss, each metric (as Keras names it), their val_ forms, dlkit's own."""
    metrics = raw.get("metrics")
    names = ["loss"] + [n for item in (metrics if isinstance(metrics, list) else []) for n in _metric_names(item)]
    names = list(dict.fromkeys(names))
    return names + [f"val_{n}" for n in names] + list(DLKIT_LOGS)


def _check_monitors(raw: dict[str, Any], where: Where | None) -> list[Problem]:
    """Check each callback ``monitor`` against the names the epoch logs will hold.

    A near miss of a logged name (``val_los``) is a typo, not a custom log: Keras finds out only at the end of
    the first epoch (or never: EarlyStopping just warns), so say it now. A name with no near match is left
    alone (a plugin metric may log under a name the config cannot show), unless Keras is bound to refuse it:
    see :func:`_unrankable`.
    """
    from dlkit.config.suggest import did_you_mean

    callbacks = raw.get("callbacks")
    if not isinstance(callbacks, list):
        return []
    names = logged_names(raw)
    shown = [n for n in names if n not in DLKIT_LOGS]
    problems: list[Problem] = []
    for i, item in enumerate(callbacks):
        monitor = item.get("monitor") if isinstance(item, dict) else None
        if not isinstance(monitor, str):
            continue
        path: Path = ("callbacks", i, "monitor")
        file, line = where(path) if where else (None, None)
        if monitor in names:
            ranker = _ranker(item)
            why = _no_direction(raw, monitor) if ranker else None
            hint = "Set `mode: min` or `mode: max` on this callback."
        else:
            near = did_you_mean(monitor, names)
            if near and near != monitor:
                message = f"'{monitor}' is not logged during training (logged: {', '.join(shown)})"
                problems.append(Problem(file=file, line=line, path=dotted(path), message=message, suggestion=near))
                continue
            ranker = _unrankable(raw, item)
            why = f"it is not the loss or a metric of this config (logged: {', '.join(shown)})"
            hint = "Monitor one of those or, if something else logs it, set `mode: min` or `mode: max`."
        if ranker and why:
            message = f"{ranker} cannot tell whether '{monitor}' should be minimized or maximized: {why}"
            problems.append(Problem(file=file, line=line, path=dotted(path), message=message, hint=hint))
    return problems


# Keras callbacks that rank their `monitor` (the MonitorCallback subclasses), for a Keras that moved that class.
RANKING_CALLBACKS = ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau")


def _ranker(callback: Any) -> str | None:
    """The callback's Keras name when it ranks its ``monitor`` and must infer the direction (``mode: auto``)."""
    if not isinstance(callback, dict) or callback.get("mode", "auto") not in ("auto", None):
        return None
    name = component_name(callback)
    entry = registry.lookup("callbacks", name) if name is not None else None
    if entry is None or not entry.is_class:
        return None
    try:
        from keras.src.callbacks.monitor_callback import MonitorCallback
    except ImportError:  # pragma: no cover - Keras moved its internals
        ranks = entry.name in RANKING_CALLBACKS
    else:
        ranks = issubclass(entry.obj, MonitorCallback)
    return entry.name if ranks else None


def _unrankable(raw: dict[str, Any], callback: dict[str, Any]) -> str | None:
    """The callback's Keras name when Keras will refuse its ``monitor`` (already known not to be logged).

    In ``mode: auto`` (the default) Keras' ranking callbacks infer the direction from the name: ``loss``, or a
    compiled metric whose direction it knows; anything else raises at the end of the first epoch, after the run
    folder was written. That is certain only when every metric is a built-in Keras one: a plugin metric could
    log the name with a direction.
    """
    ranker = _ranker(callback)
    metrics = raw.get("metrics") or []
    if ranker is None or not isinstance(metrics, list):
        return None
    for metric in metrics:
        metric_name = component_name(metric)
        found = registry.lookup("metrics", metric_name) if metric_name is not None else None
        if found is None or found.plugin:
            return None
    return ranker


def _no_direction(raw: dict[str, Any], monitor: str) -> str | None:
    """Why Keras, in ``mode: auto``, cannot rank ``monitor`` (a logged name); None when it can or may.

    Keras knows a direction for ``loss`` and for compiled metrics that declare one (``_direction``). dlkit's own
    logs (``lr``, ``time``) are not metrics, and some built-in metrics (``TruePositives``, ``Mean``) declare
    none: both raise at the end of the first epoch, after the run folder was written.
    """
    base = monitor.removeprefix("val_")
    if base == "loss":
        return None
    metrics = raw.get("metrics")
    matches = [item for item in (metrics if isinstance(metrics, list) else []) if base in _metric_names(item)]
    if matches:
        built = [_built_metric(item) for item in matches]
        if any(metric is None or hasattr(metric, "_direction") for metric in built):
            return None  # a plugin, a name `compile` resolves itself, or a metric with a known direction
        return f"Keras' {type(built[0]).__name__} metric does not say whether higher is better"
    if monitor in DLKIT_LOGS:
        return f"'{monitor}' is logged by dlkit, and Keras infers a direction only for the loss and for metrics"
    return None


def _built_metric(item: Any) -> Any:
    """A built-in Keras metric object built from one ``metrics`` entry; None for plugins, names ``compile``
    resolves itself (``accuracy``, ``mae``: those it ranks) and entries that do not build."""
    from dlkit.errors import ConfigError
    from dlkit.models.components import instantiate

    name = component_name(item)
    entry = registry.lookup("metrics", name) if name is not None else None
    if entry is None or entry.plugin or not entry.is_class:
        return None
    with _keras_names_untouched():
        try:
            metric = instantiate("metrics", item, ("metrics",))
        except ConfigError:
            return None
    return None if isinstance(metric, str) else metric


# Components cheap and side-effect free to construct: constructing them catches the values Keras refuses
# (negative units, a bad padding mode) with the file and line, before anything is built or written.
TRIAL_KINDS = ("layers", "losses", "metrics")


def _trial_instantiate(kind: str, value: Any, path: Path, where: Where | None) -> list[Problem]:
    from dlkit.errors import ConfigError
    from dlkit.models.components import instantiate

    if component_name(value) is None:
        return []
    with _keras_names_untouched():
        try:
            instantiate(kind, value, path, where)
        except ConfigError as error:
            return list(error.problems)
    return []


@contextlib.contextmanager
def _keras_names_untouched() -> Iterator[None]:
    """Keep Keras' automatic layer-name counters as they were, so a trial ``Dense`` does not turn the real
    model's ``dense`` into ``dense_1``."""
    try:
        from keras.src.backend.common import global_state

        uids = global_state.get_global_attribute(
            "object_name_uids", default=collections.defaultdict(int), set_to_default=True
        )
    except ImportError:  # pragma: no cover - Keras moved its internals; names then merely get a suffix
        uids = None
    saved = dict(uids) if uids is not None else None
    try:
        yield
    finally:
        if uids is not None and saved is not None:
            uids.clear()
            uids.update(saved)


def _check_block_uses(raw: dict[str, Any], where: Where | None) -> list[Problem]:
    model = raw.get("model")
    if not isinstance(model, dict):
        return []
    blocks = model.get("blocks") if isinstance(model.get("blocks"), dict) else {}
    assert isinstance(blocks, dict)
    sites: list[tuple[Path, Any]] = []
    if isinstance(model.get("layers"), list):
        sites += [(("model", "layers", i), item) for i, item in enumerate(model["layers"])]
    for block_name, items in blocks.items():
        if isinstance(items, list):
            sites += [(("model", "blocks", block_name, i), item) for i, item in enumerate(items)]
    problems = []
    for path, item in sites:
        if isinstance(item, dict) and isinstance(item.get("block"), str) and item["block"] not in blocks:
            at = (*path, "block")
            file, line = where(at) if where else (None, None)
            known = ", ".join(sorted(map(str, blocks))) or "none declared"
            problems.append(
                Problem(
                    file=file,
                    line=line,
                    path=dotted(at),
                    message=f"unknown block '{item['block']}' (model.blocks: {known})",
                    suggestion=registry.suggest(item["block"], map(str, blocks)),
                )
            )
    return problems


def canonical_component(kind: str, value: Any, skip_keys: frozenset[str] = frozenset()) -> Any:
    """A copy of one component with its ``type`` (and nested component names) made canonical."""
    name = component_name(value)
    if name is None:
        return value
    entry = registry.lookup(kind, name)
    if entry is None:
        return value
    if isinstance(value, str):
        return entry.name
    out = dict(value)
    out["type"] = entry.name
    target = registry.sibling_class(entry) if not entry.is_class and len(out) > 1 else entry
    for arg, sub in value.items():
        if arg == "type" or arg in skip_keys or not isinstance(arg, str) or target is None:
            continue
        kind_of_arg = sub_kind(target.kind, arg)
        if kind_of_arg:
            out[arg] = canonical_component(kind_of_arg, sub)
    return out


def canonicalize(raw: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``raw`` with every component ``type`` written canonical (``conv2d`` -> ``Conv2D``).

    Unknown names are left as they are (validation reports them). Bare strings stay bare strings.
    """
    out = copy.deepcopy(raw)
    if not isinstance(out, dict):
        return out
    for kind, path, value, skip in list(iter_components(out)):
        parent: Any = out
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = canonical_component(kind, value, skip)
    return out
