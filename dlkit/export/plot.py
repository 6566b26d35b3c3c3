"""PNG plots of a run: learning curves from ``metrics.csv`` and the confusion matrix from ``eval.json``.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot global state, no display).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from dlkit.atomic import atomic_path
from dlkit.errors import DataError, Problem

PLOTS = "plots"
SKIP_COLUMNS = {"epoch", "lr", "learning_rate", "time", "seconds", "epoch_time", "step", "steps", "samples_per_s"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, target: Path) -> Path:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return target


def read_metrics_csv(path: Path) -> dict[str, list[float]]:
    """Columns of ``metrics.csv`` as float lists (blank cells become NaN).

    Raises:
        DataError: the file is missing or has no rows.
    """
    if not path.is_file():
        raise DataError(
            problems=[Problem(file=str(path), message="no metrics.csv: the run has not finished an epoch yet")]
        )
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DataError(problems=[Problem(file=str(path), message="metrics.csv has no epoch rows yet")])
    columns: dict[str, list[float]] = {}
    for name in rows[0]:
        values = []
        for row in rows:
            try:
                values.append(float(row.get(name) or "nan"))
            except ValueError:
                break
        else:
            columns[name] = values
    return columns


def learning_curves(run_dir: Path) -> Path:
    """Plot loss and each metric (train vs validation) per epoch into ``plots/learning_curves.png``."""
    columns = read_metrics_csv(run_dir / "metrics.csv")
    epochs = columns.get("epoch") or list(range(1, len(next(iter(columns.values()))) + 1))
    if epochs and epochs[0] == 0:
        epochs = [e + 1 for e in epochs]  # Keras' CSVLogger counts from 0; people count from 1
    names = [n for n in columns if not n.startswith("val_") and n not in SKIP_COLUMNS]
    names += [n[4:] for n in columns if n.startswith("val_") and n[4:] not in columns]
    names.sort(key=lambda n: (n != "loss", n))
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols)
    fig = _figure(4.2 * cols, 3.2 * rows)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        if name in columns:
            ax.plot(epochs, columns[name], marker="o", markersize=3, label="train")
        if f"val_{name}" in columns:
            ax.plot(epochs, columns[f"val_{name}"], marker="o", markersize=3, label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{run_dir.parent.name}/{run_dir.name}")
    return _save(fig, run_dir / PLOTS / "learning_curves.png")


def confusion_matrix_png(matrix: list[list[int]], class_names: list[str], target: Path, title: str) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    n = len(matrix)
    size = max(4.0, min(14.0, 0.55 * n + 2.5))
    fig = _figure(size, size * 0.9)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), labels=class_names, rotation=45 if n > 6 else 0)
    ax.set_yticks(range(n), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0) or 1
    if n <= 30:
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                color = "white" if count > peak / 2 else "black"
                ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    return _save(fig, target)


def plot_run(run_dir: Path) -> list[Path]:
    """All plots of a run: learning curves, plus the confusion matrix of each ``eval*.json`` that has one."""
    paths = [learning_curves(run_dir)]
    for report in sorted(run_dir.glob("eval*.json")):
        data = json.loads(report.read_text(encoding="utf-8"))
        if data.get("confusion_matrix"):
            stem = report.stem.replace("eval", "confusion_matrix", 1)
            title = f"{data.get('target_label', 'model')} on {data.get('split', '?')}"
            paths.append(
                confusion_matrix_png(
                    data["confusion_matrix"], data["class_names"], run_dir / PLOTS / f"{stem}.png", title
                )
            )
    return paths
