"""The formats table and the converter-error digest (no conversion, no training)."""

from __future__ import annotations

import pytest

from dlkit.errors import UsageError
from dlkit.export.formats import FORMATS, QUANTIZATIONS, ArtifactSpec, help_text, plan
from dlkit.export.tflite import describe_conversion_error


def test_plan_crosses_quantizations_with_tflite_only() -> None:
    specs = plan(["saved_model", "tflite", "onnx"], ["none", "int8"])
    assert [(s.format, s.quantize, s.filename) for s in specs] == [
        ("saved_model", "none", "saved_model"),
        ("tflite", "none", "model.tflite"),
        ("tflite", "int8", "model_int8.tflite"),
        ("onnx", "none", "model.onnx"),
    ]
    assert [s.is_float for s in specs] == [True, True, False, True]


def test_plan_drops_duplicates_and_defaults_to_float() -> None:
    assert plan(["tflite", "tflite"], []) == [ArtifactSpec("tflite", "none")]


def test_unknown_names_are_reported_together_with_suggestions() -> None:
    with pytest.raises(UsageError) as info:
        plan(["tflit", "savedmodel"], ["int9"])
    text = str(info.value)
    assert "--format: unknown value, expected one of saved_model, tflite, keras, onnx (got 'tflit'). " in text
    assert "Did you mean 'tflite'?" in text and "Did you mean 'saved_model'?" in text
    assert "--quantize: unknown value, expected one of none, dynamic, float16, int8 (got 'int9')" in text


def test_quantize_without_a_quantizable_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"quantization applies to tflite only \(got int8\)\. Add --format tflite\."):
        plan(["saved_model"], ["int8"])


def test_help_is_generated_from_the_tables() -> None:
    text = help_text()
    for name in [*FORMATS, *QUANTIZATIONS]:
        assert f"  {name} " in text


CONVERTER_ERROR = """ConverterError: <unknown>:0: error: loc(callsite(fused["Erfinv:", \
"functional_1_1/inverse_erf_1/erfinv/Erfinv@__inference_function_496"] at callsite(fused["StatefulPartitionedCall:", \
"StatefulPartitionedCall@__inference_signature_wrapper_515"]))): 'tf.Erfinv' op is neither a custom op nor a flex op
loc(callsite(fused["Erfinv:", "functional_1_1/inverse_erf_1/erfinv/Erfinv@__inference_function_496"])): \
error: 'tf.Erfinv' op is neither a custom op nor a flex op
error: failed while converting: 'main':
Custom ops: Erfinv
"""


def test_converter_errors_are_reduced_to_op_and_layer() -> None:
    reasons, ops = describe_conversion_error(CONVERTER_ERROR, {"inverse_erf", "dense"})
    assert ops == {"Erfinv": "inverse_erf", "StatefulPartitionedCall": None}
    assert reasons == ["op Erfinv is neither a custom op nor a flex op"]
