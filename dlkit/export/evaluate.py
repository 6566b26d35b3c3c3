"""``dlkit evaluate``: score a run's model, a model file or an exported artifact on one split.

The raw split is fed through the model's own input (the preprocessing layers live inside the model),
by the artifact's own runtime. Results go to ``eval.json`` in the run folder (``eval-<artifact>.json``
for an artifact) and, for classifiers, a confusion matrix PNG under ``plots/``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from dlkit.atomic import write_json
from dlkit.errors import DataError, Problem, UsageError, tf_message
from dlkit.export.plot import PLOTS, confusion_matrix_png
from dlkit.export.runtime import load_runtime
from dlkit.export.scoring import score
from dlkit.export.target import config_of, infer_task, load_split, resolve_target

log = logging.getLogger("dlkit.export")

SPLITS = ("test", "validation", "train")


def eval_filename(label: str) -> str:
    """``eval.json`` for the run's model, ``eval-<artifact>.json`` for anything else."""
    return "eval.json" if label == "model" else f"eval-{label}.json"


def evaluate(target: str | Path, split: str = "test", data: str | Path | None = None) -> dict[str, Any]:
    """Score ``target`` on ``split`` (or on the file ``data``) and write ``eval.json``.

    Args:
        target: A run folder, a ``.keras``/``.tflite``/``.onnx`` file or a SavedModel folder inside a run.
        split: ``test``, ``validation`` or ``train``. Defaults to test.
        data: A data file/folder to score instead of the run's split (read with the run's data settings).
            Defaults to None.

    Returns:
        ``{"split", "samples", "metrics", "target", "kind", "engine", "task", "per_class"?,
        "confusion_matrix"?, "class_names"?, "files": [...]}``.

    Raises:
        UsageError: bad split or target. DataError: the split is missing, empty or does not fit the model.
    """
    if split not in SPLITS:
        raise UsageError(problems=[Problem(path="--split", message=f"expected one of {', '.join(SPLITS)}", got=split)])
    resolved = resolve_target(target)
    data_split = load_split(resolved, split, data)
    cfg = config_of(resolved.raw) if resolved.raw is not None else None
    runtime = load_runtime(resolved.path)
    start = time.perf_counter()
    try:
        outputs = runtime.predict(data_split.x)
    except (ValueError, RuntimeError, TypeError) as error:
        where = {"file": str(data), "path": "--data"} if data is not None else {"path": f"data.{split}"}
        raise DataError(
            problems=[
                Problem(
                    **where,
                    message=f"the inputs do not fit the model: {tf_message(error)}",
                    got=f"inputs shaped {tuple(data_split.x.shape[1:])}",
                )
            ]
        ) from error
    seconds = time.perf_counter() - start
    if data_split.task == "auto":  # a model file outside any run, scored on an npz given with --data
        data_split.task, data_split.num_classes = infer_task(data_split.y, outputs)
    scored = score(cfg, data_split.y, outputs, data_split.task, data_split.num_classes, data_split.class_names)
    result: dict[str, Any] = {
        "split": data_split.split,
        "samples": int(len(data_split.x)),
        "metrics": scored["metrics"],
        "target": str(resolved.path),
        "target_label": resolved.label,
        "kind": resolved.kind,
        "engine": runtime.engine,
        "task": data_split.task,
        "seconds": round(seconds, 3),
    }
    for key in ("per_class", "confusion_matrix", "class_names"):
        if key in scored:
            result[key] = scored[key]
    files: list[str] = []
    if resolved.run_dir is not None:
        out = resolved.run_dir / eval_filename(resolved.label)
        if "confusion_matrix" in scored:
            stem = out.stem.replace("eval", "confusion_matrix", 1)
            png = confusion_matrix_png(
                scored["confusion_matrix"],
                scored["class_names"],
                resolved.run_dir / PLOTS / f"{stem}.png",
                f"{resolved.label} on {data_split.split}",
            )
            files.append(str(png))
        files.insert(0, str(out))
        result["files"] = files
        write_json(out, result)
    else:
        result["files"] = files
    return result
