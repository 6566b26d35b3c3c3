"""``dlkit export``: write every requested artifact, load each in its own runtime and verify it.

The whole export is built in a temporary folder beside the run and renamed into place at the end, so a
crash never leaves half an export. An existing export is never merged into or overwritten: the first
export of a run lands in ``export/``, later ones in ``export-2/``, ``export-3/``, ... Failed artifacts
(conversion or verification) are reported and everything produced is kept for inspection; the call then
raises :class:`ExportFailed` (exit 5) carrying the report.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.atomic import atomic_path, write_json
from dlkit.errors import DataError, ExportError, Problem
from dlkit.export.float32 import float32_model
from dlkit.export.formats import ArtifactSpec, plan
from dlkit.export.runtime import KerasRuntime, load_runtime
from dlkit.export.scoring import from_logits, quick_metrics
from dlkit.export.target import config_of, resolve_target, stack_split
from dlkit.export.verify import Reference, verify_runtime

log = logging.getLogger("dlkit.export")

REPORT = "export_report.json"
MIN_CALIBRATION = 300


class ExportFailed(ExportError):
    """Some artifact failed to convert or to verify; ``report`` holds everything that was measured."""

    def __init__(self, message: str, report: dict[str, Any], problems: list[Problem] | None = None) -> None:
        super().__init__(message, problems)
        self.report = report


def next_export_dir(run: Path) -> Path:
    """``export/`` when the run has none yet, else the first free ``export-N/`` (never merge)."""
    first = run / "export"
    if not first.exists():
        return first
    n = 2
    while (run / f"export-{n}").exists():
        n += 1
    return run / f"export-{n}"


def artifact_bytes(path: Path) -> int:
    """Size of a file, or the total size of a folder's files."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _verification_split(bundle: Any) -> tuple[str, np.ndarray, np.ndarray]:
    for split in ("test", "validation"):
        try:
            x, y = stack_split(bundle.unbatched(split))
        except DataError:
            continue
        if len(x):
            return split, x, y
    raise DataError(
        problems=[
            Problem(
                path="data.test",
                message="verification needs a test or validation split, and the config has neither",
                hint="Give data.test (or data.test_split / data.validation_split), or pass --no-verify.",
            )
        ]
    )


def _calibration(bundle: Any, samples: int, seed: int, warnings: list[str]) -> np.ndarray:
    x, _ = stack_split(bundle.unbatched("train"))
    if len(x) > samples:
        x = x[np.random.default_rng(seed).choice(len(x), samples, replace=False)]
    if len(x) < MIN_CALIBRATION:
        warnings.append(
            f"int8 is calibrated on only {len(x)} training samples (fewer than {MIN_CALIBRATION}); "
            "activation ranges may be off and accuracy may suffer. Raise --calibration-samples if the data has more."
        )
    return x


def _error_text(error: ExportError) -> str:
    """One line per problem, without the artifact label (the report row already names it)."""
    lines = [dataclasses.replace(p, path="").render() for p in error.problems]
    return "; ".join(lines) or str(error)


def _exporter(spec: ArtifactSpec) -> Any:
    module, func = spec.spec.exporter.split(":")
    return getattr(importlib.import_module(module), func)


def _entry(spec: ArtifactSpec, final: Path) -> dict[str, Any]:
    return {
        "format": spec.format,
        "quantize": spec.quantize,
        "path": str(final / spec.filename),
        "bytes": None,
        "max_abs_diff": None,
        "metrics": {},
        "metric_delta": None,
        "latency_ms": None,
        "verified": None,
        "engine": None,
        "flex_ops": [],
        "notes": [],
        "error": None,
    }


def export_run(
    run_dir: str | Path,
    formats: list[str] | None = None,
    quantize: list[str] | None = None,
    calibration_samples: int | None = None,
    verify: bool | None = None,
) -> dict[str, Any]:
    """Export, verify and report a run's ``model.keras``.

    Args:
        run_dir: ``runs/<name>/<NNN>`` or ``runs/<name>`` (its newest run).
        formats: Formats to write. Defaults to the config's ``export.formats``.
        quantize: TFLite quantizations. Defaults to the config's ``export.quantize``.
        calibration_samples: int8 calibration samples. Defaults to ``export.calibration_samples``.
        verify: Run every artifact on held-out data. Defaults to ``export.verify``.

    Returns:
        The report written to ``export_report.json`` (``artifacts`` as in the ``--json`` contract).

    Raises:
        UsageError: bad formats/quantizations (before anything is written).
        DataError: verification or int8 needs data the config does not have (before anything is written).
        ExportFailed: an artifact failed to convert or verify; the artifacts and report are kept.
    """
    import keras

    from dlkit.training.run_dir import resolve_run_dir

    target = resolve_target(resolve_run_dir(run_dir))  # a run, not an artifact: export starts from model.keras
    assert target.run_dir is not None and target.raw is not None
    run = target.run_dir
    cfg = config_of(target.raw)
    specs = plan(formats or list(cfg.export.formats), quantize or list(cfg.export.quantize))
    calibration_samples = calibration_samples or cfg.export.calibration_samples
    verify = cfg.export.verify if verify is None else verify
    warnings: list[str] = []

    trained = keras.models.load_model(target.path, compile=False)
    model = float32_model(trained)  # what gets exported: float32 even when trained in mixed precision
    need_int8 = any(s.quantize == "int8" for s in specs)
    bundle = None
    if verify or need_int8:
        from dlkit.data import load_data

        bundle = load_data(cfg)
    reference = None
    reference_info: dict[str, Any] = {}
    if verify:
        split, x, y = _verification_split(bundle)
        keras_rt = KerasRuntime(target.path, model)
        outputs = keras_rt.predict(x)
        task = bundle.task
        logits = from_logits(cfg)
        reference = Reference(x, y, outputs, quick_metrics(y, outputs, task, logits), task, logits, split)
        reference_info = {
            "format": "keras",
            "path": str(target.path),
            "metrics": reference.metrics,
            "latency_ms": round(keras_rt.latency_ms(x[:1]), 4),
        }
        if model is not trained:
            mixed = KerasRuntime(target.path, trained).predict(x)
            diff = float(np.max(np.abs(mixed.astype(np.float64) - outputs)))
            reference_info["mixed_precision"] = {
                "trained_metrics": quick_metrics(y, mixed, task, logits),
                "max_abs_diff_vs_trained": diff,
            }
            warnings.append(
                "the model was trained in mixed precision; its float32 rebuild (same weights) is exported and is "
                f"the reference for verification (it differs from the mixed-precision model by up to {diff:.2g})"
            )
    calibration = _calibration(bundle, calibration_samples, cfg.seed, warnings) if need_int8 else None

    final = next_export_dir(run)
    entries: list[dict[str, Any]] = []
    started = time.time()
    with atomic_path(final) as staging:
        staging.mkdir()
        for spec in specs:
            entry = _entry(spec, final)
            entries.append(entry)
            path = staging / spec.filename
            log.info("exporting %s (%s)", spec.format, spec.quantize)
            try:
                info = _exporter(spec)(model, path, quantize=spec.quantize, calibration=calibration)
            except ExportError as error:
                entry["error"] = _error_text(error)
                entry["verified"] = False
                if path.exists():
                    entry["bytes"] = artifact_bytes(path)
                continue
            entry["bytes"] = artifact_bytes(path)
            entry["flex_ops"] = info.get("flex_ops", [])
            entry["notes"] = info.get("notes", [])
            if reference is None:
                continue
            runtime = None
            try:
                runtime = load_runtime(path)
                result = verify_runtime(
                    runtime,
                    reference,
                    is_float=spec.is_float,
                    tolerance=cfg.export.tolerance,
                    max_metric_drop=cfg.export.max_metric_drop,
                )
            except ExportError as error:
                entry["error"] = _error_text(error)
                entry["verified"] = False
                continue
            except Exception as error:  # noqa: BLE001 - the artifact's runtime rejected it: a failed verification
                log.debug("verification of %s failed", path, exc_info=True)
                first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
                entry["error"] = f"could not run in {getattr(runtime, 'engine', 'its runtime')}: {first}"
                entry["verified"] = False
                continue
            reason = result.pop("reason")
            entry.update(result)
            if reason and spec.quantize == "int8":
                reason += (
                    ". int8 quantizes the raw input with one scale, so features on very different scales lose "
                    "precision; try --quantize dynamic or float16, or more --calibration-samples"
                )
            if reason:
                entry["error"] = f"verification failed: {reason}"
        report: dict[str, Any] = {
            "run_dir": str(run),
            "export_dir": str(final),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 2),
            "verify": None
            if reference is None
            else {
                "split": reference.split,
                "samples": int(len(reference.x)),
                "task": reference.task,
                "tolerance": cfg.export.tolerance,
                "max_metric_drop": cfg.export.max_metric_drop,
            },
            "reference": reference_info or None,
            "calibration_samples": None if calibration is None else int(len(calibration)),
            "warnings": warnings,
            "artifacts": entries,
        }
        report["ok"] = all(e["error"] is None for e in entries)
        write_json(staging / REPORT, report)
    failed = [e for e in entries if e["error"] is not None]
    if failed:
        problems = [Problem(path=f"{e['format']} ({e['quantize']})", message=e["error"]) for e in failed]
        raise ExportFailed(
            f"{len(failed)} of {len(entries)} artifacts failed; everything produced is kept in {final}"
            f" (report: {final / REPORT})",
            report,
            problems,
        )
    return report
