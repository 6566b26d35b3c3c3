"""Build Keras objects (layers, optimizer, loss, metrics, callbacks) from config components.

Every builder first runs the same name/argument check as ``dlkit config check`` (so a caller that skipped
validation still gets a located, suggested error), then calls the Keras class; whatever Keras still
raises is re-raised as :class:`~dlkit.errors.ConfigError` with the config path
(``model.layers[2]: Conv2D: <keras message>``).
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from dlkit.errors import ConfigError, Problem
from dlkit.models import registry
from dlkit.models.validate import (
    CALLBACK_PATH_ARGS,
    LAYER_SPEC_KEYS,
    Path,
    Where,
    check_component,
    dotted,
    sub_kind,
)

# Where callbacks write when the config names no path (relative to the run folder).
CALLBACK_DEFAULT_PATHS = {
    "ModelCheckpoint": "checkpoints/best.keras",
    "TensorBoard": "tensorboard",
    "CSVLogger": "keras_log.csv",
    "BackupAndRestore": "checkpoints/backup",
}


def to_spec(value: Any) -> Any:
    """A component as plain data: a bare name or ``{"type": NAME, **kwargs}``.

    Accepts the schema's pydantic components (``Component``, ``LayerSpec``, ``OptimizerConfig``), dicts and
    strings. A ``LayerSpec``'s ``name`` is kept (it becomes the Keras layer name); ``inputs``/``block``/
    ``repeat`` are dropped (they are wiring, not arguments).
    """
    if isinstance(value, str | dict):
        return value
    if hasattr(value, "type") and hasattr(value, "kwargs"):
        out: dict[str, Any] = {"type": value.type}
        if getattr(value, "name", None) is not None:
            out["name"] = value.name
        for key, sub in value.kwargs.items():
            out[key] = to_spec(sub) if hasattr(sub, "kwargs") else sub
        return out
    return value


def _locate(where: Where | None, path: Path, message: str) -> Problem:
    file, line = where(path) if where else (None, None)
    return Problem(file=file, line=line, path=dotted(path), message=message)


def _keras_message(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _raise_if_invalid(kind: str, spec: Any, path: Path, where: Where | None) -> None:
    problems = check_component(kind, spec, path, where, skip_keys=LAYER_SPEC_KEYS if kind == "layers" else frozenset())
    if problems:
        raise ConfigError(problems=problems)


def instantiate(
    kind: str,
    value: Any,
    path: Path,
    where: Where | None = None,
    *,
    defaults: dict[str, Any] | None = None,
    default_kernel_regularizer: Any = None,
) -> Any:
    """Build one component of ``kind`` from its config value.

    Args:
        kind: Registry kind (``layers``, ``optimizers`` ...).
        value: A bare name, a ``{type: ..., **kwargs}`` mapping, or a schema component.
        path: Config path used in error messages.
        where: Locates a path as ``(file, line)``. Defaults to unlocated errors.
        defaults: Arguments to add when the config does not set them. Defaults to none.
        default_kernel_regularizer: A factory returning a regularizer for layers that accept
            ``kernel_regularizer`` and set none (``model.regularization``). Defaults to None.

    Returns:
        The Keras object; for function-named losses the Keras function, for metric names ``compile``
        resolves itself (``accuracy``, ``mae``) the name string.

    Raises:
        ConfigError: Unknown name or argument, or Keras refused the arguments.
    """
    spec = to_spec(value)
    _raise_if_invalid(kind, spec, path, where)
    name = spec if isinstance(spec, str) else spec["type"]
    entry = registry.lookup(kind, name)
    assert entry is not None  # checked above
    kwargs = (
        {k: v for k, v in spec.items() if k != "type" and k not in LAYER_SPEC_KEYS} if isinstance(spec, dict) else {}
    )
    if kind == "metrics" and not kwargs and entry.name.islower():
        return entry.name  # compile resolves it and logs it under the name the user wrote (val_mae)
    if not entry.is_class:
        if not kwargs:
            return _function_component(entry)
        sibling = registry.sibling_class(entry)
        assert sibling is not None  # checked above
        entry = sibling
    for key, default in (defaults or {}).items():
        kwargs.setdefault(key, default)
    accepted = registry.signature(entry.obj).accepted
    if (
        default_kernel_regularizer is not None
        and "kernel_regularizer" in accepted
        and not kwargs.get("kernel_regularizer")
    ):
        kwargs["kernel_regularizer"] = default_kernel_regularizer()
    for arg, sub in list(kwargs.items()):
        kind_of_arg = sub_kind(kind, arg)
        if kind_of_arg is None or sub is None or not isinstance(sub, str | dict):
            continue
        if kind_of_arg == "activations":
            kwargs[arg] = registry.lookup("activations", sub).name if isinstance(sub, str) else sub  # type: ignore[union-attr]
            continue
        kwargs[arg] = instantiate(
            kind_of_arg,
            sub,
            (*path, arg),
            where,
            default_kernel_regularizer=default_kernel_regularizer if kind_of_arg == "layers" else None,
        )
    try:
        return entry.obj(**kwargs)
    except Exception as error:  # noqa: BLE001 - Keras raises ValueError/TypeError/... for bad values
        raise ConfigError(problems=[_locate(where, path, f"{entry.name}: {_keras_message(error)}")]) from error


def _function_component(entry: registry.Entry) -> Any:
    if entry.kind == "metrics":
        return entry.name  # compile resolves it and logs it under the name the user wrote (val_mae)
    if entry.kind == "activations":
        return entry.name
    return entry.obj


def build_layer(
    spec: Any,
    path: Path = ("model", "layers", 0),
    where: Where | None = None,
    *,
    default_kernel_regularizer: Any = None,
) -> Any:
    """Build one Keras layer (also used for ``data.preprocessing`` / ``data.augmentation``).

    Args:
        spec: A bare layer name, a mapping, or a schema ``Component``/``LayerSpec``.
        path: Config path for error messages. Defaults to ``model.layers[0]``.
        where: Locates a path as ``(file, line)``. Defaults to None.
        default_kernel_regularizer: Factory for ``model.regularization``. Defaults to None.

    Raises:
        ConfigError: Unknown layer or argument, or Keras refused the arguments.
    """
    return instantiate("layers", spec, path, where, default_kernel_regularizer=default_kernel_regularizer)


def build_optimizer(optimizer: Any, where: Where | None = None) -> Any:
    """Build the Keras optimizer of ``optimizer`` (the config's ``optimizer`` section).

    A ``learning_rate`` given as a component is built first as a ``keras.optimizers.schedules`` object
    (Keras cannot take a schedule nested as a dict inside the optimizer's own config).

    Raises:
        ConfigError: Unknown optimizer, schedule or argument, or Keras refused the values.
    """
    return instantiate("optimizers", optimizer, ("optimizer",), where)


def build_loss(loss: Any, where: Where | None = None) -> Any:
    """Build the loss: a Keras ``Loss`` instance, or the Keras function for a bare function name.

    Raises:
        ConfigError: Unknown loss or argument.
    """
    return instantiate("losses", loss, ("loss",), where)


def build_metrics(metrics: list[Any] | None, where: Where | None = None) -> list[Any]:
    """Build the metrics list for ``model.compile``.

    Names ``compile`` resolves itself (``accuracy``, ``acc``, ``mae``, ``sparse_categorical_accuracy``)
    stay strings, so ``compile`` picks the right accuracy for the loss and logs them under those names.

    Raises:
        ConfigError: Unknown metric or argument.
    """
    return [instantiate("metrics", m, ("metrics", i), where) for i, m in enumerate(metrics or [])]


def build_callbacks(
    specs: list[Any] | None, run_dir: str | FsPath | None = None, where: Where | None = None
) -> list[Any]:
    """Build the config's Keras callbacks.

    File-path arguments (``ModelCheckpoint.filepath``, ``TensorBoard.log_dir``, ``CSVLogger.filename``,
    ``BackupAndRestore.backup_dir``) resolve relative to ``run_dir`` and default into it
    (``checkpoints/best.keras``, ``tensorboard``, ``keras_log.csv``, ``checkpoints/backup``).

    Args:
        specs: The ``callbacks`` list.
        run_dir: The run folder. Defaults to None (paths must then be given and are used as written).
        where: Locates a path as ``(file, line)``. Defaults to None.

    Raises:
        ConfigError: Unknown callback or argument, a missing path without a run folder, or Keras refused it.
    """
    out = []
    for i, item in enumerate(specs or []):
        spec = to_spec(item)
        path: Path = ("callbacks", i)
        name = spec if isinstance(spec, str) else spec.get("type") if isinstance(spec, dict) else None
        entry = registry.lookup("callbacks", name) if isinstance(name, str) else None
        if entry is not None and entry.name in CALLBACK_PATH_ARGS:
            arg = CALLBACK_PATH_ARGS[entry.name]
            spec = {"type": entry.name} if isinstance(spec, str) else dict(spec)
            given = spec.get(arg)
            if given is None:
                if run_dir is None:
                    raise ConfigError(problems=[_locate(where, path, f"{entry.name} needs '{arg}' (no run folder)")])
                spec[arg] = str(FsPath(run_dir) / CALLBACK_DEFAULT_PATHS[entry.name])
            elif run_dir is not None and not FsPath(str(given)).is_absolute():
                spec[arg] = str(FsPath(run_dir) / str(given))
        out.append(instantiate("callbacks", spec, path, where))
    return out
