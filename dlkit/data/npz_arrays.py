"""Named arrays of a NumPy ``.npz`` archive, read safely, with the errors every npz reader shares.

The training source (``npz_source``), ``dlkit evaluate --data FILE.npz`` and ``dlkit predict`` all read
through :func:`read_npz`; each keeps its own rules (which names, which option the error points at, length and
dtype checks) around it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dlkit.config.suggest import did_you_mean
from dlkit.errors import DataError, Problem

# What np.load and the lazy member reads raise for a file that is not a readable archive: not a zip at all
# (ValueError: numpy takes it for a pickle), a truncated zip, an empty file, a corrupt compressed member,
# an object array refused because pickles are off, or a path that is a folder.
UNREADABLE = (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error)


def read_npz(
    path: str | Path,
    names: Sequence[str],
    *,
    where: str = "",
    name_paths: Mapping[str, str] | None = None,
    hint: str | None = None,
    single: bool = False,
) -> list[np.ndarray]:
    """The arrays ``names`` of the ``.npz`` file ``path``, in that order, loaded without pickles.

    Args:
        path: The archive; also the ``file`` of every Problem raised.
        names: The arrays to read.
        where: The option or config key the errors point at (``Problem.path``). Defaults to "".
        name_paths: ``Problem.path`` for a missing array, per name (e.g. ``{"x": "data.x_key"}``); names not
            in it use ``where``. Defaults to None.
        hint: What to do about a missing array, appended to the list of arrays the file holds. Defaults to None.
        single: When one name is asked for and the archive holds exactly one array under another name, read
            that array instead. Defaults to False.

    Raises:
        DataError: the file cannot be read as an ``.npz`` archive (object arrays included), or an array is
            missing (with the nearest name held as a suggestion and the names held in the hint), or an array is
            a single number instead of one row per sample.
    """
    file = str(path)
    try:
        with _open(path) as archive:
            held = list(archive.files)
            wanted = list(names)
            if single and len(wanted) == 1 and wanted[0] not in held and len(held) == 1:
                wanted = held
            missing = [name for name in wanted if name not in held]
            if missing:
                listed = ", ".join(held) or "none"
                raise DataError(
                    problems=[
                        Problem(
                            file=file,
                            path=(name_paths or {}).get(missing[0], where),
                            message=f"no array '{missing[0]}' in the archive",
                            suggestion=did_you_mean(missing[0], held),
                            hint=f"Arrays: {listed}; {hint}" if hint else f"Arrays: {listed}.",
                        )
                    ]
                )
            arrays = [np.asarray(archive[name]) for name in wanted]
    except UNREADABLE as error:
        keywords = ", ".join(f"{name}=..." for name in names)
        raise DataError(
            problems=[
                Problem(
                    file=file,
                    path=where,
                    message=f"cannot read as .npz ({error})",
                    hint=f"Write it with numpy.savez(path, {keywords}); object arrays are refused.",
                )
            ]
        ) from error
    scalar = [name for name, array in zip(wanted, arrays, strict=True) if array.ndim == 0]
    if scalar:
        raise DataError(
            problems=[
                Problem(
                    file=file,
                    path=where,
                    message=f"'{scalar[0]}' is a single number, not one row per sample",
                    hint="Save arrays whose first dimension is the sample: numpy.savez(path, x=x, y=y).",
                )
            ]
        )
    return arrays


def _open(path: str | Path) -> np.lib.npyio.NpzFile:
    """``np.load`` without pickles, refusing a plain ``.npy`` array saved under an ``.npz`` name.

    Anything that is neither a zip nor an ``.npy`` file is refused before ``np.load`` sees it: NumPy would take
    it for a pickle and say the file "contains pickled (object) data", which misleads for a CSV or text file.
    """
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head and not head.startswith(b"PK") and head != b"\x93NUMPY":
        raise ValueError("it is not a zip archive of arrays (numpy.savez writes one)")
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("it holds a single .npy array, not an archive of named arrays")
    return loaded
