"""What ``evaluate``/``export``/``predict`` were pointed at, and the data of one split for it.

A target is a run folder (its ``model.keras``), a model file, or an exported artifact. Artifacts and
model files inside a run folder (``runs/x/001/export/model.tflite``) find their run by walking up, so
they are scored on the run's own data with the run's own settings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.errors import ConfigError, DataError, Problem, UsageError
from dlkit.export.runtime import kind_of

CONFIG_YAML = "config.yaml"
DATA_KINDS = {".csv": "csv", ".npz": "npz", ".tfrecord": "tfrecord", ".tfrec": "tfrecord"}


@dataclass
class Target:
    """A resolved model or artifact.

    Attributes:
        path: The model file or artifact (a run resolves to its ``model.keras``).
        kind: ``keras``, ``saved_model``, ``tflite`` or ``onnx``.
        run_dir: The run folder it belongs to, when there is one.
        raw: The run's resolved config as a dict (None outside a run).
        is_run_model: True for the run's own ``model.keras``.
    """

    path: Path
    kind: str
    run_dir: Path | None
    raw: dict[str, Any] | None
    is_run_model: bool

    @property
    def label(self) -> str:
        """Short name for file names and reports: ``model`` for the run's model, else the artifact's name."""
        return "model" if self.is_run_model else self.path.name


@dataclass
class SplitData:
    """Raw inputs and labels of one split, with what the data layer knows about the task."""

    x: np.ndarray
    y: np.ndarray
    split: str
    task: str
    num_classes: int | None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        from dlkit.config.yaml_io import load_yaml

        raw, _ = load_yaml(path)
    except ImportError:  # pragma: no cover - yaml_io is part of dlkit/config
        import yaml

        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    if not isinstance(raw, dict):
        raise ConfigError(problems=[Problem(file=str(path), message="the run's config.yaml is not a mapping")])
    return raw


def _find_run(start: Path) -> Path | None:
    for folder in [start, *start.parents][:4]:
        if (folder / CONFIG_YAML).is_file():
            return folder
    return None


def resolve_target(path: str | Path) -> Target:
    """Resolve a run folder, model file or artifact path.

    Raises:
        UsageError: nothing loadable at ``path``.
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(problems=[Problem(path="TARGET", message="no such file or folder", got=str(p))])
    from dlkit.training.run_dir import import_run_plugins, resolve_run_dir

    kind = kind_of(p)
    if kind is not None:
        run = _find_run(p.parent)
        if run is not None:
            import_run_plugins(run)  # the run's custom layers, before any model is loaded
        raw = _read_raw(run / CONFIG_YAML) if run else None
        is_run_model = run is not None and p.resolve() == (run / "model.keras").resolve()
        return Target(p, kind, run, raw, is_run_model)
    run = resolve_run_dir(p)
    import_run_plugins(run)
    model = run / "model.keras"
    if not model.is_file():
        raise UsageError(
            problems=[
                Problem(
                    path="RUN_DIR",
                    message="the run has no model.keras (it has not finished)",
                    got=str(run),
                    hint=f"Finish it with: dlkit train --resume {run}",
                )
            ]
        )
    return Target(model, "keras", run, _read_raw(run / CONFIG_YAML), True)


def config_of(raw: dict[str, Any]) -> Any:
    """Validate a resolved config dict into a ``Config`` (ConfigError on problems)."""
    try:
        from dlkit.config.loader import config_from_dict

        return config_from_dict(raw).config
    except ImportError:  # pragma: no cover - loader is part of dlkit/config
        from pydantic import ValidationError

        from dlkit.config.schema import Config

        try:
            return Config.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(f"the run's config.yaml is invalid: {error}") from error


def with_data_file(raw: dict[str, Any], data: str | Path) -> dict[str, Any]:
    """A copy of ``raw`` whose data is the file or folder ``data`` (all of it read as the ``train`` split).

    The run's label/feature/key/image settings are kept; the source kind follows the file's extension
    (a folder is an ``images`` folder). Nothing is held out.
    """
    p = Path(data).resolve()
    if not p.exists():
        raise DataError(problems=[Problem(path="--data", message="no such file or folder", got=str(p))])
    kind = "images" if p.is_dir() else DATA_KINDS.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            problems=[
                Problem(
                    path="--data",
                    message="unknown data file type, expected .csv, .npz, .tfrecord or an image folder",
                    got=p.name,
                )
            ]
        )
    out = copy.deepcopy(raw)
    section = out.setdefault("data", {})
    section.update(
        {"source": kind, "path": None, "train": str(p), "validation": None, "test": None}
        | {"validation_split": 0.0, "test_split": 0.0}
    )
    return out


def stack_split(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """An unbatched ``(x, y)`` dataset as two NumPy arrays."""
    xs, ys = [], []
    for x, y in dataset.batch(1024).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        return np.zeros((0,)), np.zeros((0,))
    return np.concatenate(xs), np.concatenate(ys)


def standalone_split(path: Path, split: str) -> SplitData:
    """``x``/``y`` of an npz file for a model outside any run; the task is told from the outputs (``auto``).

    Raises:
        DataError: missing or unreadable file, no ``x``/``y`` arrays, or lengths that differ.
    """
    if not path.is_file():
        raise DataError(problems=[Problem(path="--data", message="no such file", got=str(path))])
    from dlkit.data.npz_arrays import read_npz

    x, y = read_npz(path, ("x", "y"), where="--data", hint="outside a run folder dlkit reads the arrays named x and y.")
    if len(x) != len(y) or len(x) == 0:
        raise DataError(
            problems=[Problem(file=str(path), path="--data", message=f"x has {len(x)} samples and y has {len(y)}")]
        )
    return SplitData(x=x, y=y, split=f"{split}:{path.name}", task="auto", num_classes=None)


def infer_task(y: np.ndarray, outputs: np.ndarray) -> tuple[str, int | None]:
    """Task of a model outside a run, from its outputs and the labels: several outputs and integer (or one-hot)
    labels -> classification; one output in [0, 1] with 0/1 labels -> binary; anything else -> regression."""
    width = int(outputs.shape[-1]) if outputs.ndim > 1 else 1
    integral = bool(np.all(np.isfinite(y))) and bool(np.all(np.round(y) == y))
    if width > 1 and integral and (y.ndim == 1 or y.shape[-1] in (1, width)):
        return "classification", width
    in_unit = bool(np.all((outputs >= 0) & (outputs <= 1)))
    if width == 1 and integral and in_unit and set(np.unique(y).tolist()) <= {0, 1}:
        return "binary", 2
    return "regression", None


def load_split(target: Target, split: str, data: str | Path | None = None) -> SplitData:
    """The raw ``(x, y)`` of ``split`` for ``target`` (``data``: score this file instead).

    Raises:
        UsageError: the target is outside a run folder (no config to read the data settings from).
        DataError: the split is missing or empty, or the data cannot be read.
    """
    if target.raw is None:
        if data is not None and Path(data).suffix.lower() == ".npz":
            return standalone_split(Path(data), split)
        raise UsageError(
            problems=[
                Problem(
                    path="TARGET",
                    message="no config.yaml in or above it, so dlkit does not know which data to score it on",
                    got=str(target.path),
                    hint="Pass the run folder, or an artifact inside it (runs/<name>/<NNN>/export/...), "
                    "or --data FILE.npz (arrays x and y).",
                )
            ]
        )
    raw = target.raw if data is None else with_data_file(target.raw, data)
    name = "train" if data is not None else split
    cfg = config_of(raw)
    from dlkit.data import load_data

    bundle = load_data(cfg)
    x, y = stack_split(bundle.unbatched(name))
    if len(x) == 0:
        raise DataError(problems=[Problem(path=f"data.{name}", message="the split is empty")])
    return SplitData(
        x=x,
        y=y,
        split=split if data is None else f"{split}:{Path(data).name}",
        task=bundle.task,
        num_classes=bundle.num_classes,
        class_names=getattr(bundle, "class_names", None),
    )
