"""Live registries of the Keras components a config may name, read from Keras itself.

Each *kind* (``layers``, ``optimizers``, ``losses``, ``metrics``, ``callbacks``, ``schedules``,
``activations``, ``initializers``, ``regularizers``, ``constraints``) is enumerated from its Keras module
the first time it is asked for, so a newer Keras brings its new components with it. A name resolves
exactly first (``Conv2D``, ``sparse_categorical_crossentropy``), then by its snake_case / case-insensitive
form (``conv2d``, ``max_pooling2d``, ``early_stopping``, ``adam``), preferring classes.

Configs never import code: names with ``.``, ``:`` or ``/`` are refused. Custom layers come only from
plugin modules (``--plugin MODULE`` or the ``dlkit.plugins`` entry-point group) that call
:func:`register_layer`, which refuses silent overwrites (mmengine ``Registry`` style).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from dlkit.errors import UsageError

log = logging.getLogger("dlkit.models.registry")

KINDS = (
    "layers",
    "optimizers",
    "losses",
    "metrics",
    "callbacks",
    "schedules",
    "activations",
    "initializers",
    "regularizers",
    "constraints",
)
# The singular noun used in messages ("unknown layer 'Dens'").
NOUN = {
    "layers": "layer",
    "optimizers": "optimizer",
    "losses": "loss",
    "metrics": "metric",
    "callbacks": "callback",
    "schedules": "learning-rate schedule",
    "activations": "activation",
    "initializers": "initializer",
    "regularizers": "regularizer",
    "constraints": "constraint",
}
IMPORT_PATH_MESSAGE = "import paths are not allowed; name a registered component"
PLUGIN_GROUP = "dlkit.plugins"

# Abstract bases, wrappers of other objects and components that need a Python callable or another framework:
# a YAML file cannot configure them (and must never name code).
_EXCLUDED = {
    "layers": {
        "Layer",
        "InputLayer",
        "Wrapper",
        "Lambda",
        "TFSMLayer",
        "TorchModuleWrapper",
        "JaxLayer",
        "FlaxLayer",
        "InputSpec",
    },
    "optimizers": {"Optimizer", "LossScaleOptimizer", "MultiOptimizer", "OptimizerMap"},
    "losses": {"Loss", "LossFunctionWrapper", "Reduction"},
    "metrics": {"Metric", "MeanMetricWrapper", "Reduction"},
    "callbacks": {"Callback", "CallbackList", "History", "LambdaCallback", "LearningRateScheduler"},
    "schedules": {"LearningRateSchedule"},
    "initializers": {"Initializer"},
    "regularizers": {"Regularizer"},
    "constraints": {"Constraint"},
    "activations": set(),
}
_NOT_COMPONENTS = {"get", "serialize", "deserialize"}
# Strings `model.compile` understands itself and resolves from the loss (sparse/categorical/binary).
_COMPILE_METRIC_STRINGS = ("accuracy", "acc", "crossentropy", "ce")


@dataclass(frozen=True)
class Entry:
    """One registered component.

    Attributes:
        name: The canonical name (a Keras class or function name, or a compile string such as ``accuracy``).
        obj: The class or function; None for strings only ``model.compile`` understands.
        kind: The registry kind (``layers``, ``losses`` ...).
        plugin: True for layers registered by a plugin module.
    """

    name: str
    obj: Any
    kind: str
    plugin: bool = False

    @property
    def is_class(self) -> bool:
        """True when the entry is a class (it takes keyword arguments)."""
        return inspect.isclass(self.obj)


def normalize(name: str) -> str:
    """The form aliases are compared in: lower case without ``_``/``-`` (``max_pooling2d`` -> ``maxpooling2d``)."""
    return re.sub(r"[_\-\s]", "", name).lower()


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``name`` (case- and underscore-insensitive), or None when nothing is close."""
    from dlkit.config.suggest import did_you_mean

    return did_you_mean(name, candidates)


def is_import_path(name: str) -> bool:
    """True for names that look like code locations (``a.b.C``, ``mod:attr``, ``path/to``)."""
    return any(ch in name for ch in ".:/\\")


def _module(kind: str) -> Any:
    import keras

    if kind == "schedules":
        return keras.optimizers.schedules
    return getattr(keras, kind)


def _base(kind: str) -> type | None:
    import keras

    return {
        "layers": keras.layers.Layer,
        "optimizers": keras.optimizers.Optimizer,
        "losses": keras.losses.Loss,
        "metrics": keras.metrics.Metric,
        "callbacks": keras.callbacks.Callback,
        "schedules": keras.optimizers.schedules.LearningRateSchedule,
        "initializers": keras.initializers.Initializer,
        "regularizers": keras.regularizers.Regularizer,
        "constraints": keras.constraints.Constraint,
    }.get(kind)


@cache
def _builtin(kind: str) -> dict[str, Entry]:
    """Enumerate one kind from its Keras module (cached: Keras does not change while we run)."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}")
    module, base = _module(kind), _base(kind)
    out: dict[str, Entry] = {}
    for attr in sorted(dir(module)):
        if attr.startswith("_") or attr in _EXCLUDED[kind] or attr in _NOT_COMPONENTS:
            continue
        obj = getattr(module, attr)
        if inspect.ismodule(obj):
            continue
        if inspect.isclass(obj):
            # Lower-case class aliases (`he_normal`, `l2`) are not entries: they resolve to the class name.
            if base is not None and issubclass(obj, base) and not attr.islower():
                out[attr] = Entry(attr, obj, kind)
        elif callable(obj) and attr.islower():
            out[attr] = Entry(attr, obj, kind)
    if kind in ("losses", "metrics"):
        # Keras' own short names (mse, mae, bce, kld ...) that `keras.losses.get` / compile accept.
        try:
            src = importlib.import_module(f"keras.src.{kind}")
            for key, obj in getattr(src, "ALL_OBJECTS_DICT", {}).items():
                own_name = normalize(getattr(obj, "__name__", ""))
                if key.islower() and key not in out and callable(obj) and normalize(key) != own_name:
                    out[key] = Entry(key, obj, kind)
        except ImportError:  # pragma: no cover - Keras moved its internals; the public names still work
            log.debug("no keras.src.%s.ALL_OBJECTS_DICT", kind)
    if kind == "metrics":
        for key in _COMPILE_METRIC_STRINGS:
            out[key] = Entry(key, None, kind)
    return out


_PLUGIN_LAYERS: dict[str, Entry] = {}


def entries(kind: str) -> dict[str, Entry]:
    """Every registered component of ``kind``, by canonical name (plugin layers included)."""
    out = dict(_builtin(kind))
    if kind == "layers":
        out.update(_PLUGIN_LAYERS)
    return out


def names(kind: str) -> list[str]:
    """Sorted canonical names of ``kind`` (what ``dlkit list KIND`` prints)."""
    return sorted(entries(kind), key=lambda n: (n.lower(), n))


def lookup(kind: str, name: str) -> Entry | None:
    """Resolve ``name`` (canonical or alias) to its entry, or None when unknown.

    Exact names win (``accuracy`` stays the compile string, ``Accuracy`` is the class); otherwise the
    case- and underscore-insensitive form is matched, preferring a class over a function of the same name.
    """
    table = entries(kind)
    if name in table:
        return table[name]
    if is_import_path(name):
        return None
    norm = normalize(name)
    matches = [e for e in table.values() if normalize(e.name) == norm]
    if not matches:
        return None
    classes = [e for e in matches if e.is_class]
    return (classes or matches)[0]


def sibling_class(entry: Entry) -> Entry | None:
    """The class a function entry stands for (``sparse_categorical_crossentropy`` -> the class), if any."""
    if entry.is_class:
        return entry
    if entry.obj is None:
        return None
    fn_name = getattr(entry.obj, "__name__", entry.name)
    for cand in (entry.name, fn_name):
        found = lookup(entry.kind, cand)
        if found is not None and found.is_class:
            return found
        norm = normalize(cand)
        for other in entries(entry.kind).values():
            if other.is_class and normalize(other.name) == norm:
                return other
    return None


def unknown_message(kind: str, name: str) -> tuple[str, str | None]:
    """Message and suggestion for a name that did not resolve."""
    if is_import_path(name):
        return f"{IMPORT_PATH_MESSAGE} (got '{name}')", None
    # Suggest in the style the user wrote: `sparse_categorical_crossentropyy` -> the function name,
    # `Accurcy` -> the class.
    pool = sorted(entries(kind), key=lambda n: n.islower() != name.islower())
    return f"unknown {NOUN[kind]} '{name}'", suggest(name, pool)


@dataclass(frozen=True)
class Signature:
    """What a component's constructor accepts.

    Attributes:
        accepted: Every keyword argument name the class (or, through ``**kwargs``, its bases) takes.
        required: Arguments without a default.
    """

    accepted: frozenset[str]
    required: tuple[str, ...]


@cache
def signature(cls: type) -> Signature:
    """Keyword arguments of ``cls``'s constructor, following ``**kwargs`` up the class hierarchy.

    When ``__init__`` takes ``**kwargs`` the next base's named arguments are accepted too (``Dense`` gets
    ``Layer``'s ``name``/``dtype``/``trainable``; ``Adam`` the optimizer base's ``clipnorm``, ``use_ema`` ...).
    """
    accepted: set[str] = set()
    required: list[str] = []
    first = True
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        try:
            params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        except (TypeError, ValueError):
            break
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
        if not named and has_var_kw:
            continue  # a pass-through __init__(*args, **kwargs): look further up
        accepted.update(p.name for p in named)
        if first:
            required = [p.name for p in named if p.default is p.empty]
            first = False
        if not has_var_kw:
            break
    return Signature(frozenset(accepted), tuple(required))


# ---------------------------------------------------------------------------------------------- plugins


def register_layer(cls: type | None = None, *, name: str | None = None) -> Any:
    """Register a custom Keras layer class so configs may name it (usable as a decorator).

    Unless the plugin registered it itself, the class is also registered with Keras serialization
    (package ``dlkit``) so models holding it round-trip through ``model.save``/``keras.saving.load_model``
    once the plugin module is imported.

    Args:
        cls: A ``keras.layers.Layer`` subclass.
        name: The config name. Defaults to the class name.

    Raises:
        ValueError: The name is taken by a Keras layer or another class (no silent overwrites).
    """

    def _register(klass: type) -> type:
        import keras

        if not (inspect.isclass(klass) and issubclass(klass, keras.layers.Layer)):
            raise ValueError(f"register_layer needs a keras.layers.Layer subclass (got {klass!r})")
        key = name or klass.__name__
        if not key.isidentifier():
            raise ValueError(f"layer name {key!r} must be a plain identifier")
        if key in _builtin("layers"):
            raise ValueError(f"layer name '{key}' is a built-in Keras layer; register the plugin under another name")
        old = _PLUGIN_LAYERS.get(key)
        if old is not None and old.obj is not klass:
            same = f"{old.obj.__module__}.{old.obj.__qualname__}" == f"{klass.__module__}.{klass.__qualname__}"
            if not same:
                raise ValueError(
                    f"layer name '{key}' is already registered by {old.obj.__module__}.{old.obj.__qualname__}"
                )
        if ">" not in keras.saving.get_registered_name(klass):  # keep a plugin's own registration
            keras.saving.register_keras_serializable(package="dlkit", name=key)(klass)
        _PLUGIN_LAYERS[key] = Entry(key, klass, "layers", plugin=True)
        return klass

    return _register if cls is None else _register(cls)


def unregister_layer(name: str) -> None:
    """Remove a plugin layer (tests)."""
    _PLUGIN_LAYERS.pop(name, None)


_LOADED_PLUGINS: list[str] = []


def load_plugins(modules: Iterable[str] = (), entry_points: bool = True) -> list[str]:
    """Import plugin modules (``--plugin MODULE``) and the ``dlkit.plugins`` entry points.

    Plugins register their layers with :func:`register_layer` when imported.

    Args:
        modules: Importable module names given on the command line.
        entry_points: Also load the ``dlkit.plugins`` entry-point group. Defaults to True.

    Returns:
        The module names imported, in order.

    Raises:
        UsageError: A module cannot be imported or fails while registering.
    """
    loaded: list[str] = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise UsageError(f"--plugin {module}: cannot import plugin module '{module}': {error}") from error
        except Exception as error:  # noqa: BLE001 - a plugin's own failure is the user's input
            raise UsageError(
                f"--plugin {module}: plugin failed while loading: {type(error).__name__}: {error}"
            ) from error
        loaded.append(module)
    if entry_points:
        from importlib.metadata import entry_points as _eps

        for ep in _eps(group=PLUGIN_GROUP):
            try:
                ep.load()
            except Exception as error:  # noqa: BLE001
                raise UsageError(
                    f"entry point '{ep.name}' ({PLUGIN_GROUP}) failed to load: {type(error).__name__}: {error}"
                ) from error
            loaded.append(ep.value)
    for item in loaded:
        if item not in _LOADED_PLUGINS:
            _LOADED_PLUGINS.append(item)
    return loaded


def loaded_plugins() -> list[str]:
    """Plugin modules imported so far (to record in run.json so a run can be reloaded)."""
    return list(_LOADED_PLUGINS)
