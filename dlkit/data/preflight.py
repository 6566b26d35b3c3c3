"""Checks that run before anything is trained or written; each failure is a DataError (exit 3) with a fix.

``check_rows`` needs only the data (empty splits, x/y lengths, NaN/Inf; ``nan_policy: drop``) and runs inside
``load_data``, before preprocessing adapts on the rows. ``preflight`` also needs the built model: feature
shape against the input, labels against the output width, and the loss against the labels.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dlkit.data.bundle import DataBundle, Split
from dlkit.data.task import label_kind, loss_name
from dlkit.errors import DataError, Problem

log = logging.getLogger("dlkit.data")
MAX_PROBLEMS = 5


def _column(split: Split, flat_index: int, width: int, names: list[str] | None) -> str:
    if names and width == len(names):
        return f"column '{names[flat_index]}'"
    return f"feature {flat_index}" if width > 1 else "the feature"


def _nonfinite_rows(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind != "f":
        return np.zeros(len(a), dtype=bool)
    flat = a.reshape(len(a), -1)
    return ~np.isfinite(flat).all(axis=1)


def check_rows(splits: dict[str, Split], cfg: Any, feature_names: list[str] | None = None) -> dict[str, Split]:
    """Empty splits, x/y lengths, and non-finite values (dropped under ``nan_policy: drop``).

    Returns:
        The splits, with non-finite rows removed when the policy is ``drop``.

    Raises:
        DataError: naming the file, the row (CSV: file line) and column of each problem.
    """
    out: dict[str, Split] = {}
    problems: list[Problem] = []
    for name, split in splits.items():
        if len(split.x) != len(split.y):
            problems.append(
                Problem(
                    file=split.file,
                    path=split.key,
                    message=f"{len(split.x)} feature rows but {len(split.y)} labels",
                    hint="Features and labels need one row per sample.",
                )
            )
            continue
        if len(split) == 0:
            problems.append(
                Problem(file=split.file, path=split.key, message=f"the {name} split is empty", hint="Add samples.")
            )
            continue
        bad_x, bad_y = _nonfinite_rows(split.x), _nonfinite_rows(split.y)
        bad = bad_x | bad_y
        if not bad.any():
            out[name] = split
            continue
        if cfg.data.nan_policy == "drop":
            kept = split.take(np.flatnonzero(~bad))
            log.warning("dropped %d of %d %s rows holding NaN/Inf (data.nan_policy: drop)", bad.sum(), len(bad), name)
            if len(kept) == 0:
                problems.append(Problem(file=split.file, path=split.key, message=f"every {name} row holds NaN/Inf"))
            out[name] = kept
            continue
        first = int(np.flatnonzero(bad)[0])
        for row in np.flatnonzero(bad)[:MAX_PROBLEMS]:
            if bad_x[row]:
                flat = split.x[row].reshape(-1)
                j = int(np.flatnonzero(~np.isfinite(flat))[0])
                what = _column(split, j, flat.size, feature_names)
                value = flat[j]
            else:
                what, value = "the label", split.y[row].reshape(-1)[~np.isfinite(split.y[row].reshape(-1))][0]
            prefix = "" if split.unit == "line" else f"{split.locate(row)}: "
            total = f" ({int(bad.sum())} {name} rows hold NaN/Inf)" if row == first and bad.sum() > 1 else ""
            problems.append(
                Problem(
                    **_at(split, int(row)),
                    message=f"{prefix}{what} is {value}{total}",
                    hint="Fix or remove the value, or set data.nan_policy: drop to skip such rows.",
                )
            )
    if problems:
        raise DataError(problems=problems)
    return out


def _shape_text(shape: Any) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _check_shape(cfg: Any, bundle: DataBundle, model: Any, split: Split, names: list[str] | None) -> list[Problem]:
    want = list(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if want is None:
        return []
    have = list(bundle.sample_shape or split.x.shape[1:])
    if len(have) == len(want) and all(w is None or w == h for w, h in zip(want, have, strict=True)):
        return []
    if names:
        what = f"{len(names)} feature columns ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        fix = f"Set model.input_shape: [{len(names)}], or list the columns to use in data.features."
    elif bundle.sample_shape:
        what = f"images that decode to {_shape_text(have)}"
        fix = "Set data.image_size and data.color_mode to match, or change model.input_shape."
    else:
        what = f"samples of shape {_shape_text(have)}"
        fix = f"Set model.input_shape: {_shape_text(have)}."
    return [
        Problem(
            file=split.file,
            path="model.input_shape",
            message=f"the data has {what} but model.input_shape is {_shape_text(want)}",
            hint=fix,
        )
    ]


def _is_one_hot(y: np.ndarray) -> bool:
    return y.ndim == 2 and y.shape[1] > 1 and bool(np.all((y == 0) | (y == 1))) and bool(np.all(y.sum(axis=1) == 1))


def _check_labels(cfg: Any, model: Any, split: Split, name: str) -> list[Problem]:
    out_shape = model.output_shape
    if isinstance(out_shape, list):  # several outputs: labels are checked by Keras
        return []
    width, rank = out_shape[-1], len(out_shape)
    kind, loss = label_kind(cfg), loss_name(cfg)
    y = split.y
    flat_y = y.reshape(len(y), -1)
    index_labels = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
    here = {"file": split.file, "path": split.key}
    shape = _shape_text(out_shape)

    if kind in ("sparse", "one_hot", "binary") and index_labels and rank > 2:
        return [
            Problem(
                **here,
                message=f"the model's output has shape {shape.replace('null', 'None')} but labels are "
                + ("class indices" if kind != "binary" else "one value per sample"),
                hint="Add a Flatten (or GlobalAveragePooling2D) layer before the last Dense.",
            )
        ]
    if kind == "sparse":
        if _is_one_hot(y):
            return [
                Problem(
                    **here,
                    message=f"labels are one-hot rows ({y.shape[1]} columns) but {loss} expects class indices",
                    suggestion="categorical_crossentropy",
                    hint="Set loss: categorical_crossentropy.",
                )
            ]
        if not index_labels:
            return [
                Problem(
                    **here,
                    message=f"{loss} expects one class index per sample",
                    got=f"labels of shape {list(y.shape[1:])}",
                )
            ]
        return _check_classes(flat_y[:, 0], split, width, name)
    if kind == "one_hot":
        if index_labels:
            values = flat_y[:, 0]
            if np.all(values == np.round(values)):
                return [
                    Problem(
                        **here,
                        message=f"labels are class indices but {loss} expects one-hot rows",
                        suggestion="sparse_categorical_crossentropy",
                        hint="Set loss: sparse_categorical_crossentropy.",
                    )
                ]
        if y.shape[-1] != width:
            return [
                Problem(
                    **here,
                    message=f"labels have {y.shape[-1]} columns but the model has {width} outputs",
                    hint=f"Set the last layer's units to {y.shape[-1]}.",
                )
            ]
        return []
    if kind == "binary":
        bad = np.flatnonzero((flat_y < 0).any(axis=1) | (flat_y > 1).any(axis=1))
        if bad.size:
            r = int(bad[0])
            return [
                Problem(
                    **_at(split, r),
                    message=f"{loss} expects labels in [0, 1]; {split.locate(r)} has {flat_y[r].tolist()}",
                    hint="Use sparse_categorical_crossentropy for more than two classes.",
                )
            ]
        if flat_y.shape[1] != width:
            return [
                Problem(
                    **here,
                    message=f"labels have {flat_y.shape[1]} value(s) per sample but the model has {width} outputs",
                    hint="For two classes end with Dense(units: 1, activation: sigmoid); "
                    "for more use sparse_categorical_crossentropy.",
                )
            ]
        return []
    # real-valued targets
    want = int(np.prod([d for d in out_shape[1:] if d is not None]))
    if rank > 2 and index_labels:
        return [
            Problem(
                **here,
                message=f"the model's output has shape {shape.replace('null', 'None')} but each label is one value",
                hint="Add a Flatten (or GlobalAveragePooling2D) layer before the last Dense.",
            )
        ]
    if flat_y.shape[1] != want:
        return [
            Problem(
                **here,
                message=f"labels have {flat_y.shape[1]} value(s) per sample but the model has {want} outputs",
                hint=f"Set the last layer's units to {flat_y.shape[1]}.",
            )
        ]
    return []


def _at(split: Split, row: int) -> dict[str, Any]:
    line = int(split.where[row]) if split.unit == "line" and split.where is not None else None
    return {"file": split.file, "line": line, "path": split.key}


def _check_classes(values: np.ndarray, split: Split, width: int, name: str) -> list[Problem]:
    not_int = np.flatnonzero(values != np.round(values))
    if not_int.size:
        r = int(not_int[0])
        return [
            Problem(
                **_at(split, r),
                message=f"class labels must be integers; {split.locate(r)} has {values[r]}",
                hint="For real-valued targets use a regression loss such as mean_squared_error.",
            )
        ]
    out = np.flatnonzero((values < 0) | (values >= width))
    if not out.size:
        return []
    r = int(out[0])
    top = int(values.max())
    return [
        Problem(
            **_at(split, r),
            message=f"label {int(values[r])} at {split.locate(r)} is out of range for the model's {width} outputs "
            f"(classes 0-{width - 1}; {out.size} {name} labels out of range)",
            hint=f"Set the last layer's units (or data.num_classes) to {top + 1}, or fix the labels."
            if values.min() >= 0
            else "Class labels must be 0 or more.",
        )
    ]


def preflight(cfg: Any, bundle: DataBundle, model: Any) -> None:
    """Check the loaded data against the built model and the loss, before anything is trained or written.

    Raises:
        DataError: feature/image shape vs ``model.input_shape``, labels out of range or not integers, a loss
            that does not fit the labels (with the loss to use instead), an output rank that cannot match the
            labels (naming the missing layer). Each names the file, key and fix.
    """
    problems: list[Problem] = []
    names = bundle.feature_names
    for split in bundle.splits.values():
        found = _check_shape(cfg, bundle, model, split, names)
        if found:  # the output shape follows from the wrong input shape: label checks would only mislead
            raise DataError(problems=found)
    width = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    declared = cfg.data.num_classes
    if declared and width and label_kind(cfg) in ("sparse", "one_hot") and declared != width:
        problems.append(
            Problem(
                path="data.num_classes",
                message=f"data.num_classes is {declared} but the model has {width} outputs",
                hint=f"Set the last layer's units to {declared}, or drop data.num_classes.",
            )
        )
    for name, split in bundle.splits.items():
        for problem in _check_labels(cfg, model, split, name):
            if problem not in problems:  # a held-out split of the same file says the same thing once
                problems.append(problem)
    if problems:
        raise DataError(problems=problems)
