"""dlkit's callbacks and checkpoint store on tiny real Keras models."""

from __future__ import annotations

import logging

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.errors import UsageError  # noqa: E402
from dlkit.training import callbacks as cb  # noqa: E402
from dlkit.training.checkpoint import CheckpointStore  # noqa: E402
from dlkit.training.frozen import config_changes  # noqa: E402


def _model(**optimizer_kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01, **optimizer_kwargs), "mse")
    return model


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype("float32")
    return x, x.sum(1, keepdims=True)


def test_checkpoint_round_trip_keeps_optimizer_state_and_prunes(tmp_path):
    model = _model()
    x, y = _data()
    store = CheckpointStore(tmp_path, keep=2)
    for epoch in (1, 2, 3):
        model.fit(x, y, epochs=1, verbose=0)
        store.save(model, epoch, {"lr": 0.01})
    assert store.epochs() == [2, 3]
    weights = [w.copy() for w in model.get_weights()]
    slots = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]

    fresh = _model()
    restored = store.restore(fresh)
    assert restored is not None and restored.epoch == 3 and restored.state["lr"] == 0.01
    assert all(np.array_equal(a, b) for a, b in zip(weights, fresh.get_weights(), strict=True))
    now = [keras.ops.convert_to_numpy(v) for v in fresh.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(slots, now, strict=True))


def test_corrupted_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    model = _model()
    x, y = _data()
    store = CheckpointStore(tmp_path, keep=2)
    model.fit(x, y, epochs=1, verbose=0)
    store.save(model, 1, {})
    model.fit(x, y, epochs=1, verbose=0)
    store.save(model, 2, {})
    newest = tmp_path / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="dlkit"):
        restored = store.restore(_model())
    assert restored is not None and restored.epoch == 1
    assert "epoch-0002.weights.h5 is corrupted or unreadable" in caplog.text
    assert "resuming from the checkpoint after epoch 1 instead" in caplog.text

    (tmp_path / "epoch-0001.weights.h5").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="no usable checkpoint"):
        store.restore(_model())


def test_gradient_monitor_logs_norm_and_clipped_fraction():
    x, y = _data()
    for clip, expected in ((1e-6, 1.0), (None, 0.0)):
        model = _model(**({"global_clipnorm": clip} if clip else {}))
        monitor = cb.GradientMonitor(model.optimizer)
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[monitor])
        assert history.history["clipped_frac"] == [expected, expected]
        assert all(n > 0 for n in history.history["grad_norm"])
        assert history.history["grad_norm_max"][0] >= history.history["grad_norm"][0]


def test_nan_guard_names_epoch_and_batches():
    guard = cb.NanGuard()
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(1, {"loss": 0.5})
    with pytest.raises(cb.Diverged, match=r"loss became nan at epoch 2, batches 3-4"):
        guard.on_train_batch_end(3, {"loss": float("nan")})


def test_metrics_csv_drops_rows_past_the_resumed_epoch(tmp_path):
    path = tmp_path / "metrics.csv"
    writer = cb.MetricsCSV(path)
    for epoch in range(3):
        writer.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 2.0, "lr": 0.1, "accuracy": 0.5})
    assert path.read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,lr"
    resumed = cb.MetricsCSV(path, initial_epoch=2)
    resumed.on_epoch_end(2, {"loss": 9.0, "val_loss": 2.0, "lr": 0.1, "accuracy": 0.5})
    lines = path.read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2", "3"]
    assert lines[-1].startswith("3,9.0,")


def test_config_changes_names_each_changed_leaf():
    old = {"layers": [{"type": "Dense", "units": 32}], "input_shape": [4]}
    new = {"layers": [{"type": "Dense", "units": 64}], "input_shape": [4]}
    assert config_changes(old, new, ("model",)) == [(("model", "layers", 0, "units"), 32, 64)]
    assert config_changes({"a": 1}, {"a": 1, "b": 2}, ("optimizer",)) == [(("optimizer", "b"), None, 2)]


@pytest.mark.parametrize("clip", [{"global_clipnorm": 0.5}, {"clipnorm": 0.5}, {"clipvalue": 0.05}, {}])
def test_gradient_monitor_leaves_the_update_bit_identical(clip):
    x, y = _data()
    plain = _model(**clip)
    plain.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    watched = _model(**clip)
    history = watched.fit(
        x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[cb.GradientMonitor(watched.optimizer)]
    )
    for a, b in zip(plain.get_weights(), watched.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert 0.0 < history.history["clipped_frac"][0] <= 1.0 or not clip


def test_gradient_monitor_norm_is_the_global_gradient_norm():
    x, y = _data(16)
    model = _model()
    with_grads = _model()
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, with_grads(x, training=True))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, with_grads.trainable_variables)
    expected = float(tf.linalg.global_norm(grads))
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb.GradientMonitor(model.optimizer)])
    assert history.history["grad_norm"][0] == pytest.approx(expected, rel=1e-5)
    assert history.history["grad_norm_max"][0] == pytest.approx(expected, rel=1e-5)


def test_first_step_records_the_first_train_batch_once():
    import time

    x, y = _data()
    model = _model()
    first = cb.FirstStep()
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(first.at)

    before = time.time()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[first, Spy()])
    assert len(seen) == 8 and len(set(seen)) == 1
    assert before <= seen[0] <= time.time()
