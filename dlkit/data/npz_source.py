"""NumPy ``.npz`` files holding a features array and a labels array (names from ``x_key``/``y_key``)."""

from __future__ import annotations

import zipfile
from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.data.paths import given_files, require
from dlkit.errors import DataError, Problem


def _read(cfg: Any, path: str, key: str) -> Split:
    p = require(path, key)
    try:
        with np.load(p, allow_pickle=False) as archive:
            names = list(archive.files)
            missing = [k for k, cfg_key in ((cfg.data.x_key, "x_key"), (cfg.data.y_key, "y_key")) if k not in names]
            if missing:
                from dlkit.data.sources import _suggest

                which = "data.x_key" if cfg.data.x_key in missing else "data.y_key"
                raise DataError(
                    problems=[
                        Problem(
                            file=path,
                            path=which,
                            message=f"no array '{missing[0]}' in the archive",
                            suggestion=_suggest(missing[0], names),
                            hint=f"Arrays: {', '.join(names) or 'none'}; set data.x_key / data.y_key.",
                        )
                    ]
                )
            x, y = archive[cfg.data.x_key], archive[cfg.data.y_key]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(
            problems=[
                Problem(
                    file=path,
                    path=key,
                    message=f"cannot read as .npz ({exc})",
                    hint="Write it with numpy.savez(path, x=..., y=...); object arrays are refused.",
                )
            ]
        ) from None
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
    x = x if x.dtype == np.uint8 else x.astype(np.float32)  # uint8 images stay compact; tf.data casts them
    return Split(x, y, file=path, key=key)


def load_npz(cfg: Any, name: str | None = None) -> Loaded:
    """Read the ``.npz`` files the config names.

    Raises:
        DataError: missing/unreadable file, missing array, non-numeric arrays, x/y lengths that disagree.
    """
    files = given_files(cfg)
    splits = {split: _read(cfg, path, key) for split, (path, key) in files.items()}
    return Loaded(splits=splits, files=[path for path, _ in files.values()])
