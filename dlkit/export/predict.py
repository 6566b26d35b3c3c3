"""``dlkit predict``: predictions of a run or artifact for image files, CSV files or npz arrays.

Inputs are read raw, the way training read them (CSV feature columns from the run's config, the label
column ignored when present; images resized to the model's input), and fed through the model's own
preprocessing. Results: one row per input with its id, predicted class, probability and top-k (classifiers)
or the predicted value(s) (regression).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.atomic import write_text
from dlkit.errors import DataError, Problem, UsageError, tf_message
from dlkit.export.runtime import load_runtime
from dlkit.export.scoring import from_logits, probabilities
from dlkit.export.target import Target, config_of, resolve_target

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
OUTPUT_SUFFIXES = (".csv", ".json")


LABEL_NAMES = ("label", "labels", "target", "y", "class")


def _read_csv(
    path: Path, cfg: Any, size: int | None, encoders: dict[str, list[str]] | None = None
) -> tuple[list[str], np.ndarray]:
    """Ids and float32 features of a CSV file; string columns coded with the run's training vocabularies."""
    encoders = encoders or {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    if not rows:
        raise DataError(problems=[Problem(file=str(path), message="the CSV file has no data rows")])
    label = cfg.data.label if cfg is not None else None
    features = list(cfg.data.features) if cfg is not None and cfg.data.features else [c for c in header if c != label]
    if size is not None and len(features) == size + 1 and (cfg is None or not cfg.data.features):
        # no label column in the config (e.g. sklearn data): drop a conventionally named one
        features = [c for c in features if c.lower() not in LABEL_NAMES] if len(features) > size else features
    missing = [c for c in features if c not in header]
    if missing:
        raise DataError(
            problems=[
                Problem(
                    file=str(path),
                    message=f"missing feature column(s) {', '.join(missing)} that the model was trained on",
                    hint=f"The file's columns are: {', '.join(header)}.",
                )
            ]
        )
    ids = [f"{path.name}:{i + 2}" for i in range(len(rows))]
    if cfg is not None and cfg.model.input_dtype == "string":  # a text model takes the raw cells
        return ids, np.array([[row[column] or "" for column in features] for row in rows], dtype=object)
    values = np.zeros((len(rows), len(features)), np.float32)
    for j, column in enumerate(features):
        if column in encoders:  # a string column: the same StringLookup codes training used (unseen -> 0)
            from dlkit.data.csv_source import encode_column

            values[:, j] = encode_column([row[column] or "" for row in rows], encoders[column])
    for i, row in enumerate(rows):
        for j, column in enumerate(features):
            if column in encoders:
                continue
            try:
                values[i, j] = float(row[column])
            except (TypeError, ValueError) as error:
                raise DataError(
                    problems=[
                        Problem(
                            file=str(path),
                            line=i + 2,
                            path=column,
                            message="not a number",
                            got=repr(row[column]),
                        )
                    ]
                ) from error
    return ids, values


def _read_npz(path: Path, cfg: Any) -> tuple[list[str], np.ndarray]:
    """Ids and inputs of an npz file: the run's ``data.x_key`` array (``x`` outside a run), or its only array."""
    from dlkit.data.npz_arrays import read_npz

    key = cfg.data.x_key if cfg is not None else "x"
    (x,) = read_npz(path, (key,), single=True, hint=f"save the inputs as '{key}' or as the file's only array.")
    if x.dtype.kind not in "biuf":
        raise DataError(problems=[Problem(file=str(path), message=f"inputs must be numeric (got {x.dtype})")])
    return [f"{path.name}[{i}]" for i in range(len(x))], x


def _read_image(path: Path, shape: tuple[int | None, ...], cfg: Any) -> np.ndarray:
    """One image as float32 pixels, decoded and resized exactly like the training pipeline did."""
    if len(shape) != 3:
        raise DataError(
            problems=[Problem(file=str(path), message=f"the model does not take images (its input is {shape})")]
        )
    height, width, channels = shape
    if cfg is not None and cfg.data.source == "images":  # data.image_size / color_mode apply to image folders
        from dlkit.data.images import image_shape

        height, width, channels = image_shape(cfg)
    if not (height and width and channels):
        raise DataError(problems=[Problem(file=str(path), message=f"cannot tell the image size from {shape}")])
    from dlkit.data.images import make_decoder

    try:
        return np.asarray(make_decoder(height, width, channels)(str(path)), np.float32)
    except Exception as error:  # noqa: BLE001 - TF raises InvalidArgumentError and friends for a bad image
        problem = Problem(file=str(path), message=f"cannot read image: {tf_message(error)}")
        raise DataError(problems=[problem]) from error


def read_inputs(
    paths: list[Path], shape: tuple[int | None, ...], cfg: Any, encoders: dict[str, list[str]] | None = None
) -> tuple[list[str], np.ndarray]:
    """Ids and one stacked input array for image files, CSV files and npz files (in the order given).

    ``encoders`` are the vocabularies of the run's string CSV columns (run.json ``data.encoders``).

    Raises:
        DataError: a missing/unreadable file, or inputs that do not fit the model's input shape.
    """
    ids: list[str] = []
    parts: list[np.ndarray] = []
    for path in paths:
        if not path.is_file():
            raise DataError(problems=[Problem(file=str(path), message="no such input file")])
        suffix = path.suffix.lower()
        if suffix == ".csv":
            size = int(np.prod(shape)) if shape and None not in shape else None
            new_ids, x = _read_csv(path, cfg, size, encoders)
        elif suffix == ".npz":
            new_ids, x = _read_npz(path, cfg)
        elif suffix in IMAGE_SUFFIXES:
            new_ids, x = [path.name], _read_image(path, shape, cfg)[None]
        else:
            raise DataError(
                problems=[
                    Problem(
                        file=str(path),
                        message="unknown input type",
                        hint=f"Give image files ({', '.join(sorted(IMAGE_SUFFIXES))}), .csv or .npz.",
                    )
                ]
            )
        x = _fit(x, shape, path)
        ids += new_ids
        parts.append(x)
    return ids, np.concatenate(parts, axis=0)


def _fit(x: np.ndarray, shape: tuple[int | None, ...], path: Path) -> np.ndarray:
    """Reshape rows to the model's input shape when only the layout differs (e.g. 64 CSV columns -> 8x8x1)."""
    x = x if x.dtype == object else np.asarray(x, np.float32)  # object: raw strings for a text model
    want = tuple(shape)
    if x.shape[1:] == want or None in want:
        if None in want and len(x.shape[1:]) != len(want):
            raise DataError(
                problems=[Problem(file=str(path), message=f"inputs shaped {x.shape[1:]} do not fit the model's {want}")]
            )
        return x
    if int(np.prod(x.shape[1:])) == int(np.prod(want)):
        return x.reshape((len(x), *want))
    raise DataError(
        problems=[
            Problem(
                file=str(path),
                message=f"each input has shape {x.shape[1:]} but the model takes {want}",
                hint="Give the same columns/shape the model was trained on.",
            )
        ]
    )


def _class_names(target: Target, cfg: Any) -> list[str] | None:
    """Class names from run.json when the trainer recorded them, else an image folder's class subfolders."""
    if target.run_dir is None:
        return None
    from dlkit.training.run_dir import read_run_json

    info = read_run_json(target.run_dir)
    names = info.get("class_names") or (info.get("data") or {}).get("class_names")
    if names:
        return [str(n) for n in names]
    folder = (cfg.data.train or cfg.data.path) if cfg is not None and cfg.data.source == "images" else None
    if folder and Path(folder).is_dir():
        return sorted(p.name for p in Path(folder).iterdir() if p.is_dir())  # the order the loader labels them
    return None


def _encoders(target: Target) -> dict[str, list[str]]:
    """Vocabularies of the run's string CSV feature columns, as recorded in run.json (empty outside a run)."""
    if target.run_dir is None:
        return {}
    from dlkit.training.run_dir import read_run_json

    data = read_run_json(target.run_dir).get("data") or {}
    found = data.get("encoders") or (data.get("fingerprint") or {}).get("encoders") or {}
    return {str(k): [str(v) for v in vocab] for k, vocab in found.items()}


def _task(cfg: Any, width: int) -> str:
    if cfg is not None:
        from dlkit.data.task import task_of

        return str(task_of(cfg))
    return "classification" if width > 1 else "regression"


def predict(target: str | Path, inputs: list[str | Path], top_k: int = 3) -> dict[str, Any]:
    """Predict ``inputs`` with ``target`` (a run folder, model file or artifact).

    Returns:
        ``{"model": path, "task": ..., "predictions": [{"id", "class", "class_index", "probability",
        "top_k": [{"class", "probability"}]} | {"id", "prediction"}]}``.
    """
    if top_k < 1:
        raise UsageError(problems=[Problem(path="--top-k", message="must be at least 1", got=str(top_k))])
    if not inputs:
        raise UsageError(problems=[Problem(path="INPUT", message="give at least one input file")])
    resolved = resolve_target(target)
    cfg = config_of(resolved.raw) if resolved.raw is not None else None
    runtime = load_runtime(resolved.path)
    ids, x = read_inputs([Path(p) for p in inputs], runtime.input_shape, cfg, _encoders(resolved))
    outputs = runtime.predict(x)
    width = int(outputs.shape[-1]) if outputs.ndim > 1 else 1
    task = _task(cfg, width)
    rows: list[dict[str, Any]] = []
    if task in ("classification", "binary"):
        probs = probabilities(outputs, task, from_logits(cfg)).reshape(len(outputs), -1)
        if task == "binary" or probs.shape[1] == 1:
            probs = np.concatenate([1.0 - probs[:, :1], probs[:, :1]], axis=1)
        names = _class_names(resolved, cfg)
        names = names if names and len(names) == probs.shape[1] else [str(i) for i in range(probs.shape[1])]
        k = min(top_k, probs.shape[1])
        for ident, p in zip(ids, probs, strict=True):
            order = np.argsort(-p)[:k]
            rows.append(
                {
                    "id": ident,
                    "class": names[order[0]],
                    "class_index": int(order[0]),
                    "probability": round(float(p[order[0]]), 6),
                    "top_k": [{"class": names[i], "probability": round(float(p[i]), 6)} for i in order],
                }
            )
    else:
        for ident, out in zip(ids, outputs.reshape(len(outputs), -1), strict=True):
            value = [round(float(v), 6) for v in out]
            rows.append({"id": ident, "prediction": value[0] if len(value) == 1 else value})
    return {"model": str(resolved.path), "kind": resolved.kind, "task": task, "predictions": rows}


def to_csv(result: dict[str, Any]) -> str:
    """The predictions as CSV text (top-k as ``class:probability`` pairs joined by ``;``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    rows = result["predictions"]
    if rows and "class" in rows[0]:
        writer.writerow(["id", "class", "probability", "top_k"])
        for row in rows:
            top = ";".join(f"{t['class']}:{t['probability']}" for t in row["top_k"])
            writer.writerow([row["id"], row["class"], row["probability"], top])
    else:
        writer.writerow(["id", "prediction"])
        for row in rows:
            value = row["prediction"]
            writer.writerow([row["id"], ";".join(map(str, value)) if isinstance(value, list) else value])
    return buffer.getvalue()


def check_output(output: str | Path) -> Path:
    """``output`` as a Path; UsageError unless it ends in .csv or .json (checked before any work)."""
    out = Path(output)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(
            problems=[Problem(path="--output", message="expected a .csv or .json file name", got=str(output))]
        )
    return out


def write_predictions(result: dict[str, Any], output: str | Path) -> Path:
    """Write ``result`` to ``output`` as CSV or JSON (by extension), atomically."""
    out = check_output(output)
    suffix = out.suffix.lower()
    text = to_csv(result) if suffix == ".csv" else json.dumps(result, indent=2) + "\n"
    write_text(out, text)
    return out
