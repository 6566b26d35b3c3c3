"""Subprocess used by test_distribute.py: trains a tiny model under one strategy, resumably.

Usage: python distribute_worker.py OUT_DIR EPOCHS. Environment:
- DLKIT_TEST_STRATEGY: none | mirrored (2 logical CPUs) | multi_worker_mirrored (TF_CONFIG). Defaults to none.
- DLKIT_TEST_LOOP: fit | custom | both (mirrored: fit, then custom_fit on a fresh identical model).
- DLKIT_TEST_SHUFFLE: set to reshuffle the training data every epoch (seeded).
- DLKIT_TEST_SLOW: seconds to sleep after each batch (gives a test time to send a signal).
Writes OUT_DIR/final-<loop>-<role>.npz (weights) and .json (history); the chief writes its resumable state
(weights + next epoch) to OUT_DIR/run, other workers to their scratch folder. Prints one line per event.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import tensorflow as tf

STRATEGY = os.environ.get("DLKIT_TEST_STRATEGY", "none")
if STRATEGY == "mirrored":  # must happen before TensorFlow initializes its devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from dlkit.config.schema import DistributionConfig  # noqa: E402
from dlkit.errors import DlkitError  # noqa: E402
from dlkit.training import distribute  # noqa: E402
from dlkit.training.multiworker import custom_fit  # noqa: E402

out, epochs = Path(sys.argv[1]), int(sys.argv[2])
strategy = distribute.get_strategy(
    DistributionConfig(strategy=STRATEGY, devices=["/cpu:0", "cpu:1"] if STRATEGY == "mirrored" else None)
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

role = distribute.task_role(strategy)
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = ((x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)).astype("int64")
# Unshuffled: tf.distribute clones the input pipeline, which changes a seeded shuffle's order.
train = tf.data.Dataset.from_tensor_slices((x, y))
if os.environ.get("DLKIT_TEST_SHUFFLE"):
    train = train.shuffle(256, seed=5, reshuffle_each_iteration=True)
train = train.batch(32)
val = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(32)


def build() -> keras.Model:
    keras.utils.set_random_seed(1)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")]
        )
        model.compile(
            # Momentum: resume must restore optimizer slots. A clip that bites on most steps: it must act on
            # the global gradient, as on one device (distribute.reduce_before_clipping).
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9, global_clipnorm=0.1),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    if strategy is not None:
        assert distribute.reduce_before_clipping(model.optimizer)
    return model


class Resume(keras.callbacks.Callback):
    """Epoch-level resumable state (weights + optimizer + next epoch) in this worker's write folder."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def save(self, next_epoch: int) -> None:
        self.model.save_weights(self.folder / "state.weights.h5")
        (self.folder / "state.json").write_text(json.dumps({"epoch": next_epoch}))

    def on_train_begin(self, logs=None):
        if (self.folder / "state.json").exists():
            self.model.load_weights(self.folder / "state.weights.h5")
            self.model._initial_epoch = json.loads((self.folder / "state.json").read_text())["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch + 1)


class Report(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        print(f"{role} epoch-begin {epoch}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        assert set(logs) == {"loss", "accuracy"}, logs
        if os.environ.get("DLKIT_TEST_SLOW"):
            time.sleep(float(os.environ["DLKIT_TEST_SLOW"]))

    def on_epoch_end(self, epoch, logs=None):
        print(f"{role} epoch-end {epoch} {json.dumps(logs)}", flush=True)


def run(loop: str) -> None:
    model = build()
    run_dir = out / f"run-{loop}"
    if distribute.is_chief(strategy):
        run_dir.mkdir(parents=True, exist_ok=True)
    with distribute.worker_dir(run_dir if distribute.is_chief(strategy) else None, strategy) as folder:
        resume, report = Resume(folder), Report()
        if loop == "custom":
            history = custom_fit(
                model,
                train,
                val,
                epochs=epochs,
                callbacks=[resume, report],
                strategy=strategy,
                # Like the trainer: a stop keeps the checkpoint of the last finished epoch; record where it hit.
                on_preempt=lambda epoch, step: (out / f"preempt-{role}.json").write_text(json.dumps([epoch, step])),
            )
        else:
            history = model.fit(train, validation_data=val, epochs=epochs, callbacks=[resume, report], verbose=0)
        print(f"{role} wrote-in {'run' if folder == run_dir else 'scratch'} {folder}", flush=True)
    np.savez(out / f"final-{loop}-{role}.npz", *model.get_weights())
    record = {"history": history.history, "batches": report.batches}
    (out / f"final-{loop}-{role}.json").write_text(json.dumps(record))
    print(f"{role} done {loop}", flush=True)


LOOP = os.environ.get("DLKIT_TEST_LOOP", "fit")
loops = ["fit", "custom"] if LOOP == "both" else [LOOP]
try:
    for name in loops:
        run(name)
except DlkitError as error:
    print(f"{role} stopped: {error}", flush=True)
    sys.exit(error.exit_code)
