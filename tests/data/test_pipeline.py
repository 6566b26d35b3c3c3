"""Seeded splits and per-epoch reshuffling; batching, caching and augmentation in the training pipeline only."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import make_config

from dlkit.data import load_data
from dlkit.errors import ConfigError


def _indexed(tmp_path, n=40):
    """Features whose first column is the row index, so a batch tells its order."""
    x = np.zeros((n, 4), dtype=np.float32)
    x[:, 0] = np.arange(n)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(n) % 3)
    return str(path)


def _epoch(ds):
    return [int(v) for xb, _ in ds for v in xb.numpy()[:, 0]]


def test_same_seed_same_orders_and_a_new_order_each_epoch(tmp_path):
    path = _indexed(tmp_path)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0.25, "batch_size": 8})
    a, b = load_data(cfg), load_data(cfg)
    a1, a2 = _epoch(a.train), _epoch(a.train)
    b1, b2 = _epoch(b.train), _epoch(b.train)
    assert sorted(a1) == sorted(a2) and len(a1) == 30
    assert a1 != a2, "each epoch must get a fresh order"
    assert (a1, a2) == (b1, b2), "the same seed must give the same sequence of orders"
    other = load_data(cfg.model_copy(update={"seed": 8}))
    assert _epoch(other.train) != a1


def test_every_split_turns_off_the_autotune_thread(tmp_path):
    # With autotune on, Keras dropping each epoch's unfinished iterator waits 0.5-1 s (docs/PERFORMANCE.md).
    path = _indexed(tmp_path)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0.25, "test_split": 0.25})
    bundle = load_data(cfg)
    for ds in (bundle.train, bundle.validation, bundle.test):
        assert ds.options().autotune.enabled is False
    it = iter(bundle.train)
    next(it)
    del it  # dropping a partly read iterator still works
    assert len(_epoch(bundle.train)) == 20


def test_validation_is_not_shuffled_and_holdout_is_seeded(tmp_path):
    path = _indexed(tmp_path)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0.25, "test_split": 0.25})
    a = load_data(cfg)
    val = _epoch(a.validation)
    assert val == sorted(val) and val == _epoch(a.validation)
    assert len(val) == 10 and len(_epoch(a.test)) == 10 and a.counts["train"] == 20
    assert not set(val) & set(_epoch(a.test)) and not set(val) & set(a.arrays["train"][0][:, 0].astype(int))
    again = load_data(cfg, splits=("test",))
    assert again.train is None and _epoch(again.test) == _epoch(a.test)
    other = load_data(cfg.model_copy(update={"seed": 8}), splits=("test",))
    assert _epoch(other.test) != _epoch(a.test)


def test_shuffle_off_keeps_file_order(tmp_path):
    path = _indexed(tmp_path)
    cfg = make_config({"source": "npz", "path": path, "validation_split": 0, "shuffle": False, "batch_size": 16})
    assert _epoch(load_data(cfg).train) == list(range(40))


def test_augmentation_runs_on_train_only(tmp_path):
    x = np.zeros((8, 4, 4, 1), dtype=np.float32)
    x[:, :, 0, :] = 1.0  # left column lit: a horizontal flip moves it
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(8) % 2)
    data = {
        "source": "npz",
        "path": str(path),
        "validation_split": 0.5,
        "augmentation": [{"type": "RandomFlip", "mode": "horizontal"}],
    }
    bundle = load_data(make_config(data, input_shape=(4, 4, 1), units=2))
    flipped = [float(xb.numpy()[:, :, 3, :].sum()) for _ in range(4) for xb, _ in bundle.train]
    assert any(v > 0 for v in flipped), "RandomFlip never flipped in 4 epochs"
    for xb, _ in bundle.validation:
        assert float(xb.numpy()[:, :, 3, :].sum()) == 0.0


def test_mixup_needs_one_hot_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((8, 4, 4, 3)), y=np.arange(8) % 2)
    data = {"source": "npz", "path": str(path), "augmentation": ["MixUp"]}
    pattern = r"data\.augmentation\[0\]: MixUp mixes labels, so it needs one-hot labels"
    with pytest.raises(ConfigError, match=pattern):
        load_data(make_config(data, input_shape=(4, 4, 3), units=2))
    np.savez(path, x=np.random.default_rng(0).random((8, 4, 4, 3)), y=np.eye(2)[np.arange(8) % 2])
    bundle = load_data(make_config(data, input_shape=(4, 4, 3), units=2, loss="categorical_crossentropy"))
    _, yb = next(iter(bundle.train))
    assert yb.shape == (7, 2) and np.allclose(yb.numpy().sum(axis=1), 1.0)


def test_unknown_preprocessing_layer_suggests(tmp_path):
    path = _indexed(tmp_path)
    data = {"source": "npz", "path": path, "preprocessing": [{"type": "Normalisation"}]}
    with pytest.raises(
        ConfigError,
        match=r"data\.preprocessing\[0\]\.type: unknown Keras layer 'Normalisation'\. "
        r"Did you mean 'Normalization'\?",
    ):
        load_data(make_config(data))
