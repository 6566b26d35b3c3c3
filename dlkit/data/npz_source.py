"""NumPy ``.npz`` files holding a features array and a labels array (names from ``x_key``/``y_key``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.data.npz_arrays import read_npz
from dlkit.data.paths import given_files, require
from dlkit.errors import DataError, Problem


def _read(cfg: Any, path: str, key: str) -> Split:
    require(path, key)
    x_key, y_key = cfg.data.x_key, cfg.data.y_key
    x, y = read_npz(
        path,
        (x_key, y_key),
        where=key,
        name_paths={y_key: "data.y_key", x_key: "data.x_key"},  # x_key last: it wins when both are one name
        hint="set data.x_key / data.y_key.",
    )
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise DataError(
            problems=[Problem(file=path, path=key, message=f"arrays must be numeric (got x {x.dtype}, y {y.dtype})")]
        )
    if len(x) != len(y):
        raise DataError(
            problems=[
                Problem(
                    file=path,
                    path=key,
                    message=f"'{cfg.data.x_key}' has {len(x)} samples but '{cfg.data.y_key}' has {len(y)}",
                    hint="x and y must have one row per sample, in the same order.",
                )
            ]
        )
    x = x if x.dtype == np.uint8 else x.astype(np.float32, copy=False)  # uint8 stays compact; tf.data casts it
    return Split(x, y, file=path, key=key)


def load_npz(cfg: Any, name: str | None = None) -> Loaded:
    """Read the ``.npz`` files the config names.

    Raises:
        DataError: missing/unreadable file, missing array, non-numeric arrays, x/y lengths that disagree.
    """
    files = given_files(cfg)
    splits = {split: _read(cfg, path, key) for split, (path, key) in files.items()}
    return Loaded(splits=splits, files=[path for path, _ in files.values()])
