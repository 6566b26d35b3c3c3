"""CSV files: a header row, a label column, numeric features as float32 and string features as integer codes.

Column types come from the training file: a column is numeric when every value parses as a number (an empty
cell is a missing value, NaN). A column that is numeric except for a few cells is reported cell by cell (file,
line, column) instead of silently becoming a string column.

String feature columns are encoded with a ``keras.layers.StringLookup`` whose vocabulary is the sorted set of
training values (code 0 = a value not seen in training, then 1, 2, ...). A model has one float32 input tensor,
so a row that mixes strings and numbers cannot go in raw; the codes go in instead, and the vocabularies are
returned in ``DataBundle.encoders`` (and written to the run) so the same encoding can be applied at predict
time. String label columns become class indices in sorted order (``DataBundle.class_names``).

With ``model.input_dtype: string`` every feature column is kept as raw text (no typing, no codes), for
text models whose ``data.preprocessing`` starts with a TextVectorization or StringLookup layer: then the
saved model takes the raw CSV cells.
"""

from __future__ import annotations

import csv
import math
from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.data.paths import given_files, require
from dlkit.data.task import task_of
from dlkit.errors import DataError, Problem

MAX_PROBLEMS = 10


def _number(text: str) -> float | None:
    text = text.strip()
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _fast_numbers(cells: list[str]) -> np.ndarray | None:
    """All cells as float64 in one NumPy call (empty = NaN), or None when any is not a number."""
    try:
        return np.asarray([c.strip() or "nan" for c in cells], dtype=np.float64)
    except ValueError:
        return None


def _read(path: str, key: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and the file line of each row; DataError on ragged rows or an empty file."""
    p = require(path, key)
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(problems=[Problem(file=path, line=1, path=key, message="the CSV file is empty")])
            header = [h.strip() for h in header]
            start = reader.line_num
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    start = reader.line_num
                    continue
                if len(row) != len(header):
                    problems.append(
                        Problem(
                            file=path,
                            line=start + 1,
                            path=key,
                            message=f"expected {len(header)} columns like the header, found {len(row)}",
                        )
                    )
                    if len(problems) >= MAX_PROBLEMS:
                        break
                else:
                    rows.append(row)
                    lines.append(start + 1)
                start = reader.line_num
    except UnicodeDecodeError as exc:
        raise DataError(
            problems=[Problem(file=path, path=key, message=f"not a UTF-8 text file ({exc.reason} at byte {exc.start})")]
        ) from None
    except csv.Error as exc:
        raise DataError(
            problems=[Problem(file=path, line=reader.line_num, path=key, message=f"bad CSV: {exc}")]
        ) from None
    if problems:
        raise DataError(problems=problems)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(
            problems=[Problem(file=path, line=1, path=key, message=f"duplicate column names: {', '.join(dupes)}")]
        )
    return header, rows, lines


def _pick_columns(cfg: Any, header: list[str], path: str) -> tuple[str, list[str]]:
    from dlkit.config.suggest import did_you_mean

    label = cfg.data.label
    if not label:
        raise DataError(
            problems=[
                Problem(
                    file=path,
                    path="data.label",
                    message="a csv source needs data.label, the name of the label column",
                    hint=f"Columns: {', '.join(header)}.",
                )
            ]
        )
    wanted = [label, *(cfg.data.features or [])]
    problems = [
        Problem(
            file=path,
            line=1,
            path="data.label" if name == label else "data.features",
            message=f"no column '{name}' in the header",
            suggestion=did_you_mean(name, header),
            hint=_columns_hint(header),
        )
        for name in wanted
        if name not in header
    ]
    if problems:
        raise DataError(problems=problems)
    features = list(cfg.data.features) if cfg.data.features else [h for h in header if h != label]
    if label in features:
        raise DataError(
            problems=[Problem(path="data.features", message=f"the label column '{label}' is also a feature")]
        )
    if not features:
        raise DataError(problems=[Problem(file=path, path="data.features", message="no feature columns left")])
    return label, features


def _column_types(header: list[str], rows: list[list[str]], lines: list[int], columns: list[str], path: str, key: str):
    """``{column: "number" | "string"}``; a mostly numeric column with stray text is an error per cell."""
    kinds: dict[str, str] = {}
    problems: list[Problem] = []
    for name in columns:
        j = header.index(name)
        if _fast_numbers([row[j] for row in rows]) is not None:
            kinds[name] = "number"
            continue
        bad = [i for i, row in enumerate(rows) if _number(row[j]) is None]
        if not bad:
            kinds[name] = "number"
        elif len(bad) <= max(1, len(rows) // 20) and len(rows) > len(bad):
            for i in bad[:MAX_PROBLEMS]:
                problems.append(
                    Problem(
                        file=path,
                        line=lines[i],
                        path=key,
                        message=f"column {j + 1} '{name}': '{rows[i][j]}' is not a number (the rest of the column is)",
                        hint="Fix the cell, or leave it empty to mark a missing value.",
                    )
                )
        else:
            kinds[name] = "string"
    if problems:
        raise DataError(problems=problems)
    return kinds


def _encode_labels(cfg: Any, values: list[str], split: Split, classes: list[str] | None, path: str, key: str, lines):
    task = task_of(cfg)
    numbers = [_number(v) for v in values]
    if classes is None and task != "regression" and any(n is None for n in numbers):
        empty = [i for i, v in enumerate(values) if not v]
        if empty:
            raise DataError(
                problems=[
                    Problem(
                        file=path, line=lines[i], path=key, message=f"column '{cfg.data.label}': the label is empty"
                    )
                    for i in empty[:MAX_PROBLEMS]
                ]
            )
        classes = sorted(set(values))
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        unseen = [i for i, v in enumerate(values) if v not in index]
        if unseen:
            raise DataError(
                problems=[
                    Problem(
                        file=path,
                        line=lines[i],
                        path=key,
                        message=f"label '{values[i]}' does not occur in the training file",
                        hint=f"Known classes: {', '.join(classes[:20])}.",
                    )
                    for i in unseen[:MAX_PROBLEMS]
                ]
            )
        return np.asarray([index[v] for v in values], dtype=np.int64), classes
    bad = [i for i, n in enumerate(numbers) if n is None]
    if bad:
        raise DataError(
            problems=[
                Problem(file=path, line=lines[i], path=key, message=f"label '{values[i]}' is not a number")
                for i in bad[:MAX_PROBLEMS]
            ]
        )
    y = np.asarray(numbers, dtype=np.float64)
    if task != "regression" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64), None
    return y.astype(np.float32), None


def _columns_hint(header: list[str]) -> str:
    """The header's columns; for a one-column header holding ';' or tabs, the likely cause: another separator."""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        sep = "';'" if ";" in header[0] else "tabs"
        return f"The header is one column: the file seems to separate values with {sep}; dlkit reads commas."
    return f"Columns: {', '.join(header)}."


def encode_column(cells: list[str], vocabulary: list[str]) -> np.ndarray:
    """String cells -> float32 codes with Keras' StringLookup: ``vocabulary[i]`` -> i + 1, unseen -> 0.

    ``vocabulary`` is ``DataBundle.encoders[column]`` (also in run.json's data fingerprint), so predict-time
    rows are encoded exactly as training rows were.
    """
    import keras

    if not cells:
        return np.zeros((0,), dtype=np.float32)
    lookup = keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1, output_mode="int")
    return np.asarray(lookup(np.asarray([c.strip() for c in cells], dtype=object)), dtype=np.float32)


def load_csv(cfg: Any, name: str | None = None) -> Loaded:
    """Read the CSV files the config names (``data.train``/``path``, ``validation``, ``test``).

    Raises:
        DataError: missing file, ragged row, unknown column, non-numeric cell in a numeric column (file:line).
    """
    files = given_files(cfg)
    train_path, train_key = files["train"]
    header, rows, lines = _read(train_path, train_key)
    if not rows:
        raise DataError(
            problems=[Problem(file=train_path, path=train_key, message="the CSV file has a header but no rows")]
        )
    label, features = _pick_columns(cfg, header, train_path)
    text = cfg.model.input_dtype == "string"
    kinds = (
        {c: "text" for c in features} if text else _column_types(header, rows, lines, features, train_path, train_key)
    )
    encoders: dict[str, list[str]] = {}
    for col in features:
        if kinds[col] == "string":
            j = header.index(col)
            encoders[col] = sorted({row[j].strip() for row in rows})

    splits: dict[str, Split] = {}
    classes: list[str] | None = None
    used = [train_path]
    for split, (path, key) in files.items():
        if split == "train":
            h, r, ln = header, rows, lines
        else:
            h, r, ln = _read(path, key)
            used.append(path)
            missing = [c for c in [label, *features] if c not in h]
            if missing:
                raise DataError(
                    problems=[
                        Problem(file=path, line=1, path=key, message=f"no column '{c}' (the training file has it)")
                        for c in missing
                    ]
                )
        x = np.zeros((len(r), len(features)), dtype=np.float32)
        if text:
            x = np.asarray([[row[h.index(c)] for c in features] for row in r], dtype=str).reshape(len(r), len(features))
        problems: list[Problem] = []
        for k, col in enumerate(features):
            j = h.index(col)
            cells = [row[j].strip() for row in r]
            if text:
                continue
            if col in encoders:
                x[:, k] = encode_column(cells, encoders[col])
                continue
            fast = _fast_numbers(cells)
            if fast is not None:
                x[:, k] = fast
                continue
            for i, cell in enumerate(cells):
                value = _number(cell)
                if value is None:
                    if len(problems) < MAX_PROBLEMS:
                        problems.append(
                            Problem(
                                file=path,
                                line=ln[i],
                                path=key,
                                message=f"column {j + 1} '{col}': '{cell}' is not a number",
                            )
                        )
                    continue
                x[i, k] = value
        if problems:
            raise DataError(problems=problems)
        j = h.index(label)
        y, classes = _encode_labels(cfg, [row[j].strip() for row in r], None, classes, path, key, ln)
        splits[split] = Split(x, y, file=path, key=key, where=np.asarray(ln, dtype=np.int64), unit="line")
    return Loaded(
        splits=splits,
        files=used,
        class_names=classes,
        num_classes=len(classes) if classes else None,
        encoders=encoders,
        feature_names=features,
    )
