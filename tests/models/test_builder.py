"""The model builder: sequential and graph wiring, blocks, wrappers, regularization, precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dlkit.errors import ConfigError
from dlkit.models import build_model


def build(make_config, **model):
    model.setdefault("input_shape", [8])
    loaded = make_config(model=model)
    return build_model(loaded.config, where=loaded.where)


def error_of(make_config, **model) -> str:
    with pytest.raises(ConfigError) as info:
        build(make_config, **model)
    return str(info.value)


def test_sequential_with_shorthand_and_aliases(make_config) -> None:
    model = build(
        make_config,
        input_shape=[6, 6, 1],
        layers=[{"type": "conv2d", "filters": 2, "kernel_size": 3}, "flatten", {"type": "dense", "units": 3}],
    )
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Conv2D", "Flatten", "Dense"]
    assert model.output_shape == (None, 3)
    assert model.count_params() == (9 * 2 + 2) + (4 * 4 * 2 * 3 + 3)


def test_graph_model_with_named_inputs_and_two_outputs(make_config) -> None:
    model = build(
        make_config,
        layers=[
            {"type": "Dense", "units": 4, "name": "a"},
            {"type": "Dense", "units": 4, "name": "b", "inputs": "input"},
            {"type": "Concatenate", "name": "cat", "inputs": ["a", "b"]},
            {"type": "Add", "name": "sum", "inputs": ["a", "b"]},
            {"type": "Dense", "units": 1, "name": "head1", "inputs": ["cat"]},
            {"type": "Dense", "units": 2, "name": "head2", "inputs": ["sum"]},
        ],
        outputs=["head1", "head2"],
    )
    assert [o.shape for o in model.outputs] == [(None, 1), (None, 2)]
    assert model.get_layer("b").input.shape == (None, 8)  # took the model input, not layer a
    assert model.get_layer("head2").input.shape == (None, 4)
    outs = model.predict_on_batch(np.ones((2, 8), "float32"))
    assert [o.shape for o in outs] == [(2, 1), (2, 2)]


def test_residual_block_repeated(make_config) -> None:
    model = build(
        make_config,
        input_shape=[8, 8, 4],
        blocks={
            "res": [
                {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "name": "c"},
                {"type": "BatchNormalization", "name": "bn"},
                {"type": "Add", "inputs": ["bn", "block_input"]},
                {"type": "Activation", "activation": "relu"},
            ]
        },
        layers=[
            {"block": "res", "repeat": 3, "name": "trunk"},
            {"type": "GlobalAveragePooling2D", "inputs": "trunk"},
            {"type": "Dense", "units": 2},
        ],
    )
    names = [layer.name for layer in model.layers]
    assert {"res1_c", "res2_c", "res3_c", "res1_bn", "res3_bn", "res2_add_2"} <= set(names)
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 3
    # each Add takes its own repetition's input: res2's skip comes from res1's output
    add2 = model.get_layer("res2_add_2")
    assert {t._keras_history.operation.name for t in add2.input} == {"res2_bn", "res1_activation_3"}
    assert model.count_params() == 3 * ((9 * 4 * 4 + 4) + 4 * 4) + (4 * 2 + 2)


def test_block_reused_twice_gets_unique_prefixes(make_config) -> None:
    model = build(
        make_config,
        blocks={"mlp": [{"type": "Dense", "units": 8, "name": "fc"}]},
        layers=[{"block": "mlp"}, {"type": "Dropout", "rate": 0.1}, {"block": "mlp", "repeat": 2}],
    )
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [
        "mlp1_fc",
        "mlp2_fc",
        "mlp3_fc",
    ]


def test_wrappers_take_a_nested_layer(make_config) -> None:
    model = build(
        make_config,
        input_shape=[5, 3],
        layers=[
            {"type": "Bidirectional", "layer": {"type": "lstm", "units": 4, "return_sequences": True}},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
            {"type": "GRU", "units": 3},
        ],
    )
    bi = model.layers[1]
    assert isinstance(bi, keras.layers.Bidirectional) and isinstance(bi.forward_layer, keras.layers.LSTM)
    assert bi.output.shape == (None, 5, 8)
    assert model.layers[2].output.shape == (None, 5, 2)


def test_regularization_is_the_default_kernel_regularizer(make_config) -> None:
    loaded = make_config(
        model={
            "input_shape": [4],
            "regularization": {"l2": 0.01},
            "layers": [
                {"type": "Dense", "units": 3},
                {"type": "Dense", "units": 3, "kernel_regularizer": {"type": "L1", "l1": 0.5}},
                {"type": "Dropout", "rate": 0.1},
                {"type": "Dense", "units": 1},
            ],
        }
    )
    model = build_model(loaded.config)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert isinstance(dense[0].kernel_regularizer, keras.regularizers.L2)
    assert dense[0].kernel_regularizer.l2 == pytest.approx(0.01)
    assert isinstance(dense[1].kernel_regularizer, keras.regularizers.L1)  # set explicitly: kept
    assert isinstance(dense[2].kernel_regularizer, keras.regularizers.L2)
    model(np.ones((1, 4), "float32"))
    assert len(model.losses) == 3


def test_l1_l2_regularization_reaches_wrapped_layers(make_config) -> None:
    loaded = make_config(
        model={
            "input_shape": [3, 2],
            "regularization": {"l1": 0.1, "l2": 0.2},
            "layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2}}],
        }
    )
    model = build_model(loaded.config)
    reg = model.layers[1].forward_layer.cell.kernel_regularizer
    assert isinstance(reg, keras.regularizers.L1L2)
    assert (reg.l1, reg.l2) == (pytest.approx(0.1), pytest.approx(0.2))


def test_mixed_precision_outputs_stay_float32(make_config, float32_policy) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    loaded = make_config(model={"input_shape": [4], "layers": [{"type": "Dense", "units": 3}]})
    model = build_model(loaded.config)
    assert model.layers[1].compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"
    assert model.layers[-1].name == "output_float32"
    assert model.predict_on_batch(np.ones((2, 4), "float32")).dtype == np.float32


def test_float32_models_get_no_extra_layer(make_config) -> None:
    model = build(make_config, layers=[{"type": "Dense", "units": 3}])
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense"]


def test_preprocessing_follows_the_input(make_config) -> None:
    loaded = make_config(
        model={
            "input_shape": [2],
            "layers": [{"type": "Dense", "units": 1, "kernel_initializer": "ones", "use_bias": False}],
        }
    )
    norm = keras.layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 4.0])
    model = build_model(loaded.config, [norm])
    assert model.layers[1] is norm
    out = model.predict_on_batch(np.array([[3.0, 4.0]], "float32"))
    assert out[0, 0] == pytest.approx(2.0)  # (3-1)/2 + (4-2)/2


def test_input_dtype(make_config) -> None:
    loaded = make_config(
        model={
            "input_shape": [1],
            "input_dtype": "string",
            "layers": [{"type": "StringLookup", "vocabulary": ["a", "b"]}, {"type": "Dense", "units": 1}],
        }
    )
    model = build_model(loaded.config)
    assert model.inputs[0].dtype == "string"


def test_unknown_input_name_gets_suggestion(make_config) -> None:
    msg = error_of(
        make_config,
        layers=[{"type": "Dense", "units": 2, "name": "encoder"}, {"type": "Dense", "units": 2, "inputs": ["encodr"]}],
    )
    assert (
        msg == "model.layers[1].inputs[0]: unknown input 'encodr'; inputs may name 'input' or an earlier layer. "
        "Did you mean 'encoder'?"
    )


def test_later_layer_as_input_is_a_cycle_error(make_config) -> None:
    msg = error_of(
        make_config,
        layers=[
            {"type": "Dense", "units": 2, "name": "a", "inputs": ["b"]},
            {"type": "Dense", "units": 2, "name": "b"},
        ],
    )
    assert (
        msg == "model.layers[0].inputs[0]: layer 'b' is not defined before this layer; "
        "inputs may name only earlier layers (no cycles)"
    )


def test_self_input_is_a_cycle_error(make_config) -> None:
    msg = error_of(make_config, layers=[{"type": "Dense", "units": 2, "name": "a", "inputs": ["a"]}])
    assert "layer 'a' is not defined before this layer" in msg


def test_duplicate_and_reserved_names(make_config) -> None:
    msg = error_of(
        make_config, layers=[{"type": "Dense", "units": 2, "name": "a"}, {"type": "Dense", "units": 2, "name": "a"}]
    )
    assert msg == "model.layers[1].name: duplicate layer name 'a'"
    msg = error_of(make_config, layers=[{"type": "Dense", "units": 2, "name": "input"}])
    assert msg == "model.layers[0].name: 'input' is reserved; choose another layer name"


def test_unknown_output_gets_suggestion(make_config) -> None:
    msg = error_of(make_config, layers=[{"type": "Dense", "units": 2, "name": "head"}], outputs=["haed"])
    assert msg == "model.outputs[0]: unknown output 'haed'; name a layer of model.layers. Did you mean 'head'?"


def test_block_using_itself_is_an_error(make_config) -> None:
    msg = error_of(make_config, blocks={"a": [{"block": "b"}], "b": [{"block": "a"}]}, layers=[{"block": "a"}])
    assert msg == "model.blocks.b[0].block: block 'a' uses itself (a -> b -> a)"


def test_shape_mismatch_is_wrapped_with_path(make_config) -> None:
    msg = error_of(
        make_config, layers=[{"type": "Dense", "units": 2}, {"type": "Conv2D", "filters": 2, "kernel_size": 3}]
    )
    assert msg.startswith("model.layers[1]: Conv2D: ")
    assert "ndim=4" in msg or "expected" in msg.lower()


def test_errors_are_located_in_the_file(write_config) -> None:
    from dlkit.config.loader import load_config
    from dlkit.models import validate_components

    path = write_config(
        """
        model:
          input_shape: [4]
          layers:
            - {type: Dense, units: 2, name: enc}
            - {type: Dense, units: 2, inputs: [enk]}
        loss: mse
        """
    )
    loaded = load_config([path], component_checker=validate_components)
    with pytest.raises(ConfigError) as info:
        build_model(loaded.config, where=loaded.where)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(path), 5)
