"""Names, aliases, suggestions and keyword-argument checks against the live Keras registries."""

from __future__ import annotations

import keras
import pytest

from dlkit.models import canonicalize, lookup, names, validate_components
from dlkit.models.registry import signature


def rendered(raw: dict) -> list[str]:
    return [p.render() for p in validate_components(raw)]


@pytest.mark.parametrize(
    ("kind", "alias", "canonical"),
    [
        ("layers", "conv2d", "Conv2D"),
        ("layers", "max_pooling2d", "MaxPooling2D"),
        ("layers", "batch_normalization", "BatchNormalization"),
        ("layers", "simple_rnn", "SimpleRNN"),
        ("layers", "Dense", "Dense"),
        ("optimizers", "adam", "Adam"),
        ("optimizers", "adamw", "AdamW"),
        ("callbacks", "early_stopping", "EarlyStopping"),
        ("callbacks", "model_checkpoint", "ModelCheckpoint"),
        ("schedules", "cosine_decay", "CosineDecay"),
        ("losses", "sparse_categorical_crossentropy", "sparse_categorical_crossentropy"),
        ("losses", "SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy"),
        ("losses", "mse", "mse"),
        ("metrics", "accuracy", "accuracy"),
        ("metrics", "acc", "acc"),
        ("metrics", "Accuracy", "Accuracy"),
        ("metrics", "auc", "AUC"),
        ("regularizers", "L2", "L2"),
        ("initializers", "he_normal", "HeNormal"),
        ("regularizers", "l2", "L2"),
        ("constraints", "max_norm", "MaxNorm"),
        ("activations", "relu", "relu"),
    ],
)
def test_aliases_resolve_to_canonical_names(kind: str, alias: str, canonical: str) -> None:
    entry = lookup(kind, alias)
    assert entry is not None and entry.name == canonical


def test_registries_are_read_from_keras() -> None:
    layers = names("layers")
    assert {"Dense", "Conv1D", "Conv3D", "LSTM", "GRU", "Bidirectional", "TimeDistributed", "Add"} <= set(layers)
    assert "Layer" not in layers and "Lambda" not in layers  # abstract / needs Python code
    # Every public keras.layers class that is a Layer is listed unless deliberately excluded.
    assert len(layers) > 100
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Lion"} <= set(names("optimizers"))
    assert {"EarlyStopping", "ModelCheckpoint", "TensorBoard", "CSVLogger", "ReduceLROnPlateau"} <= set(
        names("callbacks")
    )
    assert {"CosineDecay", "ExponentialDecay", "PiecewiseConstantDecay"} <= set(names("schedules"))
    assert "LearningRateSchedule" not in names("schedules")


def test_signature_follows_kwargs_to_the_base_class() -> None:
    dense = signature(keras.layers.Dense)
    assert {"units", "activation", "name", "dtype", "trainable"} <= dense.accepted
    assert dense.required == ("units",)
    sgd = signature(keras.optimizers.SGD)
    assert {"momentum", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "use_ema"} <= sgd.accepted
    assert "gradient_accumulation_steps" in sgd.accepted


def test_unknown_names_get_suggestions() -> None:
    raw = {
        "model": {"input_shape": [4], "layers": [{"type": "Dense", "units": 2}, {"type": "Dens", "units": 3}]},
        "optimizer": {"type": "adamm"},
        "loss": "sparse_categorical_crossentropyy",
        "metrics": ["acuracy"],
        "callbacks": [{"type": "EarlyStoping"}],
    }
    assert rendered(raw) == [
        "model.layers[1].type: unknown layer 'Dens'. Did you mean 'Dense'?",
        "optimizer.type: unknown optimizer 'adamm'. Did you mean 'Adam'?",
        "loss: unknown loss 'sparse_categorical_crossentropyy'. Did you mean 'sparse_categorical_crossentropy'?",
        "metrics[0]: unknown metric 'acuracy'. Did you mean 'accuracy'?",
        "callbacks[0].type: unknown callback 'EarlyStoping'. Did you mean 'EarlyStopping'?",
    ]


def test_unknown_kwargs_and_nested_components() -> None:
    raw = {
        "model": {
            "input_shape": [4],
            "layers": [
                {"type": "Dense", "units": 2, "activaton": "relu"},
                {"type": "Dense", "units": 2, "activation": "rellu", "kernel_initializer": "he_normall"},
                {"type": "Dense", "units": 2, "kernel_regularizer": {"type": "L2", "l22": 0.1}},
                {"type": "Bidirectional", "layer": {"type": "LSTM", "unitz": 3}},
                {"type": "Conv2D", "kernel_size": 3},
            ],
        },
        "optimizer": {"type": "adam", "learning_rate": {"type": "CosineDecay", "initial_learning_rate": 0.1}},
        "callbacks": [{"type": "EarlyStopping", "patiense": 2}],
    }
    assert rendered(raw) == [
        "model.layers[0].activaton: Dense has no argument 'activaton'. Did you mean 'activation'?",
        "model.layers[1].activation: unknown activation 'rellu'. Did you mean 'relu'?",
        "model.layers[1].kernel_initializer: unknown initializer 'he_normall'. Did you mean 'HeNormal'?",
        "model.layers[2].kernel_regularizer.l22: L2 has no argument 'l22'. Did you mean 'l2'?",
        "model.layers[3].layer.unitz: LSTM has no argument 'unitz'. Did you mean 'units'?",
        "model.layers[3].layer: LSTM is missing required argument 'units'",
        "model.layers[4]: Conv2D is missing required argument 'filters'",
        "optimizer.learning_rate: CosineDecay is missing required argument 'decay_steps'",
        "callbacks[0].patiense: EarlyStopping has no argument 'patiense'. Did you mean 'patience'?",
    ]


@pytest.mark.parametrize("name", ["keras.layers.Dense", "os:system", "my/module", "builtins.eval"])
def test_import_paths_are_refused(name: str) -> None:
    raw = {"model": {"input_shape": [4], "layers": [{"type": name}]}, "loss": name, "optimizer": name}
    msgs = rendered(raw)
    assert len(msgs) == 3
    for msg in msgs:
        assert f"import paths are not allowed; name a registered component (got '{name}')" in msg


def test_activation_import_path_is_refused() -> None:
    raw = {"model": {"input_shape": [4], "layers": [{"type": "Dense", "units": 1, "activation": "numpy.exp"}]}}
    assert rendered(raw) == [
        "model.layers[0].activation: import paths are not allowed; name a registered component (got 'numpy.exp')"
    ]


def test_function_names_take_arguments_through_their_class() -> None:
    ok = {"loss": {"type": "sparse_categorical_crossentropy", "from_logits": True}}
    assert rendered(ok) == []
    bad = {"loss": {"type": "mse", "from_logits": True}}
    assert rendered(bad) == ["loss.from_logits: MeanSquaredError has no argument 'from_logits'"]
    act = {
        "model": {"input_shape": [2], "layers": [{"type": "Dense", "units": 1, "activation": {"type": "relu", "x": 1}}]}
    }
    assert rendered(act) == ["model.layers[0].activation.x: 'relu' takes no arguments (got 'x')"]


def test_unknown_block_gets_suggestion() -> None:
    raw = {
        "model": {"input_shape": [4], "blocks": {"res": [{"type": "Dense", "units": 4}]}, "layers": [{"block": "rse"}]}
    }
    assert rendered(raw) == ["model.layers[0].block: unknown block 'rse' (model.blocks: res). Did you mean 'res'?"]


def test_problems_are_located_with_where() -> None:
    raw = {"model": {"input_shape": [4], "layers": [{"type": "Dens", "units": 2}]}}
    lines = {("model", "layers", 0, "type"): ("c.yaml", 7)}
    (problem,) = validate_components(raw, lambda path: lines.get(tuple(path), (None, None)))
    assert (problem.file, problem.line) == ("c.yaml", 7)
    assert problem.render() == "c.yaml:7  model.layers[0].type: unknown layer 'Dens'. Did you mean 'Dense'?"


def test_malformed_structure_is_tolerated() -> None:
    assert validate_components({"model": "oops", "metrics": "accuracy", "callbacks": {"a": 1}, "loss": 3}) == []
    assert validate_components({"model": {"layers": [3, None, {"units": 2}]}}) == []


def test_canonicalize_rewrites_types_only() -> None:
    raw = {
        "data": {"preprocessing": ["rescaling"], "augmentation": [{"type": "random_flip", "mode": "horizontal"}]},
        "model": {
            "input_shape": [4],
            "layers": [
                {"type": "dense", "units": 2, "kernel_regularizer": {"type": "l2", "l2": 0.1}, "activation": "ReLU"},
                "flatten",
                {"block": "b"},
                {"type": "bidirectional", "layer": {"type": "lstm", "units": 2}},
            ],
            "blocks": {"b": [{"type": "dropout", "rate": 0.1}]},
        },
        "optimizer": {
            "type": "adam",
            "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 1, "decay_steps": 2},
        },
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy", "auc"],
        "callbacks": ["terminate_on_nan", {"type": "Dens"}],
    }
    out = canonicalize(raw)
    assert out["data"] == {
        "preprocessing": ["Rescaling"],
        "augmentation": [{"type": "RandomFlip", "mode": "horizontal"}],
    }
    layers = out["model"]["layers"]
    assert layers[0] == {
        "type": "Dense",
        "units": 2,
        "kernel_regularizer": {"type": "L2", "l2": 0.1},
        "activation": "relu",
    }
    assert layers[1] == "Flatten"
    assert layers[2] == {"block": "b"}
    assert layers[3] == {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2}}
    assert out["model"]["blocks"] == {"b": [{"type": "Dropout", "rate": 0.1}]}
    assert out["optimizer"]["type"] == "Adam" and out["optimizer"]["learning_rate"]["type"] == "CosineDecay"
    assert out["loss"] == "sparse_categorical_crossentropy"
    assert out["metrics"] == ["accuracy", "AUC"]
    assert out["callbacks"] == ["TerminateOnNaN", {"type": "Dens"}]  # unknown names are left for validation
    assert raw["model"]["layers"][0]["type"] == "dense"  # input untouched


def test_values_keras_refuses_are_found_before_building() -> None:
    raw = {
        "model": {
            "input_shape": [4],
            "layers": [
                {"type": "Dense", "units": -3},
                {"type": "Dropout", "rate": 1.5},
                {"type": "Conv1D", "filters": 2, "kernel_size": 3, "padding": "sideways"},
            ],
        },
        "metrics": [{"type": "AUC", "num_thresholds": 1}],
    }
    msgs = rendered(raw)
    assert msgs[:2] == [
        "model.layers[0]: Dense: Received an invalid value for `units`, expected a positive integer. "
        "Received: units=-3",
        "model.layers[1]: Dropout: Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
        "Received: rate=1.5",
    ]
    assert msgs[2].startswith("model.layers[2]: Conv1D: The `padding` argument must be")  # Keras prints a set
    assert msgs[2].endswith("Received: sideways")
    assert msgs[3:] == ["metrics[0]: AUC: Argument `num_thresholds` must be an integer > 1. Received: num_thresholds=1"]


def test_trial_construction_does_not_rename_the_real_layers(make_config) -> None:
    from dlkit.models import build_model

    loaded = make_config(model={"input_shape": [3], "layers": [{"type": "Dense", "units": 2}]})
    validate_components(loaded.raw)
    first = build_model(loaded.config).layers[1].name
    validate_components(loaded.raw)
    validate_components(loaded.raw)
    keras.backend.clear_session()
    loaded = make_config(model={"input_shape": [3], "layers": [{"type": "Dense", "units": 2}]})
    assert build_model(loaded.config).layers[1].name == "dense"
    assert first.startswith("dense")
