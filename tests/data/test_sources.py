"""Each data source on small files the tests write."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import make_config

from dlkit.data import load_data, resolve_source
from dlkit.errors import ConfigError, DataError

CSV = """sepal,petal,color,species
5.1,1.4,red,setosa
4.9,1.3,blue,setosa
6.3,4.9,red,versicolor
5.8,4.1,green,versicolor
7.1,5.9,blue,virginica
6.5,5.5,red,virginica
"""


def test_csv_numeric_and_string_columns(tmp_path):
    path = tmp_path / "iris.csv"
    path.write_text(CSV)
    cfg = make_config({"source": "csv", "train": str(path), "label": "species", "validation_split": 0})
    bundle = load_data(cfg)
    x, y = bundle.arrays["train"]
    assert x.dtype == np.float32 and x.shape == (6, 3)
    assert bundle.feature_names == ["sepal", "petal", "color"]
    assert bundle.encoders == {"color": ["blue", "green", "red"]}
    # StringLookup codes: 0 = unseen, then the sorted vocabulary from 1
    assert x[:, 2].tolist() == [3, 1, 3, 2, 1, 3]
    assert bundle.class_names == ["setosa", "versicolor", "virginica"]
    assert y.tolist() == [0, 0, 1, 1, 2, 2]
    assert bundle.num_classes == 3 and bundle.task == "classification"
    assert list(bundle.fingerprint["files"]) == [str(path)]
    assert bundle.fingerprint["encoders"] == {"color": ["blue", "green", "red"]}
    assert bundle.fingerprint["class_names"] == ["setosa", "versicolor", "virginica"]
    from dlkit.data.csv_source import encode_column

    assert encode_column(["red", "purple"], bundle.encoders["color"]).tolist() == [3, 0]
    xb, yb = next(iter(bundle.train))
    assert xb.shape == (6, 3) and xb.dtype.name == "float32"


def test_csv_validation_and_test_files_used_as_given(tmp_path):
    for name in ("train", "val", "test"):
        (tmp_path / f"{name}.csv").write_text(CSV)
    cfg = make_config(
        {
            "source": "csv",
            "train": str(tmp_path / "train.csv"),
            "validation": str(tmp_path / "val.csv"),
            "test": str(tmp_path / "test.csv"),
            "label": "species",
            "features": ["sepal", "petal"],
            "validation_split": 0.5,
            "test_split": 0.3,
        },
        input_shape=(2,),
    )
    bundle = load_data(cfg)
    assert bundle.counts == {"train": 6, "validation": 6, "test": 6}
    assert len(bundle.fingerprint["files"]) == 3


def test_csv_bad_cell_names_file_line_and_column(tmp_path):
    rows = ["a,b,y"] + [f"{i},{i * 2},{i % 2}" for i in range(30)]
    rows[17] = "16,oops,0"
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "y"}, input_shape=(2,), units=2)
    with pytest.raises(DataError) as err:
        load_data(cfg)
    assert str(err.value) == (
        f"{path}:18  data.train: column 2 'b': 'oops' is not a number (the rest of the column is). "
        "Fix the cell, or leave it empty to mark a missing value."
    )


def test_csv_ragged_row_and_unknown_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n3,4\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "y"}, input_shape=(2,))
    with pytest.raises(DataError, match=r"d\.csv:3  data\.train: expected 3 columns like the header, found 2"):
        load_data(cfg)
    path.write_text("a,b,y\n1,2,0\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "yy"}, input_shape=(2,))
    with pytest.raises(DataError, match=r"d\.csv:1  data\.label: no column 'yy' in the header\. Did you mean 'y'\?"):
        load_data(cfg)


def test_missing_file_is_a_data_error(tmp_path):
    cfg = make_config({"source": "csv", "train": str(tmp_path / "nope.csv"), "label": "y"})
    with pytest.raises(DataError, match=r"nope\.csv  data\.train: file not found") as err:
        load_data(cfg)
    assert err.value.exit_code == 3


def test_npz_with_custom_keys_and_holdout(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, feats=rng.standard_normal((50, 4)), labels=rng.integers(0, 3, 50))
    cfg = make_config({"source": "npz", "path": str(path), "x_key": "feats", "y_key": "labels", "test_split": 0.2})
    bundle = load_data(cfg)
    assert bundle.counts == {"train": 35, "test": 10, "validation": 5}
    assert sum(bundle.counts.values()) == 50
    x, _ = bundle.arrays["train"]
    assert x.dtype == np.float32


def test_npz_errors(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((5, 4)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"'x' has 5 samples but 'y' has 4"):
        load_data(make_config({"source": "npz", "path": str(path)}))
    np.savez(path, x=np.zeros((5, 4)), labels=np.zeros(5))
    with pytest.raises(DataError, match=r"data\.y_key: no array 'y' in the archive\. Did you mean 'x'\?|no array 'y'"):
        load_data(make_config({"source": "npz", "path": str(path)}))
    path.write_text("not a zip")
    with pytest.raises(DataError, match=r"cannot read as \.npz"):
        load_data(make_config({"source": "npz", "path": str(path)}))


def test_image_folder_decodes_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    cfg = make_config(
        {
            "source": "images",
            "path": str(tmp_path / "imgs"),
            "image_size": [8, 8],
            "validation_split": 0.25,
            "batch_size": 4,
        },
        input_shape=(8, 8, 3),
        units=2,
    )
    bundle = load_data(cfg)
    assert bundle.class_names == ["cat", "dog"] and bundle.num_classes == 2
    assert bundle.counts == {"train": 9, "validation": 3}
    assert bundle.arrays == {}
    x, y = next(iter(bundle.train))
    assert x.shape == (4, 8, 8, 3) and x.dtype.name == "float32"
    assert float(x.numpy().max()) <= 255.0
    sample, label = next(iter(bundle.unbatched("validation")))
    assert sample.shape == (8, 8, 3) and int(label) in (0, 1)


def test_tfrecord_with_feature_spec(tmp_path):
    import tensorflow as tf

    path = tmp_path / "d.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(20):
            ex = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[i, i + 1.0, i + 2.0, 0.5])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                    }
                )
            )
            writer.write(ex.SerializeToString())
    cfg = make_config(
        {
            "source": "tfrecord",
            "path": str(path),
            "label": "label",
            "feature_spec": {"x": {"dtype": "float32", "shape": [4]}, "label": {"dtype": "int64"}},
            "validation_split": 0,
        }
    )
    bundle = load_data(cfg)
    x, y = bundle.arrays["train"]
    assert x.shape == (20, 4) and x[3].tolist() == [3, 4, 5, 0.5]
    assert y.tolist() == [i % 3 for i in range(20)]
    bad = make_config({**cfg.data.model_dump(), "feature_spec": {"x": {"shape": [5]}, "label": {"dtype": "int64"}}})
    with pytest.raises(DataError, match=r"records do not match data\.feature_spec"):
        load_data(bad)


@pytest.mark.parametrize(
    ("name", "shape", "count", "classes"),
    [("iris", (4,), 150, 3), ("digits", (8, 8, 1), 1797, 10), ("digits", (64,), 1797, 10), ("wine", (13,), 178, 3)],
)
def test_sklearn_datasets(name, shape, count, classes):
    cfg = make_config({"source": f"sklearn:{name}", "validation_split": 0.2}, input_shape=shape, units=classes)
    bundle = load_data(cfg, splits=("validation",))
    assert bundle.train is None and bundle.validation is not None
    assert sum(bundle.counts.values()) == count
    assert bundle.arrays["train"][0].shape[1:] == shape
    assert bundle.num_classes == classes


def test_sklearn_regression():
    cfg = make_config({"source": "sklearn:diabetes"}, input_shape=(10,), units=1, loss="mse")
    bundle = load_data(cfg, splits=())
    assert bundle.task == "regression" and bundle.num_classes is None
    assert bundle.arrays["train"][1].dtype == np.float32


def test_synthetic_labels_follow_the_loss():
    cfg = make_config({"source": "synthetic", "samples": 64}, input_shape=(5,), units=4)
    x, y = load_data(cfg, splits=()).arrays["train"]
    assert x.shape[1:] == (5,) and set(np.unique(y)) <= {0, 1, 2, 3} and y.dtype == np.int64
    cfg = make_config(
        {"source": "synthetic", "samples": 64}, input_shape=(5,), units=4, loss="categorical_crossentropy"
    )
    _, y = load_data(cfg, splits=()).arrays["train"]
    assert y.shape[1] == 4 and np.all(y.sum(axis=1) == 1)
    cfg = make_config({"source": "synthetic", "samples": 64}, input_shape=(5,), units=2, loss="mse")
    _, y = load_data(cfg, splits=()).arrays["train"]
    assert y.shape[1:] == (2,) and y.dtype == np.float32
    a = load_data(cfg, splits=()).arrays["train"][0]
    b = load_data(cfg.model_copy(update={"seed": 8}), splits=()).arrays["train"][0]
    assert not np.array_equal(a, b)


def test_unknown_source_and_dataset_names():
    with pytest.raises(ConfigError, match=r"unknown data source 'cvs'\. Did you mean 'csv'\?"):
        resolve_source("cvs")
    with pytest.raises(ConfigError, match=r"unknown keras dataset 'minst'\. Did you mean 'keras:mnist'\?"):
        resolve_source("keras:minst")


def test_keras_dataset_bad_archive_and_failed_download(tmp_path, monkeypatch):
    fake = tmp_path / "mnist.npz"
    np.savez(fake, x_train=np.zeros((2, 28, 28)))
    monkeypatch.setattr("urllib.request.urlretrieve", _no_network)
    cfg = make_config({"source": "keras:mnist", "path": str(fake)}, input_shape=(28, 28), units=10)
    with pytest.raises(DataError, match=r"data\.path: keras:mnist: the archive .* failed") as err:
        load_data(cfg)
    assert "original archive" in str(err.value)
    import keras

    def offline(*a, **k):
        raise Exception("URL fetch failure on https://x/mnist.npz: None -- no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    cfg = make_config({"source": "keras:mnist"}, input_shape=(28, 28), units=10)
    with pytest.raises(DataError, match=r"data\.source: keras:mnist: downloading .* failed: URL fetch failure") as err:
        load_data(cfg)
    assert "set data.path to the file" in str(err.value)


def _no_network(*args, **kwargs):
    raise OSError("no network in tests")


def test_keras_dataset_offline_archive_is_read(tmp_path, monkeypatch):
    """A genuine archive layout with the hash check patched out reads through Keras' own loader."""
    import keras.src.utils.file_utils as fu

    monkeypatch.setattr(fu, "validate_file", lambda *a, **k: True)
    monkeypatch.setattr("urllib.request.urlretrieve", _no_network)
    archive = tmp_path / "mnist.npz"
    rng = np.random.default_rng(0)
    np.savez(
        archive,
        x_train=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 20, dtype=np.uint8),
        x_test=rng.integers(0, 255, (5, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 5, dtype=np.uint8),
    )
    cfg = make_config({"source": "keras:mnist", "path": str(archive)}, input_shape=(28, 28, 1), units=10)
    bundle = load_data(cfg, splits=())
    assert bundle.counts == {"train": 18, "test": 5, "validation": 2}
    assert bundle.arrays["train"][0].shape[1:] == (28, 28, 1)
    assert bundle.fingerprint["files"] == {str(archive): bundle.fingerprint["files"][str(archive)]}


def test_tfds_missing_is_a_clear_error():
    pytest.importorskip("tensorflow")
    try:
        import tensorflow_datasets  # noqa: F401

        pytest.skip("tensorflow-datasets is installed")
    except ImportError:
        pass
    cfg = make_config({"source": "tfds:mnist"}, input_shape=(28, 28, 1), units=10)
    with pytest.raises(DataError, match=r"tfds:mnist needs the optional package tensorflow-datasets"):
        load_data(cfg)


def test_image_folder_matches_keras_image_dataset_from_directory(tmp_path):
    import keras
    from PIL import Image

    rng = np.random.default_rng(1)
    for label in ("b_cls", "a_cls"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (9, 7), dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    cfg = make_config(
        {
            "source": "images",
            "path": str(tmp_path),
            "image_size": [5, 6],
            "color_mode": "grayscale",
            "validation_split": 0,
        },
        input_shape=(5, 6, 1),
        units=2,
    )
    ours = [(x.numpy(), int(y)) for x, y in load_data(cfg).unbatched("train")]
    theirs = keras.utils.image_dataset_from_directory(
        tmp_path, image_size=(5, 6), color_mode="grayscale", batch_size=None, shuffle=False
    )
    theirs = [(x.numpy(), int(y)) for x, y in theirs]
    assert [y for _, y in ours] == [y for _, y in theirs] == [0, 0, 0, 1, 1, 1]
    for (a, _), (b, _) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_image_splits_need_the_same_classes(tmp_path):
    from PIL import Image

    for split, classes in (("train", ("a", "b")), ("val", ("a", "c"))):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / split / c / "0.png")
    data = {"source": "images", "train": str(tmp_path / "train"), "validation": str(tmp_path / "val")}
    with pytest.raises(DataError, match=r"data\.validation: class folders \['a', 'c'\] differ from the training"):
        load_data(make_config(data, input_shape=(4, 4, 3), units=2))


def test_keras_imdb_offline_pads_to_input_length(tmp_path, monkeypatch):
    import keras.src.utils.file_utils as fu

    monkeypatch.setattr(fu, "validate_file", lambda *a, **k: True)
    monkeypatch.setattr("urllib.request.urlretrieve", _no_network)
    rng = np.random.default_rng(0)

    def seqs(n):
        out = np.empty(n, dtype=object)
        out[:] = [[int(v) for v in rng.integers(1, 500, rng.integers(3, 30))] for _ in range(n)]
        return out

    archive = tmp_path / "imdb.npz"
    np.savez(archive, x_train=seqs(12), y_train=np.arange(12) % 2, x_test=seqs(4), y_test=np.arange(4) % 2)
    data = {"source": "keras:imdb", "path": str(archive), "validation_split": 0}
    cfg = make_config(data, input_shape=(20,), units=1, loss="binary_crossentropy")
    cfg = cfg.model_copy(
        update={
            "model": cfg.model.model_validate(
                {
                    "input_shape": [20],
                    "layers": [
                        {"type": "Embedding", "input_dim": 100, "output_dim": 4},
                        "GlobalAveragePooling1D",
                        {"type": "Dense", "units": 1, "activation": "sigmoid"},
                    ],
                }
            )
        }
    )
    bundle = load_data(cfg, splits=())
    x, y = bundle.arrays["train"]
    assert x.shape == (12, 20) and int(x.max()) < 100  # num_words from the Embedding's input_dim
    assert bundle.counts == {"train": 12, "test": 4} and bundle.task == "binary"


def test_unused_keys_names_only_non_default_values():
    """A run's saved config.yaml spells out every default; those are not the user's choices."""
    from dlkit.config.schema import DataConfig
    from dlkit.data.sources import unused_keys

    saved = DataConfig.model_validate({"source": "sklearn:digits", "x_key": "x", "samples": 1024, "color_mode": "rgb"})
    assert unused_keys("sklearn:digits", saved) == []
    chosen = DataConfig.model_validate({"source": "sklearn:digits", "x_key": "features", "label": "y"})
    assert unused_keys("sklearn:digits", chosen) == ["label", "x_key"]


def test_image_folder_without_class_subfolders(tmp_path):
    (tmp_path / "imgs").mkdir()
    cfg = make_config({"source": "images", "train": str(tmp_path / "imgs")}, input_shape=(8, 8, 3))
    with pytest.raises(DataError) as err:
        load_data(cfg)
    assert str(err.value) == (
        f"{tmp_path / 'imgs'}  data.train: no class subfolders found. Expected FOLDER/<class name>/<image> "
        "with images ending in .bmp .gif .jpeg .jpg .png."
    )


def test_missing_file_suggests_only_a_near_name(tmp_path):
    for name in ("train.csv", "inf.csv"):
        (tmp_path / name).write_text("a,y\n1,0\n")
    for given, hint in (("trian.csv", " Did you mean 'train.csv'?"), ("missing.csv", "")):
        cfg = make_config({"source": "csv", "train": str(tmp_path / given), "label": "y"}, input_shape=(1,))
        with pytest.raises(DataError) as err:
            load_data(cfg)
        assert str(err.value) == (
            f"{tmp_path / given}  data.train: file not found.{hint} "
            "Relative paths resolve against the folder of the config file that names them."
        )


def test_asking_for_a_split_that_was_not_loaded(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((6, 4), np.float32), y=np.arange(6) % 3)
    bundle = load_data(make_config({"source": "npz", "path": str(path), "validation_split": 0}))
    with pytest.raises(DataError) as err:
        bundle.unbatched("validation")
    assert str(err.value) == (
        "data.validation: there is no validation split (loaded: train). "
        "Give data.validation or a data.validation_split fraction."
    )


def test_a_file_that_is_not_an_image_is_named_before_training(tmp_path):
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i, suffix in enumerate(("png", "jpg", "bmp", "gif")):  # every supported format passes the check
            Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / label / f"{i}.{suffix}")
    bad = tmp_path / "imgs" / "dog" / "notes.png"
    bad.write_text("not an image")
    cfg = make_config({"source": "images", "path": str(tmp_path / "imgs")}, input_shape=(6, 6, 3))
    with pytest.raises(DataError) as err:
        load_data(cfg)
    assert str(err.value) == f"{bad}  data.path: not a PNG, JPEG, GIF or BMP image. Replace or remove the file."
    bad.unlink()
    assert sum(load_data(cfg).counts.values()) == 8  # PNG, JPEG, BMP and GIF files all load


def test_semicolon_csv_is_explained(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b;y\n1;2;0\n3;4;1\n")
    cfg = make_config({"source": "csv", "train": str(path), "label": "y"}, input_shape=(2,))
    with pytest.raises(DataError) as err:
        load_data(cfg)
    assert str(err.value) == (
        f"{path}:1  data.label: no column 'y' in the header. The header is one column: the file seems to separate "
        "values with ';'; dlkit reads commas."
    )


def test_truncated_tfrecord_says_so_in_one_line(tmp_path):
    import tensorflow as tf

    path = tmp_path / "d.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(20):
            feature = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i), 1.0])),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    path.write_bytes(path.read_bytes()[:-10])
    spec = {"x": {"dtype": "float32", "shape": [2]}, "y": {"dtype": "int64"}}
    cfg = make_config({"source": "tfrecord", "path": str(path), "feature_spec": spec, "label": "y"}, input_shape=(2,))
    with pytest.raises(DataError) as err:
        load_data(cfg)
    message = str(err.value)
    assert message.startswith(f"{path}  data.path: not a valid TFRecord file (truncated record at ")
    assert "{{function_node" not in message and "[Op:" not in message and "\n" not in message
