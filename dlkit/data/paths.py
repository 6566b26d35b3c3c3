"""Which files a config names for each split, and the existence check every file source shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlkit.errors import DataError, Problem


def given_files(cfg: Any, *, need_train: bool = True) -> dict[str, tuple[str, str]]:
    """``{split: (path, config key)}`` for the splits the config gives files for.

    ``data.train`` names the training file; ``data.path`` is the same when only one file holds everything.

    Raises:
        DataError: when neither ``data.train`` nor ``data.path`` is set and ``need_train``.
    """
    data = cfg.data
    out: dict[str, tuple[str, str]] = {}
    if data.train:
        out["train"] = (data.train, "data.train")
    elif data.path:
        out["train"] = (data.path, "data.path")
    elif need_train:
        raise DataError(
            problems=[
                Problem(
                    path="data.train",
                    message=f"source '{data.source}' needs a training file",
                    hint="Set data.train (or data.path) to the file or folder.",
                )
            ]
        )
    for split in ("validation", "test"):
        value = getattr(data, split)
        if value:
            out[split] = (value, f"data.{split}")
    return out


def require(path: str, key: str, *, folder: bool = False) -> Path:
    """``path`` as a Path, or a DataError naming the key when it does not exist (or is the wrong kind)."""
    p = Path(path)
    if not p.exists():
        near = ""
        if p.parent.is_dir():
            names = sorted(x.name for x in p.parent.iterdir())[:50]
            import difflib

            # a shared extension alone ('missing.csv' ~ 'inf.csv') is no reason to suggest a file: stems must be close
            stem = Path(p.name).stem
            close = difflib.get_close_matches(p.name, names, n=5, cutoff=0.6)
            near = next((c for c in close if difflib.SequenceMatcher(None, stem, Path(c).stem).ratio() >= 0.6), "")
        raise DataError(
            problems=[
                Problem(
                    file=str(p),
                    path=key,
                    message="file not found" if not folder else "folder not found",
                    suggestion=near or None,
                    hint="Relative paths resolve against the folder of the config file that names them.",
                )
            ]
        )
    if folder and not p.is_dir():
        raise DataError(problems=[Problem(file=str(p), path=key, message="expected a folder of class subfolders")])
    if not folder and p.is_dir():
        raise DataError(problems=[Problem(file=str(p), path=key, message="expected a file, got a folder")])
    return p
