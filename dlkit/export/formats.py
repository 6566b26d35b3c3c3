"""The one table of export formats and quantizations: it drives validation, help text and dispatch.

Each :class:`Format` names the module that writes it (``exporter``) and the runtime that loads it back for
verification; each :class:`Quantization` says whether its artifact must match the Keras model to
``export.tolerance`` (float) or only keep the metric within ``export.max_metric_drop`` (quantized).
This module imports neither TensorFlow nor Keras, so ``--help`` can list the choices cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.errors import Problem, UsageError


@dataclass(frozen=True)
class Format:
    """One artifact format.

    Attributes:
        name: The ``--format`` value.
        filename: Artifact name inside the export folder (``{q}`` becomes ``_<quantize>`` unless ``none``).
        exporter: ``module:function`` that writes it: ``fn(model, target, *, quantize, calibration) -> dict``.
        runtime: Where verification loads it: the runtime's own loader, never the Keras model.
        quantizable: Whether ``--quantize`` other than ``none`` applies.
        help: One line for ``--help`` and the docs.
    """

    name: str
    filename: str
    exporter: str
    runtime: str
    quantizable: bool
    help: str

    def artifact_name(self, quantize: str) -> str:
        """File or folder name of this format's artifact for ``quantize``."""
        return self.filename.format(q="" if quantize == "none" else f"_{quantize}")


@dataclass(frozen=True)
class Quantization:
    """One quantization mode (TFLite post-training quantization).

    Attributes:
        name: The ``--quantize`` value.
        is_float: True when the artifact must reproduce the Keras outputs to ``export.tolerance``.
        help: One line for ``--help`` and the docs.
    """

    name: str
    is_float: bool
    help: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "saved_model",
            "saved_model",
            "dlkit.export.saved_model:export_saved_model",
            "tf.saved_model.load",
            False,
            "TensorFlow SavedModel folder for TF Serving / TF.js / servers (signature `serve`).",
        ),
        Format(
            "tflite",
            "model{q}.tflite",
            "dlkit.export.tflite:export_tflite",
            "LiteRT interpreter",
            True,
            "TFLite/LiteRT flatbuffer for phones and microcontrollers; builtin ops preferred.",
        ),
        Format(
            "keras",
            "model.keras",
            "dlkit.export.keras_format:export_keras",
            "keras.models.load_model",
            False,
            "The Keras v3 model file (preprocessing included), reloadable with keras.models.load_model.",
        ),
        Format(
            "onnx",
            "model.onnx",
            "dlkit.export.onnx_format:export_onnx",
            "onnxruntime",
            False,
            "ONNX graph via tf2onnx (needs: pip install tf2onnx onnx onnxruntime).",
        ),
    )
}

QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        Quantization("none", True, "float32, must match the Keras model to export.tolerance."),
        Quantization("dynamic", False, "dynamic-range: int8 weights, float activations (~4x smaller)."),
        Quantization("float16", False, "float16 weights (~2x smaller), float32 compute."),
        Quantization("int8", False, "full-integer: int8 weights, activations, input and output; calibrated."),
    )
}


@dataclass(frozen=True)
class ArtifactSpec:
    """One artifact to produce: a format and a quantization."""

    format: str
    quantize: str

    @property
    def spec(self) -> Format:
        """The format's table entry."""
        return FORMATS[self.format]

    @property
    def filename(self) -> str:
        """Its file or folder name inside the export folder."""
        return self.spec.artifact_name(self.quantize)

    @property
    def is_float(self) -> bool:
        """Whether it must match the Keras outputs to the tolerance."""
        return QUANTIZATIONS[self.quantize].is_float


def _check(values: list[str], table: dict[str, object], option: str) -> list[Problem]:
    from difflib import get_close_matches

    problems = []
    for value in values:
        if value not in table:
            close = get_close_matches(value, list(table), n=1)
            problems.append(
                Problem(
                    path=option,
                    message=f"unknown value, expected one of {', '.join(table)}",
                    got=repr(value),
                    suggestion=close[0] if close else None,
                )
            )
    return problems


def plan(formats: list[str], quantize: list[str]) -> list[ArtifactSpec]:
    """The artifacts to produce for ``--format`` x ``--quantize``, in a stable order, without duplicates.

    Quantization applies to quantizable formats (tflite); the others are exported once, in float32.

    Raises:
        UsageError: an unknown format/quantization (with a did-you-mean), an empty list, or a quantization
            asked for without any format that supports it.
    """
    formats = list(dict.fromkeys(formats))
    quantize = list(dict.fromkeys(quantize or ["none"]))
    problems = _check(formats, FORMATS, "--format") + _check(quantize, QUANTIZATIONS, "--quantize")
    if not formats:
        problems.append(Problem(path="--format", message="no export format given", hint=f"Use {', '.join(FORMATS)}."))
    if problems:
        raise UsageError(problems=problems)
    quantized = [q for q in quantize if q != "none"]
    quantizable = [f for f in formats if FORMATS[f].quantizable]
    if quantized and not quantizable:
        raise UsageError(
            problems=[
                Problem(
                    path="--quantize",
                    message=f"quantization applies to {', '.join(n for n, f in FORMATS.items() if f.quantizable)} only",
                    got=", ".join(quantized),
                    hint="Add --format tflite.",
                )
            ]
        )
    out: list[ArtifactSpec] = []
    for name in formats:
        modes = quantize if FORMATS[name].quantizable else ["none"]
        out.extend(ArtifactSpec(name, q) for q in modes)
    return out


def help_text() -> str:
    """Help lines for the ``export`` command, generated from the tables."""
    lines = ["Formats:"] + [f"  {f.name:<12} {f.help}" for f in FORMATS.values()]
    lines += ["Quantizations (tflite):"] + [f"  {q.name:<12} {q.help}" for q in QUANTIZATIONS.values()]
    return "\n".join(lines)
