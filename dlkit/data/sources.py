"""The one table of data sources: it drives validation, ``dlkit list datasets`` and dispatch.

Each row names a source, the config keys it reads, the dataset names it accepts (``keras:NAME``,
``sklearn:NAME``) and the function that loads it. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlkit.config.suggest import did_you_mean
from dlkit.errors import ConfigError, Problem


@dataclass(frozen=True)
class SourceSpec:
    """One data source.

    Attributes:
        name: ``csv``, ``keras`` ... (``keras:NAME`` sources have ``named=True``).
        loader: ``module:function`` called as ``function(cfg, name) -> Loaded``.
        help: One line for ``dlkit list datasets``.
        keys: The ``data.*`` keys the source reads.
        named: Whether the source takes a dataset name after a colon.
        names: The dataset names accepted when ``named`` (empty: any, e.g. tfds).
    """

    name: str
    loader: str
    help: str
    keys: tuple[str, ...] = ()
    named: bool = False
    names: tuple[str, ...] = ()

    def load(self) -> Callable[..., Any]:
        """Import and return the loader function."""
        module, attr = self.loader.split(":")
        return getattr(importlib.import_module(module), attr)


KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing")
SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "csv",
            "dlkit.data.csv_source:load_csv",
            "CSV files with a header row; `label` column, optional `features`; string columns become integer codes",
            ("path", "train", "validation", "test", "label", "features"),
        ),
        SourceSpec(
            "npz",
            "dlkit.data.npz_source:load_npz",
            "NumPy .npz files with arrays x and y",
            ("path", "train", "validation", "test", "x_key", "y_key"),
        ),
        SourceSpec(
            "images",
            "dlkit.data.images:load_images",
            "a folder of class subfolders of images, decoded in parallel",
            ("path", "train", "validation", "test", "image_size", "color_mode"),
        ),
        SourceSpec(
            "keras",
            "dlkit.data.keras_datasets:load_keras",
            "Keras' dataset loaders (downloaded once, cached); `path` to a local archive works offline",
            ("path",),
            named=True,
            names=KERAS_DATASETS,
        ),
        SourceSpec(
            "sklearn",
            "dlkit.data.sklearn_source:load_sklearn",
            "scikit-learn's bundled datasets (offline)",
            (),
            named=True,
            names=SKLEARN_DATASETS,
        ),
        SourceSpec(
            "tfrecord",
            "dlkit.data.tfrecord_source:load_tfrecord",
            "TFRecord files of tf.train.Example, parsed with `feature_spec`; `label` names the label feature",
            ("path", "train", "validation", "test", "feature_spec", "label"),
        ),
        SourceSpec(
            "tfds",
            "dlkit.data.tfds_source:load_tfds",
            "TensorFlow Datasets by name (optional extra: pip install 'dlkit[tfds]')",
            ("path",),
            named=True,
        ),
        SourceSpec(
            "synthetic",
            "dlkit.data.synthetic:load_synthetic",
            "random data shaped from model.input_shape and the loss, for smoke tests and benchmarks",
            ("samples",),
        ),
    )
}


def resolve_source(source: str) -> tuple[SourceSpec, str | None]:
    """Split ``keras:mnist`` into its table row and dataset name.

    Raises:
        ConfigError: for an unknown source or dataset name (with a suggestion).
    """
    kind, _, name = source.partition(":")
    spec = SOURCES.get(kind.strip().lower())
    if spec is None:
        choices = [f"{s.name}:NAME" if s.named else s.name for s in SOURCES.values()]
        raise ConfigError(
            problems=[
                Problem(
                    path="data.source",
                    message=f"unknown data source '{source}'",
                    suggestion=did_you_mean(kind, list(SOURCES)),
                    hint="Sources: " + ", ".join(choices) + ".",
                )
            ]
        )
    name = name.strip()
    if spec.named and not name:
        raise ConfigError(
            problems=[
                Problem(
                    path="data.source",
                    message=f"'{spec.name}' needs a dataset name, e.g. {spec.name}:{(spec.names or ('mnist',))[0]}",
                    got=source,
                )
            ]
        )
    if not spec.named and name:
        raise ConfigError(
            problems=[Problem(path="data.source", message=f"'{spec.name}' takes no dataset name", got=source)]
        )
    if spec.names and name not in spec.names:
        raise ConfigError(
            problems=[
                Problem(
                    path="data.source",
                    message=f"unknown {spec.name} dataset '{name}'",
                    suggestion=(f"{spec.name}:{s}" if (s := did_you_mean(name, list(spec.names))) else None),
                    hint="Available: " + ", ".join(spec.names) + ".",
                )
            ]
        )
    return spec, (name or None)


REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    # source -> groups of keys; each group needs at least one of its keys set
    "csv": (("train", "path"), ("label",)),
    "npz": (("train", "path"),),
    "images": (("train", "path"),),
    "tfrecord": (("train", "path"), ("feature_spec",), ("label",)),
}


def validate_data(raw: dict[str, Any], where: Callable[[tuple], tuple[str | None, int | None]] | None = None):
    """Problems in a raw config's ``data:`` section found without reading any data (for ``config check``).

    Checks the source name (with a suggestion) and the keys the source cannot work without. Keys a source
    does not read are left alone, so ``--set data.source=synthetic`` smoke-tests any config.

    Returns:
        A list of ``Problem`` (empty when fine).
    """
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("source", "synthetic"), str):
        return []

    def locate(path: tuple) -> dict[str, Any]:
        file, line = where(path) if where else (None, None)
        return {"file": file, "line": line}

    try:
        spec, _ = resolve_source(data.get("source", "synthetic"))
    except ConfigError as error:
        return [
            Problem(
                **locate(("data", "source")),
                path=p.path,
                message=p.message,
                got=p.got,
                suggestion=p.suggestion,
                hint=p.hint,
            )
            for p in error.problems
        ]
    problems = []
    for group in REQUIRED.get(spec.name, ()):
        if not any(data.get(k) for k in group):
            problems.append(
                Problem(
                    **locate(("data",)),
                    path=f"data.{group[0]}",
                    message=f"source '{spec.name}' needs data.{' or data.'.join(group)}",
                )
            )
    return problems


def unused_keys(source: str, data: Any) -> list[str]:
    """Source-specific ``data`` keys set in the config that ``source`` does not read (e.g. ``label`` for npz)."""
    spec, _ = resolve_source(source)
    specific = {k for s in SOURCES.values() for k in s.keys}
    fields = type(data).model_fields
    # A run's saved config.yaml spells out every default; only a non-default value is the user's choice.
    return sorted(
        k
        for k in data.model_fields_set & specific
        if k not in spec.keys and getattr(data, k) != fields[k].get_default(call_default_factory=True)
    )


def list_datasets() -> list[dict[str, str]]:
    """Rows for ``dlkit list datasets``: source, names and help."""
    rows = []
    for spec in SOURCES.values():
        label = f"{spec.name}:NAME" if spec.named else spec.name
        rows.append({"source": label, "names": ", ".join(spec.names), "help": spec.help})
    return rows
