"""The in-memory shapes data takes on its way from a source to tf.data: ``Split``, ``Loaded`` and ``DataBundle``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "validation", "test")


@dataclass
class Split:
    """One split as rows: features ``x`` and labels ``y`` (NumPy), plus where each row came from.

    For image folders ``x`` holds file paths and ``Loaded.decode`` turns one path into pixels inside tf.data,
    so a split stays cheap until the pipeline decodes it in parallel.

    Attributes:
        x: Features, one row per sample (or file paths when the source decodes lazily).
        y: Labels, one per sample.
        file: The file or folder the rows came from, for messages. Defaults to None.
        key: The config key that named it, e.g. ``data.train``. Defaults to "data.source".
        where: Per-row origin used in messages (CSV file line, TFRecord record index). Defaults to the row index.
        unit: What ``where`` counts, e.g. "line" or "record". Defaults to "row".
    """

    x: np.ndarray
    y: np.ndarray
    file: str | None = None
    key: str = "data.source"
    where: np.ndarray | None = None
    unit: str = "row"

    def __post_init__(self) -> None:
        if self.where is None:
            self.where = np.arange(len(self.x))

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> Split:
        """The rows at ``index`` (a holdout or a drop), keeping their origins."""
        assert self.where is not None
        return Split(self.x[index], self.y[index], self.file, self.key, self.where[index], self.unit)

    def locate(self, row: int) -> str:
        """Human location of a row, e.g. ``line 57`` or ``row 3``."""
        assert self.where is not None
        return f"{self.unit} {int(self.where[row])}"


@dataclass
class Loaded:
    """What a source hands back before splitting, preprocessing and batching.

    Attributes:
        splits: ``train`` and whichever of ``validation``/``test`` the source had as given.
        files: Data files read (for the fingerprint). Defaults to none.
        class_names: Class names when the source knows them (image folders, string labels). Defaults to None.
        num_classes: Number of classes when the source knows it. Defaults to None.
        decode: Turns one element of ``x`` into features inside tf.data (image folders). Defaults to None.
        sample_shape: Shape of one decoded sample when ``decode`` is set. Defaults to None.
        encoders: Vocabulary of each string feature column, in code order (code 0 = unseen). Defaults to none.
        feature_names: Names of the feature columns (CSV). Defaults to None.
        stream: Ready-made unbatched (x, y) datasets per split (tfds), used instead of ``splits``. Defaults to none.
    """

    splits: dict[str, Split]
    files: list[str] = field(default_factory=list)
    class_names: list[str] | None = None
    num_classes: int | None = None
    decode: Callable[[Any], Any] | None = None
    sample_shape: tuple[int, ...] | None = None
    encoders: dict[str, list[str]] = field(default_factory=dict)
    feature_names: list[str] | None = None
    stream: dict[str, Any] = field(default_factory=dict)
    stream_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class DataBundle:
    """The data of one config, ready for ``fit``: batched splits, adapted preprocessing layers and facts.

    Attributes:
        train: Batched (x, y); a fresh seeded order every epoch; augmentation; prefetch. None when not loaded.
        validation: Batched (x, y), not shuffled. None when there is no validation data.
        test: Batched (x, y), not shuffled. None when there is no test data.
        preprocessing: Keras layers built from ``data.preprocessing``, adapted on train; the model builder
            puts them right after the Input so the saved model takes raw input.
        augmentation: Keras layers from ``data.augmentation``, applied in the training pipeline only.
        arrays: Raw in-memory splits ``{split: (x, y)}`` when the source is in memory.
        counts: Samples per split.
        num_classes: Classes for classification tasks, else None.
        task: "classification", "binary" or "regression".
        fingerprint: ``{"source": ..., "files": {path: sha256}}`` or ``{"source": ..., "arrays": {split: sha256}}``.
        encoders: CSV string feature columns and their vocabularies (code i+1 = ``vocab[i]``, 0 = unseen).
        class_names: Class names when known (image folders, string labels).
        splits: The rows behind each split, with their origins (used by preflight messages).
        sample_shape: Shape of one decoded sample for sources decoded in the pipeline (image folders).
        feature_names: CSV feature column names, in input order.
    """

    train: Any
    validation: Any
    test: Any
    preprocessing: list[Any]
    augmentation: list[Any]
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    counts: dict[str, int]
    num_classes: int | None
    task: str
    fingerprint: dict[str, Any]
    encoders: dict[str, list[str]] = field(default_factory=dict)
    class_names: list[str] | None = None
    splits: dict[str, Split] = field(default_factory=dict)
    sample_shape: tuple[int, ...] | None = None
    feature_names: list[str] | None = None
    _unbatched: dict[str, Any] = field(default_factory=dict, repr=False)

    def unbatched(self, split: str) -> Any:
        """Raw ``(x, y)`` samples of ``split`` (no shuffle, no augmentation), for calibration and verification.

        Raises:
            DataError: when the split was not loaded or is empty.
        """
        from dlkit.errors import DataError, Problem

        if split not in self._unbatched:
            have = ", ".join(sorted(self._unbatched)) or "none"
            raise DataError(
                problems=[
                    Problem(
                        path=f"data.{split}",
                        message=f"there is no {split} split (loaded: {have})",
                        hint=f"Give data.{split} or a data.{split}_split fraction." if split != "train" else None,
                    )
                ]
            )
        made = self._unbatched[split]
        if callable(made):  # a factory (see load_data): build once, on first use
            made = self._unbatched[split] = made()
        return made
