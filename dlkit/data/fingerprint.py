"""The data fingerprint recorded in run.json: sha256 of each data file, or of the arrays for in-memory sources."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.data.bundle import Split

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(path: Path) -> str:
    """sha256 over every file's relative path and content hash, in sorted order."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return digest.hexdigest()


def arrays_sha256(split: Split) -> str:
    """sha256 of one split's x and y (dtype, shape and bytes)."""
    digest = hashlib.sha256()
    for a in (split.x, split.y):
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        if a.dtype.kind in "UO":
            digest.update("\n".join(map(str, a.tolist())).encode())
        else:  # hash the buffer in place: tobytes() would copy the whole split
            digest.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return digest.hexdigest()


def fingerprint(cfg: Any, files: list[str], splits: dict[str, Split], loaded: Any = None) -> dict[str, Any]:
    """``{"source", "seed", "validation_split", "test_split", "files" | "arrays"}`` for run.json.

    Also records what is needed to feed raw rows later: ``class_names``, ``features`` (CSV column order) and
    ``encoders`` (vocabulary of each string feature column), when the source has them.
    """
    out: dict[str, Any] = {
        "source": cfg.data.source,
        "seed": cfg.seed,
        "validation_split": cfg.data.validation_split,
        "test_split": cfg.data.test_split,
    }
    if files:
        out["files"] = {f: (folder_sha256(Path(f)) if Path(f).is_dir() else file_sha256(Path(f))) for f in files}
    else:
        out["arrays"] = {name: arrays_sha256(split) for name, split in splits.items()}
    for key, value in (
        ("class_names", getattr(loaded, "class_names", None)),
        ("features", getattr(loaded, "feature_names", None)),
        ("encoders", getattr(loaded, "encoders", None)),
    ):
        if value:
            out[key] = value
    return out
