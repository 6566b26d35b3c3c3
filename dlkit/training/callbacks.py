"""dlkit's own callbacks: divergence guard, gradient monitor, learning-rate log, metrics.csv, epoch checkpoints.

None of them does per-batch Python work beyond a flag/finite check at each batch end, which Keras calls once per
``steps_per_execution`` group. The gradient statistics are accumulated in TensorFlow variables inside the compiled
train step and read once per epoch.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dlkit.atomic import save_with, write_bytes, write_text
from dlkit.training.checkpoint import CheckpointStore

log = logging.getLogger("dlkit.training.callbacks")

VANISH = 1e-7
EXPLODE = 1e4


class Diverged(Exception):
    """Raised inside ``fit`` when the loss (or a weight) is NaN/Inf."""

    def __init__(self, epoch: int, batch: int | None, first_batch: int | None, what: str) -> None:
        where = f"epoch {epoch + 1}"
        if batch is not None:
            span = f"batch {batch + 1}" if first_batch in (None, batch) else f"batches {first_batch + 1}-{batch + 1}"
            where += f", {span}"
        super().__init__(f"{what} at {where}")
        self.epoch = epoch
        self.batch = batch
        self.what = what


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class NanGuard(keras.callbacks.Callback):
    """Stops training with :class:`Diverged` on a non-finite loss (batch ends) or weight (epoch ends).

    Unlike Keras' ``TerminateOnNaN`` it raises, so ``fit`` leaves without writing the NaN state anywhere.
    """

    def __init__(self) -> None:
        super().__init__()
        self._epoch = 0
        self._last_end = -1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._last_end = -1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss):
            raise Diverged(self._epoch, batch, self._last_end + 1, f"loss became {float(loss)}")
        self._last_end = batch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            if key in ("loss", "val_loss") and not _finite(value):
                raise Diverged(epoch, None, None, f"{key} became {float(value)}")
        for weight in self.model.weights:
            if not bool(keras.ops.convert_to_numpy(keras.ops.all(keras.ops.isfinite(weight)))):  # reduced on device
                raise Diverged(epoch, None, None, f"weight {weight.path} became non-finite")


def clip_settings(optimizer: Any) -> dict[str, float]:
    """The clip arguments set on ``optimizer`` (the inner one under loss scaling)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return {k: float(v) for k in ("clipnorm", "clipvalue", "global_clipnorm") if (v := getattr(inner, k, None))}


class GradientMonitor(keras.callbacks.Callback):
    """Global gradient norm and clipped-step fraction per epoch, added to the epoch logs.

    The optimizer's ``_clip_gradients`` (called by ``apply`` inside the compiled train step, on unscaled
    gradients under loss scaling) is wrapped on the instance. The global norm is computed once, as Keras computes
    it, and reused: under ``global_clipnorm`` the clipping scales by it with Keras' own formula (the update is
    bit-identical to an unmonitored run), under ``clipnorm`` the per-tensor squared sums decide "clipped". One
    stacked TF variable ``[sum of norms, max norm, steps, clipped steps]`` is updated per step and read once per
    epoch, so the monitor adds no per-batch Python work. Logs ``grad_norm`` (mean over steps), ``grad_norm_max``
    and ``clipped_frac``; warns when gradients vanish (< 1e-7) or explode (> 1e4 or non-finite).

    Args:
        optimizer: The compiled model's optimizer.
    """

    def __init__(self, optimizer: Any) -> None:
        super().__init__()
        import tensorflow as tf

        self.inner = getattr(optimizer, "inner_optimizer", optimizer)
        self.clip = clip_settings(optimizer)
        self.stats = tf.Variable(
            tf.zeros([4], tf.float32),
            trainable=False,
            name="dlkit_grad_stats",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        original = self.inner._clip_gradients
        monitor = self

        def _clip_gradients(grads: list[Any]) -> list[Any]:
            return monitor._clip_and_record(grads, original)

        self.inner._clip_gradients = _clip_gradients

    def _clip_and_record(self, grads: list[Any], original: Callable[[list[Any]], list[Any]]) -> list[Any]:
        import tensorflow as tf

        ops = keras.ops
        squares = [ops.sum(ops.square(g)) for g in grads if g is not None]
        if not squares:
            return original(grads)
        stacked = ops.stack(squares)
        norm = ops.sqrt(ops.sum(stacked))  # keras.src.optimizers.base_optimizer.global_norm, op for op
        limit = self.clip.get("global_clipnorm")
        if limit:
            # Keras' clip_by_global_norm with the norm computed above (it would compute the same norm again).
            scale = limit * ops.minimum(1.0 / norm, 1.0 / limit)
            scale = scale + (norm - norm)
            out = [g * scale if g is not None else g for g in grads]
            clipped = norm > limit
        else:
            out = original(grads)
            if "clipnorm" in self.clip:
                clipped = ops.max(stacked) > self.clip["clipnorm"] ** 2
            elif "clipvalue" in self.clip:
                peaks = [ops.max(ops.abs(g)) for g in grads if g is not None]
                clipped = ops.max(ops.stack(peaks)) > self.clip["clipvalue"]
            else:
                clipped = tf.constant(False)
        norm32 = tf.cast(norm, tf.float32)
        # One elementwise update: max(stats + [norm, 0, 1, clipped], [-inf, norm, -inf, -inf]).
        low = -math.inf
        step = tf.stack([norm32, 0.0, 1.0, tf.cast(clipped, tf.float32)])
        self.stats.assign(tf.maximum(self.stats + step, tf.stack([low, norm32, low, low])))
        return out

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.stats.assign(keras.ops.zeros([4]))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        total, peak, steps, clipped = (float(v) for v in self.stats.numpy())
        if not steps or logs is None:
            return
        mean = total / steps
        logs["grad_norm"] = mean
        logs["grad_norm_max"] = peak
        logs["clipped_frac"] = clipped / steps
        if mean < VANISH:
            log.warning("epoch %d: gradients vanish (mean global norm %.3g < %g)", epoch + 1, mean, VANISH)
        elif not math.isfinite(peak) or peak > EXPLODE:
            log.warning("epoch %d: gradients explode (max global norm %.3g)", epoch + 1, peak)


def current_lr(optimizer: Any) -> float | None:
    """The optimizer's current learning rate as a float (schedules evaluated at the current step)."""
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


class LearningRateLog(keras.callbacks.Callback):
    """Adds ``lr`` to the epoch logs (so metrics.csv and TensorBoard show it)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        lr = current_lr(self.model.optimizer)
        if logs is not None and lr is not None:
            logs["lr"] = lr


class EpochTimer(keras.callbacks.Callback):
    """Adds ``time`` (training seconds, validation excluded) and ``samples_per_s`` to the epoch logs."""

    def __init__(self, train_samples: int | None) -> None:
        super().__init__()
        self.train_samples = train_samples
        self._start = 0.0
        self._train_end: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._train_end = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        end = self._train_end or time.perf_counter()
        seconds = max(end - self._start, 1e-9)
        if logs is not None:
            logs["time"] = round(seconds, 4)
            if self.train_samples:
                logs["samples_per_s"] = round(self.train_samples / seconds, 1)


class MetricsCSV(keras.callbacks.Callback):
    """``metrics.csv``: one row per epoch, rewritten atomically; rows past ``initial_epoch`` dropped on resume."""

    LEAD = ("epoch", "loss")
    TAIL = ("lr", "grad_norm", "grad_norm_max", "clipped_frac", "time", "samples_per_s")

    def __init__(self, path: str | Path, initial_epoch: int = 0) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, str]] = []
        self.columns: list[str] = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or [])
                self.rows = [r for r in reader if r.get("epoch", "").isdigit() and int(r["epoch"]) <= initial_epoch]

    def _order(self, keys: list[str]) -> list[str]:
        middle = sorted(k for k in keys if k not in self.LEAD + self.TAIL and not k.startswith("val_"))
        val = sorted(k for k in keys if k.startswith("val_"))
        return [k for k in self.LEAD if k in keys] + middle + val + [k for k in self.TAIL if k in keys]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": str(epoch + 1)}
        for key, value in (logs or {}).items():
            try:
                row[key] = repr(float(value))
            except (TypeError, ValueError):
                continue
        self.rows = [r for r in self.rows if r.get("epoch") != row["epoch"]] + [row]
        keys = set(self.columns) | set(row)
        self.columns = self._order(list(keys))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, out.getvalue())


# Attributes Keras drops on resume, per callback class (restored after their on_train_begin resets them).
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "ModelCheckpoint": ("best",),
}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "numpy"):
        return np.asarray(keras.ops.convert_to_numpy(value)).item()
    return value


def _rng_variables(model: Any) -> list[Any]:
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def rng_state(model: Any) -> list[list[Any]]:
    """Values of the model's variables that ``save_weights`` skips: the SeedGenerator states of Dropout and
    other random layers. Without them a resumed run draws different dropout masks."""
    return [keras.ops.convert_to_numpy(v).tolist() for v in _rng_variables(model)]


def set_rng_state(model: Any, values: list[list[Any]] | None) -> None:
    """Restore what :func:`rng_state` saved (ignored when the variable layout differs)."""
    variables = _rng_variables(model)
    if not values or len(values) != len(variables):
        return
    for var, value in zip(variables, values, strict=True):
        var.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(var.dtype)))


def layers_rng_state(layers: list[Any]) -> list[list[Any]]:
    """SeedGenerator states of layers outside the model (``data.augmentation``, applied in the tf.data pipeline).

    At an epoch end the epoch's pipeline is exhausted, so these are exactly the states the next epoch starts from.
    """
    return [keras.ops.convert_to_numpy(v).tolist() for layer in layers for v in layer.variables]


def set_layers_rng_state(layers: list[Any], values: list[list[Any]] | None) -> None:
    """Restore what :func:`layers_rng_state` saved (ignored when the layout differs)."""
    variables = [v for layer in layers for v in layer.variables]
    if not values or len(values) != len(variables):
        return
    for var, value in zip(variables, values, strict=True):
        var.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(var.dtype)))


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the resume checkpoint at each epoch end and ``best.keras`` when the monitored value improves.

    Placed after the config's callbacks so their state (EarlyStopping wait/best, ReduceLROnPlateau,
    ModelCheckpoint best) is captured after they ran, and restored in ``on_train_begin`` after they reset it.

    Args:
        store: The run's checkpoint store.
        tracked: The config's callbacks whose state is kept.
        monitor: What ``best.keras`` tracks (``val_loss`` when there is validation data, else ``loss``).
        restore: State from the checkpoint being resumed, or None.
        augmentation: The ``data.augmentation`` layers, whose random state is kept. Defaults to none.
    """

    def __init__(
        self,
        store: CheckpointStore,
        tracked: list[Any],
        monitor: str,
        restore: dict[str, Any] | None = None,
        augmentation: list[Any] | None = None,
    ) -> None:
        super().__init__()
        self.augmentation = list(augmentation or [])
        self.store = store
        self.tracked = tracked
        self.monitor = monitor
        self.restore = restore or {}
        self.best = float(self.restore.get("best", math.inf))
        self.extra: dict[str, Any] = {}
        self.after_save: Callable[[int], None] | None = None

    def _callback_state(self) -> list[dict[str, Any]]:
        out = []
        for cb in self.tracked:
            attrs = CALLBACK_STATE.get(type(cb).__name__, ())
            out.append({"class": type(cb).__name__, **{a: _plain(getattr(cb, a, None)) for a in attrs}})
        return out

    def _best_weights_path(self, index: int) -> Path:
        return self.store.folder / f"early_stopping_{index}.best.npz"

    def on_train_begin(self, logs: dict | None = None) -> None:
        saved = self.restore.get("callbacks") or []
        for index, (cb, state) in enumerate(zip(self.tracked, saved, strict=False)):
            if state.get("class") != type(cb).__name__:
                continue
            for attr in CALLBACK_STATE.get(type(cb).__name__, ()):
                if attr in state and state[attr] is not None:
                    setattr(cb, attr, state[attr])
            path = self._best_weights_path(index)
            if getattr(cb, "restore_best_weights", False) and path.is_file():
                with np.load(path) as data:
                    cb.best_weights = [data[f"w{i}"] for i in range(len(data.files))]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        value = logs.get(self.monitor)
        improved = value is not None and _finite(value) and float(value) < self.best
        if improved:
            self.best = float(value)
            save_with(self.store.folder / "best.keras", self.model.save)
        for index, cb in enumerate(self.tracked):
            weights = getattr(cb, "best_weights", None)
            if getattr(cb, "restore_best_weights", False) and weights is not None and cb.best_epoch == epoch:
                buf = io.BytesIO()
                np.savez(buf, **{f"w{i}": w for i, w in enumerate(weights)})
                write_bytes(self._best_weights_path(index), buf.getvalue())
        state = {
            "rng": rng_state(self.model),
            "augmentation_rng": layers_rng_state(self.augmentation),
            "best": self.best,
            "best_monitor": self.monitor,
            "lr": current_lr(self.model.optimizer),
            "callbacks": self._callback_state(),
            "logs": {k: _plain(v) for k, v in logs.items() if _finite(v)},
            **self.extra,
        }
        self.store.save(self.model, epoch + 1, state)
        if self.after_save is not None:
            self.after_save(epoch + 1)


class FirstStep(keras.callbacks.Callback):
    """Records ``at`` = ``time.time()`` when the first training batch begins (run.json ``timings.first_step_at``).

    Acts once: later batches find ``at`` set and return (Keras calls every callback's batch hooks anyway).
    """

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.at is None:
            self.at = time.time()
