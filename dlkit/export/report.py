"""Rich renderables for the terminal: the export verification table and the evaluation tables.

The library builds them; the CLI prints them (to stderr with --json, so stdout stays one JSON object).
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table


def _num(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _artifact_name(entry: dict[str, Any]) -> str:
    return str(entry["path"]).rsplit("/", 1)[-1] + ("/" if entry["format"] == "saved_model" else "")


def export_heading(report: dict[str, Any]) -> str:
    """The line above the table: where the export went and what it was verified on."""
    verify = report.get("verify")
    head = f"export -> {report['export_dir']}"
    if verify:
        head += f"  (verified on {verify['samples']} {verify['split']} samples; ms = median latency per sample)"
    return head


def export_table(report: dict[str, Any]) -> Table:
    """One row per artifact: size, max |diff|, metric and delta, per-sample latency, verdict."""
    reference = report.get("reference")
    metric = next(iter((reference or {}).get("metrics", {})), "metric")
    header = ["artifact", "size", "max diff", metric, "delta", "ms", "verified"]
    rows: list[list[str]] = []
    if reference:
        ref_metric = _num(reference["metrics"].get(metric))
        rows.append(["keras model", "", "", ref_metric, "", _num(reference.get("latency_ms"), ".3f"), "ref"])
    for entry in report["artifacts"]:
        if entry["verified"] is None:
            verdict = "not run" if entry["error"] is None else "FAILED"
        else:
            verdict = "ok" if entry["verified"] and entry["error"] is None else "FAILED"
        if entry["flex_ops"]:
            verdict += " (Flex)"
        rows.append(
            [
                _artifact_name(entry),
                _size(entry["bytes"]),
                _num(entry["max_abs_diff"], ".1e"),
                _num(entry["metrics"].get(metric)),
                _num(entry["metric_delta"], "+.4f"),
                _num(entry["latency_ms"], ".3f"),
                verdict,
            ]
        )
    # rich spreads slack unevenly at 80 columns; pin each column to its content so nothing is cut
    table = Table(box=None, pad_edge=False)
    for k, name in enumerate(header):
        width = max(len(name), *(len(r[k]) for r in rows)) if rows else len(name)
        justify = "left" if k in (0, 6) else "right"
        table.add_column(name, justify=justify, no_wrap=True, min_width=width, max_width=width)
    for row in rows:
        table.add_row(*row)
    return table


def export_messages(report: dict[str, Any]) -> list[str]:
    """Warnings, Flex notes and errors to print under the table."""
    lines = [f"warning: {w}" for w in report.get("warnings", [])]
    for entry in report["artifacts"]:
        label = f"{entry['format']} ({entry['quantize']})"
        lines += [f"note: {label}: {note}" for note in entry.get("notes", [])]
    return lines


def eval_tables(result: dict[str, Any]) -> list[Table]:
    """The metrics table, plus the per-class precision/recall/F1 table for classifiers."""
    head = Table(
        title=f"{result['target_label']} on {result['split']} ({result['samples']} samples)", title_justify="left"
    )
    head.add_column("metric")
    head.add_column("value", justify="right")
    for name, value in result["metrics"].items():
        head.add_row(name, _num(value))
    tables = [head]
    if result.get("per_class"):
        per = Table(box=box.SIMPLE_HEAD, title="per class", title_justify="left")
        for column in ("class", "precision", "recall", "f1", "support"):
            per.add_column(column, justify="left" if column == "class" else "right")
        for row in result["per_class"]:
            per.add_row(row["class"], _num(row["precision"]), _num(row["recall"]), _num(row["f1"]), str(row["support"]))
        tables.append(per)
    return tables


def predictions_table(result: dict[str, Any], limit: int = 50) -> Table:
    """The first ``limit`` predictions as a table."""
    rows = result["predictions"]
    table = Table(box=box.SIMPLE_HEAD, title=f"predictions ({len(rows)})", title_justify="left")
    if rows and "class" in rows[0]:
        for column in ("id", "class", "probability", "top-k"):
            table.add_column(column)
        for row in rows[:limit]:
            top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top_k"])
            table.add_row(row["id"], row["class"], f"{row['probability']:.4f}", top)
    else:
        table.add_column("id")
        table.add_column("prediction")
        for row in rows[:limit]:
            table.add_row(row["id"], str(row["prediction"]))
    return table
