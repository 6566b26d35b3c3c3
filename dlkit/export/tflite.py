"""TFLite/LiteRT: convert through Keras' ``model.export(format="litert")`` and run with the LiteRT interpreter.

Builtin TFLite ops are tried first. When an op exists only as a TensorFlow kernel the float/dynamic/float16
conversion is retried with SELECT_TF_OPS and the artifact is marked as needing the Flex delegate; int8
full-integer conversion never falls back (it must run on integer-only hardware). Converter failures are
reduced to the layer and op that caused them instead of the MLIR dump.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.errors import ExportError, Problem
from dlkit.export.native import capture_native_stderr
from dlkit.export.runtime import Runtime, median_latency_ms

log = logging.getLogger("dlkit.export")

_LOC = re.compile(r'fused\["(?P<op>[\w.]+):", "(?P<node>[^"@]+)@')
_OP_ERROR = re.compile(r"error: '(?:tf|tfl)\.(?P<op>\w+)' op (?P<why>[^\n]+)")
_SELECT_OPS = re.compile(r"TF Select ops: ([^\n]+)")
_CUSTOM_OPS = re.compile(r"Custom ops: ([^\n]+)")


def _layer_of(node: str, layer_names: set[str]) -> str | None:
    """The model layer a converter node path such as ``functional_1/my_layer_1/Cumprod`` belongs to."""
    for part in node.split("/")[1:-1] or node.split("/"):
        name = part
        while True:
            if name in layer_names:
                return name
            stripped = re.sub(r"_\d+$", "", name)
            if stripped == name:
                break
            name = stripped
    return None


def describe_conversion_error(text: str, layer_names: set[str]) -> tuple[list[str], dict[str, str | None]]:
    """Short facts from a converter error: ``(lines, {op: layer})``.

    ``lines`` are one-line reasons without locations or IR; the dict maps each failing op to its layer.
    """
    ops: dict[str, str | None] = {}
    for match in _LOC.finditer(text):
        op = match.group("op")
        if op not in ops or ops[op] is None:
            ops[op] = _layer_of(match.group("node"), layer_names)
    reasons: list[str] = []
    for match in _OP_ERROR.finditer(text):
        line = f"op {match.group('op')} {match.group('why').strip()}"
        if line not in reasons:
            reasons.append(line)
    if not reasons:
        for line in text.splitlines():
            line = re.sub(r"^loc\(.*?\)\):\s*", "", line.strip())
            if "error:" in line and not line.startswith("<unknown>"):
                reasons.append(line.split("error:", 1)[1].strip()[:200])
                break
    return reasons, ops


def _flex_ops(text: str) -> list[str]:
    match = _SELECT_OPS.search(text)
    return [op.strip() for op in match.group(1).split(",")] if match else []


def _custom_ops(text: str) -> list[str]:
    match = _CUSTOM_OPS.search(text)
    return [op.strip() for op in match.group(1).split(",")] if match else []


def _where(ops: dict[str, str | None], names: list[str]) -> str:
    parts = []
    for op in names or list(ops):
        layer = ops.get(op)
        parts.append(f"{op} (layer '{layer}')" if layer else op)
    return ", ".join(parts)


def _converter_kwargs(quantize: str, calibration: Iterator[np.ndarray] | None) -> dict[str, Any]:
    import tensorflow as tf

    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "none":
        return {"target_spec": {"supported_ops": builtins}}
    if quantize == "dynamic":
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_ops": builtins}}
    if quantize == "float16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_ops": builtins, "supported_types": [tf.float16]},
        }
    if quantize == "int8":
        if calibration is None:
            raise ExportError("int8 quantization needs calibration samples from the training split")
        samples = list(calibration)

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for sample in samples:
                yield [sample[None, ...].astype(np.float32)]

        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative_dataset,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
            "inference_input_type": tf.int8,
            "inference_output_type": tf.int8,
        }
    raise ExportError(f"unknown quantization {quantize!r}")


def _convert(model: Any, target: Path, kwargs: dict[str, Any], signature: list[Any] | None = None) -> str:
    """Run the converter; return '' on success, the error text (exception + native stderr) on failure."""
    extra = {"input_signature": signature} if signature is not None else {}
    with capture_native_stderr() as captured:
        try:
            model.export(str(target), format="litert", verbose=False, **extra, **kwargs)
            error = None
        except Exception as exc:  # noqa: BLE001 - ConverterError, ValueError, RuntimeError...
            error = exc
    if error is None:
        return ""
    return f"{type(error).__name__}: {error}\n{captured.text}"


def _batch_of_one(model: Any) -> list[Any] | None:
    """A batch-size-1 input signature (single-input models), for graphs TFLite cannot convert with a dynamic batch."""
    import tensorflow as tf

    if len(model.inputs) != 1:
        return None
    spec = model.inputs[0]
    return [tf.TensorSpec((1, *spec.shape[1:]), spec.dtype)]


def export_tflite(
    model: Any, target: Path, *, quantize: str = "none", calibration: Iterator[np.ndarray] | None = None
) -> dict[str, Any]:
    """Convert ``model`` to a ``.tflite`` file at ``target`` with the given post-training quantization.

    Args:
        model: The trained Keras model (preprocessing included).
        target: Output path ending in ``.tflite``.
        quantize: ``none``, ``dynamic``, ``float16`` or ``int8``. Defaults to none.
        calibration: Raw training inputs (one sample each) for int8 calibration. Defaults to None.

    Returns:
        ``{"flex_ops": [...], "notes": [...]}``; ``flex_ops`` lists TF ops that need the Flex delegate.

    Raises:
        ExportError: the converter failed; the message names the op and layer.
    """
    import tensorflow as tf

    kwargs = _converter_kwargs(quantize, calibration)
    names = {layer.name for layer in model.layers}
    notes: list[str] = []
    signature = None
    text = _convert(model, target, kwargs)
    if text and "TensorList" in text and quantize == "int8":
        # measured: with a static batch the int8 calibrator then segfaults on the recurrent while-loop (TF 2.21)
        raise ExportError(
            problems=[
                Problem(
                    path=f"tflite ({quantize})",
                    message="int8 full-integer quantization does not support recurrent layers (LSTM/GRU/RNN) "
                    "in the TFLite converter",
                    hint="Use --quantize dynamic or float16 for this model.",
                )
            ]
        )
    if text and "TensorList" in text and (signature := _batch_of_one(model)) is not None:
        # Keras 3 recurrent layers are while-loops over TensorLists, which TFLite lowers only with static shapes
        text = _convert(model, target, kwargs, signature)
        if not text or "TensorList" not in text:
            notes.append("converted with a fixed batch size of 1 (recurrent layers need static shapes in TFLite)")
    if not text:
        return {"flex_ops": [], "notes": notes}
    flex = _flex_ops(text)
    custom = _custom_ops(text)
    reasons, ops = describe_conversion_error(text, names)
    label = f"tflite ({quantize})"
    if flex and not custom and quantize != "int8":
        kwargs["target_spec"]["supported_ops"] = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        retry = _convert(model, target, kwargs, signature)
        if not retry:
            note = (
                f"needs the Flex delegate (SELECT_TF_OPS) for {_where(ops, flex)}: not builtin TFLite ops; "
                "the file runs only where TensorFlow's Flex delegate is linked in"
            )
            log.info("%s: %s", label, note)
            return {"flex_ops": flex, "notes": [*notes, note]}
        text = retry
        reasons, ops = describe_conversion_error(text, names)
    if custom:
        why = f"{_where(ops, custom)} {'is' if len(custom) == 1 else 'are'} neither builtin TFLite nor Flex ops"
        hint = "Replace the layer with one built from supported ops, or export another format (saved_model, onnx)."
    elif flex and quantize == "int8":
        why = f"{_where(ops, flex)} {'has' if len(flex) == 1 else 'have'} no int8 builtin kernel"
        hint = "int8 needs every op as an integer builtin; use --quantize dynamic or float16 for this model."
    else:
        located = [f"{r} in layer '{ops[r.split()[1]]}'" if ops.get(r.split()[1]) else r for r in reasons[:3]]
        why = "; ".join(located) or text.strip().splitlines()[0][:300]
        hint = "Rerun with --traceback (or DLKIT_DEBUG=1) for the converter's full log."
    raise ExportError(problems=[Problem(path=label, message=f"conversion failed: {why}", hint=hint)])


class TFLiteRuntime(Runtime):
    """A ``.tflite`` file through the LiteRT interpreter (``ai_edge_litert``), else ``tf.lite.Interpreter``.

    Flex (SELECT_TF_OPS) models run through ``tf.lite.Interpreter``, which links TensorFlow's Flex
    delegate. Quantized (int8) inputs and outputs are (de)quantized with the tensor's own scale and zero point.
    """

    kind = "tflite"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._make = self._factory()
        self.interpreter = self._make()
        detail = self.interpreter.get_input_details()[0]
        self._in = detail
        self._signature = tuple(int(d) for d in detail["shape_signature"])
        self._batch = 0

    def _factory(self) -> Callable[[], Any]:
        """The first interpreter that can load *and invoke* the file: LiteRT, else tf.lite."""
        makers: list[tuple[str, Callable[[], Any]]] = []
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteRT

            makers.append(("ai_edge_litert", lambda: LiteRT(model_path=str(self.path))))
        except ImportError:
            pass

        def tf_lite() -> Any:
            import tensorflow as tf

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
                return tf.lite.Interpreter(model_path=str(self.path))

        makers.append(("tf.lite", tf_lite))
        errors: list[str] = []
        for engine, make in makers:

            def build(make: Callable[[], Any] = make) -> Any:
                with capture_native_stderr():  # "Created TensorFlow Lite XNNPACK delegate" goes to fd 2
                    it = make()
                    it.allocate_tensors()
                return it

            try:
                probe = build()  # invoke once: a Flex model loads but fails at its first prepare/invoke
                detail = probe.get_input_details()[0]
                probe.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
                with capture_native_stderr():
                    probe.invoke()
            except (RuntimeError, ValueError) as error:
                errors.append(f"{engine}: {str(error).splitlines()[0][:300]}")
                continue
            self.engine = engine
            return build
        if any("Flex delegate" in e or "Select TensorFlow op" in e for e in errors):
            raise ExportError(
                problems=[
                    Problem(
                        path=self.path.name,
                        message="cannot run here: the file needs the Flex delegate (SELECT_TF_OPS), which neither "
                        "ai_edge_litert nor tf.lite.Interpreter link in on this machine, so it was not verified",
                        hint="Build the layer from builtin TFLite ops, or pass --no-verify to keep it unverified.",
                    )
                ]
            )
        raise ExportError(f"cannot load {self.path} in the LiteRT interpreter: {'; '.join(errors)}")

    def _resize(self, n: int) -> None:
        if self._batch == n:
            return
        if self._signature and self._signature[0] == -1:
            self.interpreter.resize_tensor_input(self._in["index"], [n, *self._in["shape"][1:]])
            self.interpreter.allocate_tensors()
        self._batch = n

    def _quantize_in(self, batch: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        scale, zero = self._in["quantization"]
        if np.issubdtype(dtype, np.integer) and scale:
            info = np.iinfo(dtype)
            q = np.round(batch.astype(np.float32) / scale + zero)
            return np.clip(q, info.min, info.max).astype(dtype)
        return batch.astype(dtype)

    def _run_fixed(self, batch: np.ndarray) -> np.ndarray:
        it = self.interpreter
        it.set_tensor(self._in["index"], self._quantize_in(batch))
        it.invoke()
        out = it.get_output_details()[0]
        raw = it.get_tensor(out["index"])
        scale, zero = out["quantization"]
        if np.issubdtype(raw.dtype, np.integer) and scale:
            return (raw.astype(np.float32) - zero) * scale
        return raw.astype(np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._signature and self._signature[0] == -1:
            self._resize(len(batch))
            return self._run_fixed(batch)
        # fixed batch size (usually 1): one call per sample
        return np.concatenate([self._run_fixed(batch[i : i + 1]) for i in range(len(batch))], axis=0)

    def latency_ms(self, sample: np.ndarray) -> float:
        self._resize(1)
        return median_latency_ms(self._run_fixed, sample[:1])

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return tuple(None if d == -1 else int(d) for d in self._signature[1:])

    @property
    def quantized_io(self) -> bool:
        """True when the file takes integer (quantized) input."""
        return bool(np.issubdtype(self._in["dtype"], np.integer) and self._in["quantization"][0])
