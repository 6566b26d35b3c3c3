"""Helpers for the export tests: run folders built by hand: a tiny Keras model trained on sklearn digits.

Each run folder holds what ``dlkit train`` leaves behind (``config.yaml``, ``model.keras``,
``metrics.csv``, ``run.json``) with npz data files, so these tests do not depend on the trainer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml


def digits_files(folder: Path) -> dict[str, str]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype("float32")[..., None]  # raw 0..16 pixels; the model rescales
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    parts = {"train": slice(0, 1200), "validation": slice(1200, 1450), "test": slice(1450, None)}
    files = {}
    for split, part in parts.items():
        path = folder / f"{split}.npz"
        np.savez(path, x=x[part], y=y[part])
        files[split] = str(path)
    return files


def write_run(
    run: Path, model, raw: dict, history: dict[str, list[float]] | None = None, class_names: list[str] | None = None
) -> Path:
    """Write a run folder the way the trainer does."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    model.save(run / "model.keras")
    history = history or {"loss": [1.0], "val_loss": [1.1]}
    with open(run / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        names = list(history)
        writer.writerow(["epoch", *names])
        for i in range(len(history[names[0]])):
            writer.writerow([i + 1, *(history[n][i] for n in names)])
    info = {"status": "completed"}
    if class_names:
        info["class_names"] = class_names
    (run / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return run


def digits_config(files: dict[str, str], **export: object) -> dict:
    """A resolved config for the digits MLP (npz files used as given)."""
    return {
        "name": "digits",
        "seed": 0,
        "data": {"source": "npz", **files, "batch_size": 64, "preprocessing": [{"type": "Rescaling", "scale": 0.0625}]},
        "model": {
            "input_shape": [8, 8, 1],
            "layers": [
                {"type": "Flatten"},
                {"type": "Dense", "units": 256, "activation": "relu"},
                {"type": "Dense", "units": 128, "activation": "relu"},
                {"type": "Dense", "units": 10, "activation": "softmax"},
            ],
        },
        "loss": {"type": "sparse_categorical_crossentropy"},
        "metrics": [{"type": "accuracy"}],
        "export": {"formats": ["saved_model", "tflite"], "quantize": ["none"], **export},
    }


def set_export(run: Path, **export: object) -> None:
    """Change the run's ``export:`` section in place."""
    raw = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    raw["export"].update(export)
    (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
