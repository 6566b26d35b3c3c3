"""Every preflight case, with its pinned message (exit 3, file, key, fix)."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import make_config, tiny_model

from dlkit.data import load_data, preflight
from dlkit.errors import DataError


def _npz(tmp_path, x, y, name="d.npz"):
    path = tmp_path / name
    np.savez(path, x=np.asarray(x), y=np.asarray(y))
    return str(path)


def _check(cfg, model):
    bundle = load_data(cfg, splits=())
    preflight(cfg, bundle, model)
    return bundle


def test_clean_data_passes(tmp_path):
    path = _npz(tmp_path, np.ones((10, 4)), np.arange(10) % 3)
    _check(make_config({"source": "npz", "path": path}), tiny_model((4,)))


def test_nan_names_csv_line_and_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n3,nan,1\n5,6,0\n,8,1\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "y", "validation_split": 0}, input_shape=(2,))
    with pytest.raises(DataError) as err:
        load_data(cfg)
    assert err.value.exit_code == 3
    assert str(err.value).splitlines() == [
        f"{path}:3  data.train: column 'b' is nan (2 train rows hold NaN/Inf). Fix or remove the value, "
        "or set data.nan_policy: drop to skip such rows.",
        f"{path}:5  data.train: column 'a' is nan. Fix or remove the value, or set data.nan_policy: drop to skip "
        "such rows.",
    ]


def test_nan_policy_drop_drops_rows(tmp_path, caplog):
    x = np.ones((10, 4), dtype=np.float32)
    x[2, 1] = np.inf
    y = np.arange(10, dtype=np.float32)
    y[5] = np.nan
    path = _npz(tmp_path, x, y)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0, "nan_policy": "drop"}, loss="mse", units=1)
    with caplog.at_level("WARNING", logger="dlkit.data"):
        bundle = load_data(cfg, splits=())
    assert bundle.counts == {"train": 8}
    assert "dropped 2 of 10 train rows holding NaN/Inf" in caplog.text
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, loss="mse", units=1)
    with pytest.raises(DataError, match=r"data\.path: row 2: feature 1 is inf \(2 train rows hold NaN/Inf\)"):
        load_data(cfg, splits=())


def test_empty_split(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.zeros(4, dtype=int))
    empty = _npz(tmp_path, np.ones((0, 4)), np.zeros(0, dtype=int), name="empty.npz")
    cfg = make_config({"source": "npz", "train": path, "validation": empty})
    with pytest.raises(DataError, match=r"empty\.npz  data\.validation: the validation split is empty\. Add samples\."):
        load_data(cfg)


def test_feature_count_must_match_input_shape(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,y\n1,2,3,0\n4,5,6,1\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "y", "validation_split": 0}, input_shape=(2,))
    with pytest.raises(DataError) as err:
        _check(cfg, tiny_model((2,)))
    assert str(err.value) == (
        f"{path}  model.input_shape: the data has 3 feature columns (a, b, c) but model.input_shape is [2]. "
        "Set model.input_shape: [3], or list the columns to use in data.features."
    )


def test_sample_shape_must_match_input_shape(tmp_path):
    path = _npz(tmp_path, np.ones((6, 8, 8)), np.zeros(6, dtype=int))
    cfg = make_config({"source": "npz", "path": path}, input_shape=(64,))
    with pytest.raises(
        DataError,
        match=r"model\.input_shape: the data has samples of shape \[8, 8\] but model\.input_shape is \[64\]\. "
        r"Set model\.input_shape: \[8, 8\]\.",
    ):
        _check(cfg, tiny_model((64,)))


def test_label_out_of_range_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,0\n2,1\n3,2\n4,7\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "y", "validation_split": 0}, input_shape=(1,))
    with pytest.raises(DataError) as err:
        _check(cfg, tiny_model((1,), units=3))
    assert str(err.value) == (
        f"{path}:5  data.train: label 7 at line 5 is out of range for the model's 3 outputs "
        "(classes 0-2; 1 train labels out of range). Set the last layer's units (or data.num_classes) to 8, "
        "or fix the labels."
    )


def test_class_labels_must_be_integers(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.array([0, 1.5, 2, 1]))
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0})
    with pytest.raises(DataError, match=r"data\.path: class labels must be integers; row 1 has 1\.5\. For real-valued"):
        _check(cfg, tiny_model((4,)))


def test_integer_labels_with_categorical_loss_suggest_sparse(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.array([0, 1, 2, 1]))
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, loss="categorical_crossentropy")
    with pytest.raises(DataError) as err:
        _check(cfg, tiny_model((4,)))
    assert str(err.value) == (
        f"{path}  data.path: labels are class indices but categorical_crossentropy expects one-hot rows. "
        "Did you mean 'sparse_categorical_crossentropy'? Set loss: sparse_categorical_crossentropy."
    )


def test_one_hot_labels_with_sparse_loss_suggest_categorical(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.eye(3)[[0, 1, 2, 1]])
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0})
    with pytest.raises(
        DataError,
        match=r"labels are one-hot rows \(3 columns\) but sparse_categorical_crossentropy expects class indices\. "
        r"Did you mean 'categorical_crossentropy'\?",
    ):
        _check(cfg, tiny_model((4,)))


def test_output_rank_names_the_missing_layer(tmp_path):
    path = _npz(tmp_path, np.ones((4, 6, 6, 1)), np.array([0, 1, 2, 1]))
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, input_shape=(6, 6, 1), units=10)
    with pytest.raises(DataError) as err:
        _check(cfg, tiny_model((6, 6, 1), units=10))
    assert str(err.value) == (
        f"{path}  data.path: the model's output has shape [None, 6, 6, 10] but labels are class indices. "
        "Add a Flatten (or GlobalAveragePooling2D) layer before the last Dense."
    )
    _check(cfg, tiny_model((6, 6, 1), units=10, head=("Flatten", "Dense")))


def test_binary_labels_and_width(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.array([0, 1, 3, 1]))
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, loss="binary_crossentropy", units=1)
    with pytest.raises(DataError, match=r"binary_crossentropy expects labels in \[0, 1\]; row 2 has \[3\]"):
        _check(cfg, tiny_model((4,), units=1))
    path = _npz(tmp_path, np.ones((4, 4)), np.array([0, 1, 0, 1]), name="b.npz")
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, loss="binary_crossentropy", units=3)
    with pytest.raises(DataError, match=r"labels have 1 value\(s\) per sample but the model has 3 outputs"):
        _check(cfg, tiny_model((4,), units=3))


def test_regression_target_width(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.ones((4, 2)))
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, loss="mse", units=1)
    with pytest.raises(DataError, match=r"labels have 2 value\(s\) per sample but the model has 1 outputs\. "):
        _check(cfg, tiny_model((4,), units=1))


def test_image_shape_must_match(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(tmp_path / label / "0.png")
    cfg = make_config(
        {"source": "images", "path": str(tmp_path), "image_size": [4, 4], "validation_split": 0},
        input_shape=(4, 4, 1),
        units=2,
    )
    with pytest.raises(DataError, match=r"the data has images that decode to \[4, 4, 3\] but model\.input_shape is "):
        _check(cfg, tiny_model((4, 4, 1), units=2, head=("Flatten", "Dense")))


def test_num_classes_must_match_output_width(tmp_path):
    path = _npz(tmp_path, np.ones((4, 4)), np.array([0, 1, 2, 1]))
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0, "num_classes": 5})
    with pytest.raises(DataError, match=r"data\.num_classes: data\.num_classes is 5 but the model has 3 outputs\."):
        _check(cfg, tiny_model((4,), units=3))


def test_held_out_split_of_the_same_file_reports_a_problem_once(tmp_path):
    path = _npz(tmp_path, np.ones((8, 6, 6, 1)), np.arange(8) % 3)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0.5}, input_shape=(6, 6, 1), units=10)
    with pytest.raises(DataError) as err:
        _check(cfg, tiny_model((6, 6, 1), units=10))
    assert str(err.value) == (
        f"{path}  data.path: the model's output has shape [None, 6, 6, 10] but labels are class indices. "
        "Add a Flatten (or GlobalAveragePooling2D) layer before the last Dense."
    )


def test_wrong_input_shape_is_reported_alone(tmp_path):
    # the output rank follows from the wrong input shape: no misleading "add a Flatten" next to it
    path = _npz(tmp_path, np.ones((6, 64)), np.arange(6) % 3)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0}, input_shape=(8, 8))
    with pytest.raises(DataError) as err:
        _check(cfg, tiny_model((8, 8)))
    assert str(err.value) == (
        f"{path}  model.input_shape: the data has samples of shape [64] but model.input_shape is [8, 8]. "
        "Set model.input_shape: [64]."
    )
