"""Preprocessing adapted on train ships inside the model: raw input in, same prediction after save/load."""

from __future__ import annotations

import numpy as np
from data_helpers import make_config, tiny_model

from dlkit.data import load_data


def _roundtrip(model, tmp_path, x):
    import keras

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    return model.predict_on_batch(x), loaded.predict_on_batch(x)


def test_normalization_adapts_on_train_split_and_is_saved(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((60, 3)) * [1, 10, 100] + [5, -3, 50]).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(60) % 3)
    data = {"source": "npz", "path": str(path), "validation_split": 0.2, "preprocessing": ["normalization"]}
    cfg = make_config(data, input_shape=(3,))
    bundle = load_data(cfg)
    norm = bundle.preprocessing[0]
    train_x = bundle.arrays["train"][0]
    np.testing.assert_allclose(np.ravel(norm.mean), train_x.mean(axis=0), rtol=1e-4)
    assert not np.allclose(np.ravel(norm.mean), x.mean(axis=0), rtol=1e-6), "adapted on all rows, not train"
    model = tiny_model((3,), preprocessing=bundle.preprocessing)
    raw = x[:5]
    before, after = _roundtrip(model, tmp_path, raw)
    np.testing.assert_allclose(before, after, atol=1e-6)
    standardized = model.layers[1](raw).numpy()
    np.testing.assert_allclose(standardized.mean(axis=0), ((raw - train_x.mean(0)) / train_x.std(0)).mean(0), atol=1e-3)


def test_rescaling_and_resizing_chain(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.full((6, 10, 10, 1), 255, dtype=np.uint8), y=np.arange(6) % 2)
    data = {
        "source": "npz",
        "path": str(path),
        "preprocessing": [{"type": "Rescaling", "scale": 1 / 255}, {"type": "Resizing", "height": 4, "width": 4}],
    }
    bundle = load_data(make_config(data, input_shape=(10, 10, 1), units=2))
    model = tiny_model((10, 10, 1), units=2, preprocessing=bundle.preprocessing, head=("Flatten", "Dense"))
    assert model.layers[2].output.shape == (None, 4, 4, 1)
    xb, _ = next(iter(bundle.train))
    assert xb.dtype.name == "float32" and float(xb.numpy().max()) == 255.0  # raw in the pipeline
    before, after = _roundtrip(model, tmp_path, np.full((2, 10, 10, 1), 255, dtype=np.float32))
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_text_csv_with_textvectorization_takes_raw_strings(tmp_path):
    import keras

    path = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f'"{w} movie {i}",{int(w == "good")}' for i, w in enumerate(["good", "bad"] * 10)]
    path.write_text("\n".join(rows) + "\n")
    data = {
        "source": "csv",
        "train": str(path),
        "label": "label",
        "validation_split": 0,
        "preprocessing": [{"type": "TextVectorization", "max_tokens": 30, "output_mode": "multi_hot"}],
    }
    cfg = make_config(data, input_shape=(1,), units=1, loss="binary_crossentropy")
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"input_dtype": "string"})})
    bundle = load_data(cfg)
    vec = bundle.preprocessing[0]
    assert {"good", "bad", "movie"} <= set(vec.get_vocabulary())
    inp = keras.Input((1,), dtype="string")
    out = keras.layers.Dense(1, activation="sigmoid")(vec(inp))
    model = keras.Model(inp, out)
    model.compile("adam", "binary_crossentropy")
    model.fit(bundle.train, epochs=1, verbose=0)
    raw = np.array([["good movie"], ["bad movie"]])
    before, after = _roundtrip(model, tmp_path, raw)
    np.testing.assert_allclose(before, after, atol=1e-6)
