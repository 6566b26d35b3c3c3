"""``tfds:NAME``: TensorFlow Datasets (the optional ``tfds`` extra), streamed as (image/features, label)."""

from __future__ import annotations

from typing import Any

from dlkit.data.bundle import Loaded
from dlkit.errors import DataError, Problem


def load_tfds(cfg: Any, name: str) -> Loaded:
    """Stream ``train`` (and ``validation``/``test`` when the dataset has them) with ``as_supervised=True``.

    Holdouts use TFDS' own split slicing (``train[:90%]``); ``data.path`` is the TFDS data folder.

    Raises:
        DataError: when tensorflow-datasets is not installed, the name is unknown, or loading fails.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(
            problems=[
                Problem(
                    path="data.source",
                    message=f"tfds:{name} needs the optional package tensorflow-datasets",
                    hint="Install it with: pip install 'dlkit[tfds]'",
                )
            ]
        ) from None
    try:
        builder = tfds.builder(name, data_dir=cfg.data.path)
        builder.download_and_prepare()
    except Exception as exc:  # tfds raises many types (DatasetNotFoundError, network errors)
        raise DataError(
            problems=[Problem(path="data.source", message=f"tfds:{name}: {str(exc).splitlines()[0]}")]
        ) from None
    have = set(builder.info.splits.keys())
    val_pct = round(cfg.data.validation_split * 100)
    test_pct = round(cfg.data.test_split * 100)
    names = {"train": "train"}
    if "validation" in have:
        names["validation"] = "validation"
    if "test" in have:
        names["test"] = "test"
    cut_val = "validation" not in names and val_pct > 0
    cut_test = "test" not in names and test_pct > 0
    keep = 100 - (val_pct if cut_val else 0) - (test_pct if cut_test else 0)
    names["train"] = f"train[:{keep}%]"
    if cut_val:
        names["validation"] = f"train[{keep}%:{keep + val_pct}%]"
    if cut_test:
        names["test"] = f"train[{100 - test_pct}%:]"
    streams = {split: builder.as_dataset(split=s, as_supervised=True) for split, s in names.items()}
    counts = {split: int(builder.info.splits[s].num_examples) for split, s in names.items()}
    label = builder.info.features.get("label", None)
    classes = getattr(label, "num_classes", None)
    return Loaded(splits={}, stream=streams, stream_counts=counts, num_classes=classes, files=[])
