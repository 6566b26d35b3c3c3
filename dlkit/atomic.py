"""Atomic file and folder writes: temp path in the same folder, fsync, ``os.replace``.

Keras' ``model.save``/``save_weights`` and most writers overwrite their target in place; a process
killed mid-write then leaves an unloadable file (FIELD_NOTES, "Checkpoints and resume"). Every
artifact dlkit writes goes through these helpers so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(path: Path) -> None:
    paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for p in paths:
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    Works for files and folders (a SavedModel). The temporary name keeps ``target``'s suffix
    (Keras checks ``.keras``/``.weights.h5``/``.tflite`` endings). On error the temp path is removed
    and ``target`` is left untouched.

    Args:
        target: Final path.
        suffix: Suffix for the temp name. Defaults to ``target``'s own suffixes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(target.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (file or folder)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer did not create {tmp}")
        _fsync_tree(tmp)
        if tmp.is_dir() and target.exists():
            # os.replace cannot swap a folder over a non-empty one: move the old aside first.
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def save_with(target: str | os.PathLike[str], writer: Callable[[str], Any]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically.

    Example: ``save_with(run / "model.keras", model.save)``.
    """
    with atomic_path(target) as tmp:
        writer(str(tmp))
