"""Train a config into a run folder, or resume one: the engine behind ``dlkit train``.

One :class:`Session` prepares everything (seed, precision, strategy, data, model, preflight) before the run folder
exists, so config and data errors leave nothing behind. Training is ``model.fit`` with dlkit's callbacks: a
checkpoint at every epoch end (the resume state), a NaN guard that raises instead of writing the NaN state, a
signal flag checked at batch ends, a gradient monitor, metrics.csv and TensorBoard.

Resume is bit-exact at epoch boundaries: weights and optimizer state come from the epoch checkpoint, and the
training dataset's seeded reshuffle is advanced by creating (not consuming) one iterator per finished epoch,
so epoch k sees the same order as in an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlkit.atomic import atomic_path, save_with, write_text
from dlkit.config.render import to_yaml
from dlkit.errors import ConfigError, DataError, DivergedError, Interrupted, UsageError, tf_message
from dlkit.training import run_dir as rd
from dlkit.training.checkpoint import CheckpointStore, Restored
from dlkit.training.frozen import FROZEN_SECTIONS, frozen_changes, load_run_config, resolved_config

log = logging.getLogger("dlkit.training")

AUTO_STEPS_PER_EXECUTION = 32


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class TrainResult:
    """What a training call produced.

    Attributes:
        run_dir: The run folder (None for a dry run).
        epochs: Epochs completed in total.
        metrics: Final epoch metrics (loss, metrics, val_*).
        status: completed | interrupted | diverged | failed | dry_run.
        plan: What a dry run would do. Defaults to None.
        worker: This process's ``<type>-<index>`` when it is a multi-worker non-chief (which writes no run
            folder). Defaults to None (the chief, or a single process).
    """

    run_dir: Path | None
    epochs: int
    metrics: dict[str, float]
    status: str
    plan: dict[str, Any] | None = None
    worker: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``dlkit train --json`` object."""
        out: dict[str, Any] = {
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "epochs": self.epochs,
            "metrics": self.metrics,
            "status": self.status,
        }
        if self.plan is not None:
            out["plan"] = self.plan
        if self.worker is not None:
            out["worker"] = self.worker
        return out


# ---------------------------------------------------------------- collaborators (fallbacks until they land)


def _api() -> Any:
    """Namespace of the config/models/data functions the trainer calls (imported lazily: they pull in TF)."""
    import types

    from dlkit.config.loader import load_config
    from dlkit.data import load_data, preflight
    from dlkit.models import (
        build_callbacks,
        build_loss,
        build_metrics,
        build_model,
        build_optimizer,
        validate_components,
    )

    return types.SimpleNamespace(
        load_config=load_config,
        load_data=load_data,
        preflight=preflight,
        build_model=build_model,
        build_optimizer=build_optimizer,
        build_loss=build_loss,
        build_metrics=build_metrics,
        build_callbacks=build_callbacks,
        validate_components=validate_components,
    )


# ---------------------------------------------------------------- the session


@dataclass
class Session:
    """Everything prepared for one training process."""

    loaded: Any
    cfg: Any
    api: Any
    device: Any
    policy: str
    strategy: Any
    bundle: Any
    model: Any
    steps_per_epoch: int | None
    steps_per_execution: int
    chief: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _steps(bundle: Any, cfg: Any) -> int | None:
    try:
        card = int(bundle.train.cardinality())
        if card > 0:
            return card
    except Exception:  # noqa: BLE001 - not a tf.data.Dataset
        pass
    n = (getattr(bundle, "counts", None) or {}).get("train")
    return max(1, math.ceil(n / cfg.data.batch_size)) if n else None


def prepare(loaded: Any) -> Session:
    """Seed, pick precision and strategy, load data, build and compile the model, run the data preflight.

    Writes nothing. Raises ConfigError (exit 2) or DataError (exit 3).
    """
    import keras
    import tensorflow as tf

    from dlkit.training import distribute
    from dlkit.training.precision import apply_policy, choose_policy, detect_device

    api = _api()
    cfg = loaded.config
    # MultiWorkerMirroredStrategy must be created before any other TensorFlow work.
    strategy = distribute.get_strategy(cfg.training.distribution)
    distribute.check_global_batch(strategy, cfg.data.batch_size)
    chief = distribute.is_chief(strategy)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.training.deterministic:
        tf.config.experimental.enable_op_determinism()
    device = detect_device()
    policy = choose_policy(cfg.training.precision, device)
    apply_policy(policy)

    bundle = api.load_data(cfg)
    if bundle.train is None:
        raise UsageError("no training data was loaded")
    steps = _steps(bundle, cfg)
    spe = cfg.training.steps_per_execution
    if spe == "auto":
        spe = max(1, min(AUTO_STEPS_PER_EXECUTION, steps or 1))
    jit = cfg.training.jit_compile

    where = loaded.where  # Keras build errors then name the config file and line
    scope = strategy.scope() if strategy is not None else _null()
    with scope:
        model = api.build_model(cfg, preprocessing=bundle.preprocessing, where=where)
        optimizer = api.build_optimizer(cfg.optimizer, where=where)
        loss = api.build_loss(cfg.loss, where=where)
        metrics = api.build_metrics(cfg.metrics, where=where)
        try:
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics, steps_per_execution=spe, jit_compile=jit)
        except (ValueError, TypeError) as error:
            raise ConfigError(
                problems=[loaded.problem(("loss",), f"the model does not compile with this loss/metrics: {error}")]
            ) from None
        if strategy is not None:
            # Keras 3 clips each replica's gradient before the cross-replica sum; clip the global one instead.
            # Idempotent: custom_fit (multi-worker) calls it too and finds it applied.
            distribute.reduce_before_clipping(model.optimizer)
        if not model.optimizer.built:  # slots must be created under the strategy (checkpoint restore builds them)
            model.optimizer.build(model.trainable_variables)
    api.preflight(cfg, bundle, model)
    return Session(loaded, cfg, api, device, policy, strategy, bundle, model, steps, spe, chief)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _class_weight(session: Session) -> dict[int, float] | None:
    cw = session.cfg.training.class_weight
    if cw is None or isinstance(cw, dict):
        return cw
    import numpy as np

    y = session.bundle.arrays.get("train", (None, None))[1] if session.bundle.arrays else None
    if y is None:
        raise ConfigError(
            problems=[session.loaded.problem(("training", "class_weight"), "'balanced' needs in-memory training data")]
        )
    labels = np.asarray(y).reshape(len(y), -1)
    labels = labels.argmax(1) if labels.shape[1] > 1 else labels[:, 0].astype(int)
    counts = np.bincount(labels)
    return {i: float(len(labels) / (len(counts) * c)) for i, c in enumerate(counts) if c}


def _with_class_weight(data: Any, class_weight: dict[int, float] | None) -> Any:
    """Add per-sample weights from ``class_weight`` (what ``fit(class_weight=)`` does, which a distributed
    dataset does not support)."""
    if not class_weight:
        return data
    import tensorflow as tf

    size = max(class_weight) + 1
    table = tf.constant([class_weight.get(i, 1.0) for i in range(size)], tf.float32)

    def weigh(x: Any, y: Any) -> Any:
        labels = tf.argmax(y, axis=-1) if y.shape.rank and y.shape[-1] and y.shape[-1] > 1 else tf.reshape(y, [-1])
        return x, y, tf.gather(table, tf.cast(labels, tf.int32))

    return data.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)


def _plan(session: Session, runs_dir: str | os.PathLike[str], name: str) -> dict[str, Any]:
    parent = Path(runs_dir) / name
    numbers = [int(p.name) for p in parent.iterdir() if p.name.isdigit()] if parent.is_dir() else []
    return {
        "run_dir": str(parent / f"{max(numbers, default=0) + 1:03d}"),
        "epochs": session.cfg.training.epochs,
        "batch_size": session.cfg.data.batch_size,
        "steps_per_epoch": session.steps_per_epoch,
        "steps_per_execution": session.steps_per_execution,
        "samples": dict(getattr(session.bundle, "counts", {}) or {}),
        "precision": session.policy,
        "device": session.device.as_dict(),
        "params": int(session.model.count_params()),
    }


# ---------------------------------------------------------------- running


class Runner:
    """Runs ``fit`` for a prepared session into a run folder, handling signals, divergence and resume."""

    def __init__(self, session: Session, run: Path, console: Any = None, flag: Any = None) -> None:
        from dlkit.training.signals import SignalFlag

        self.flag = flag if flag is not None else SignalFlag()
        self.s = session
        self.run = run
        self.console = console
        self.store = CheckpointStore(run / "checkpoints")
        self.lr_scale = 1.0

    # -- callbacks
    def _callbacks(self, initial_epoch: int, restored: Restored | None, flag: Any) -> tuple[list[Any], Any]:
        import keras

        from dlkit.training import callbacks as cb
        from dlkit.training.progress import Progress
        from dlkit.training.signals import stop_on_signal

        cfg = self.s.cfg
        model = self.s.model
        user = self.s.api.build_callbacks(cfg.callbacks, run_dir=self.run, where=self.s.loaded.where)
        self.user_callbacks = user
        from dlkit.training.distribute import needs_custom_loop

        self.first_step = getattr(self, "first_step", None) or cb.FirstStep()  # a NaN retry keeps the first
        front: list[Any] = [self.first_step, cb.NanGuard()]
        if not needs_custom_loop(self.s.strategy):
            front.insert(0, stop_on_signal(flag))
        monitor_on = cfg.training.gradient_monitor
        if monitor_on == "auto":
            monitor_on = bool(cb.clip_settings(model.optimizer))
        if monitor_on:
            if "grad_monitor" not in self.s.extra:
                scope = self.s.strategy.scope() if self.s.strategy is not None else _null()
                with scope:
                    self.s.extra["grad_monitor"] = cb.GradientMonitor(model.optimizer)
            front.append(self.s.extra["grad_monitor"])
        front += [cb.LearningRateLog(), cb.EpochTimer((self.s.bundle.counts or {}).get("train"))]
        back: list[Any] = []
        if not any(isinstance(c, keras.callbacks.TensorBoard) for c in user):
            back.append(
                keras.callbacks.TensorBoard(
                    log_dir=str(self.run / "tensorboard"), write_graph=False, profile_batch=0, update_freq="epoch"
                )
            )
        back.append(cb.MetricsCSV(self.run / "metrics.csv", initial_epoch))
        monitor = "val_loss" if self.s.bundle.validation is not None else "loss"
        augmentation = list(getattr(self.s.bundle, "augmentation", None) or [])
        checkpoint = cb.EpochCheckpoint(
            self.store, user, monitor, restored.state if restored else None, augmentation=augmentation
        )
        checkpoint.extra["lr_scale"] = self.lr_scale
        checkpoint.after_save = lambda done: rd.update_run_json(self.run, epochs_done=done, timings=self._timings())
        back.append(checkpoint)
        progress = None
        if self.console is not None:
            progress = Progress(self.console, cfg.training.epochs, self.s.steps_per_epoch)
            back.append(progress)
        return front + user + back, progress

    def _fit(self, initial_epoch: int, restored: Restored | None, flag: Any) -> Any:
        from dlkit.training.distribute import needs_custom_loop

        callbacks, progress = self._callbacks(initial_epoch, restored, flag)
        s = self.s
        train = None if needs_custom_loop(s.strategy) else self._train_data(initial_epoch)
        kwargs = dict(epochs=s.cfg.training.epochs, initial_epoch=initial_epoch, callbacks=callbacks)
        try:
            if needs_custom_loop(s.strategy):
                from dlkit.training.multiworker import custom_fit

                history = custom_fit(
                    s.model,
                    _with_class_weight(s.bundle.train, _class_weight(s)),
                    s.bundle.validation,
                    strategy=s.strategy,
                    steps_per_epoch=s.steps_per_epoch,
                    **kwargs,
                )
            else:
                history = s.model.fit(
                    train,
                    validation_data=s.bundle.validation,
                    verbose=0,
                    shuffle=False,
                    # Given explicitly, Keras makes exactly one iterator per epoch (else two): see _train_data.
                    steps_per_epoch=s.steps_per_epoch,
                    **kwargs,
                )
        finally:
            if progress is not None:
                progress.close()
        return history

    def _train_data(self, initial_epoch: int) -> Any:
        """The training data as ``fit`` iterates it, its reshuffle advanced past ``initial_epoch`` epochs.

        ``shuffle(seed, reshuffle_each_iteration=True)`` draws the seeds of each new iterator from a generator
        held by the dataset, and Keras iterates a distributed copy of what it is given. So we distribute it
        ourselves and create (without consuming) one iterator per finished epoch: epoch k then sees the order it
        had in an uninterrupted run.
        """
        import tensorflow as tf

        if self._train is None:
            data = _with_class_weight(self.s.bundle.train, _class_weight(self.s))
            strategy = self.s.strategy or tf.distribute.get_strategy()
            self._train = strategy.experimental_distribute_dataset(data)
            for _ in range(initial_epoch):
                iter(self._train)
        return self._train

    def _restore(self, restored: Restored) -> None:
        """Apply what the weights file does not hold: the learning rate (ReduceLROnPlateau, NaN recovery)."""
        from dlkit.training.callbacks import set_layers_rng_state, set_rng_state

        set_rng_state(self.s.model, restored.state.get("rng"))
        # The augmentation layers' random state: with training.deterministic (a sequential map of stateful
        # functions) the resumed epochs then draw what an uninterrupted run draws.
        set_layers_rng_state(
            list(getattr(self.s.bundle, "augmentation", None) or []), restored.state.get("augmentation_rng")
        )
        lr = restored.state.get("lr")
        self.lr_scale = float(restored.state.get("lr_scale", 1.0))
        opt = self.s.model.optimizer
        inner = getattr(opt, "inner_optimizer", opt)
        if lr is not None and not _is_schedule(inner):
            inner.learning_rate = float(lr)

    def execute(self, initial_epoch: int, restored: Restored | None) -> TrainResult:
        """Train from ``initial_epoch`` to ``training.epochs``; raise the typed error on stop/divergence."""
        import keras

        from dlkit.training.callbacks import Diverged
        from dlkit.training.signals import StopRequested

        s = self.s
        self._train: Any = None
        opt = s.model.optimizer
        if not opt.built:
            with s.strategy.scope() if s.strategy is not None else _null():  # tf.distribute creates slots in scope
                opt.build(s.model.trainable_variables)
        if restored is not None:
            self._restore(restored)
        initial = ([v.numpy() for v in s.model.weights], [v.numpy() for v in opt.variables])
        retries = 0
        started = time.time()
        flag = self.flag
        history = None
        with flag.installed():
            while True:
                try:
                    history = self._fit(initial_epoch, restored, flag)
                    break
                except StopRequested as stop:
                    done = self._epochs_done()
                    self._save_last_good()
                    self._record_end(
                        "interrupted", done, timings={"train_s": round(time.time() - started, 3), **self._timings()}
                    )
                    import signal as _signal

                    name = _signal.Signals(stop.signum).name
                    kept = (
                        f"the checkpoint after epoch {done} is kept"
                        if done
                        else "no epoch had finished, so there is no checkpoint yet"
                    )
                    raise self._tagged(
                        Interrupted(
                            f"interrupted by {name} during epoch {done + 1}; {kept}.\n"
                            f"Resume with: dlkit train --resume {self.run}",
                            stop.signum,
                        ),
                        "interrupted",
                    ) from None
                except Interrupted as stopped:
                    self._record_end("interrupted")
                    self._tagged(stopped, "interrupted")
                    raise
                except Diverged as bad:
                    done = self._epochs_done()
                    if retries < s.cfg.training.nan_recovery:
                        retries += 1
                        inner = getattr(opt, "inner_optimizer", opt)
                        lr_in_use = (
                            None if _is_schedule(inner) else float(keras.ops.convert_to_numpy(inner.learning_rate))
                        )
                        restored = self.store.restore(s.model)
                        if restored is None:
                            for var, value in zip(s.model.weights, initial[0], strict=True):
                                var.assign(value)
                            for var, value in zip(opt.variables, initial[1], strict=True):
                                var.assign(value)
                            initial_epoch = 0
                        else:
                            self._restore(restored)
                            initial_epoch = restored.epoch
                        self.lr_scale *= 0.5
                        if lr_in_use is None:
                            log.warning("%s; the learning rate is a schedule, retrying with it unchanged", bad)
                        else:
                            new_lr = lr_in_use * 0.5
                            inner.learning_rate = new_lr
                            log.warning(
                                "%s; retry %d/%d from epoch %d with learning rate %.3g",
                                bad,
                                retries,
                                s.cfg.training.nan_recovery,
                                initial_epoch,
                                new_lr,
                            )
                        rd.update_run_json(self.run, nan_recoveries=retries)
                        continue
                    self._save_last_good()
                    self._record_end("diverged", done, diverged=str(bad))
                    kept = (
                        f"The checkpoint after epoch {done} is kept."
                        if done
                        else "No epoch finished, so there is no checkpoint to resume from."
                    )
                    hint = (
                        f"{kept} Lower optimizer.learning_rate, set optimizer.global_clipnorm, or set "
                        "training.nan_recovery."
                    )
                    raise self._tagged(DivergedError(f"training diverged: {bad}. {hint}"), "diverged") from None
                except BaseException as error:
                    self._record_end("failed")
                    mapped = _input_error(error) or self._callback_error(error)
                    if mapped is not None:
                        raise self._tagged(mapped, "failed") from None
                    self._tagged(error, "failed")
                    raise
        epochs = self._epochs_done()
        metrics = {k: float(v[-1]) for k, v in (history.history if history else {}).items() if v}
        save_with(self.run / "model.keras", s.model.save)
        with atomic_path(self.run / "checkpoints" / "last.keras") as tmp:
            shutil.copyfile(self.run / "model.keras", tmp)
        stopped_early = epochs < s.cfg.training.epochs
        from dlkit.training.precision import loss_scale

        self._record_end(
            "completed",
            epochs,
            stopped_early=stopped_early,
            metrics=metrics,
            loss_scale=loss_scale(s.model),
            timings={"train_s": round(time.time() - started, 3), **self._timings()},
        )
        return TrainResult(self.run, epochs, metrics, "completed")

    def _record_end(self, status: str, epochs_done: int | None = None, **extra: Any) -> None:
        """Write how the run ended to run.json: status, epochs done, finish time and timings (``extra`` wins)."""
        rd.update_run_json(
            self.run,
            status=status,
            epochs_done=self._epochs_done() if epochs_done is None else epochs_done,
            finished_at=_now(),
            **{"timings": self._timings(), **extra},
        )

    def _timings(self) -> dict[str, float]:
        """``process_start`` and ``first_step_at`` (epoch seconds) for run.json's ``timings``."""
        out: dict[str, float] = {}
        start = process_start()
        if start is not None:
            out["process_start"] = start
        first = getattr(self, "first_step", None)
        if first is not None and first.at is not None:
            out["first_step_at"] = round(first.at, 3)
        return out

    def _callback_error(self, error: BaseException) -> ConfigError | None:
        """A ValueError/TypeError raised inside ``fit`` by one of the config's callbacks (e.g. EarlyStopping with
        ``monitor`` Keras cannot rank in mode auto) as a ConfigError naming ``callbacks[i]``; None otherwise."""
        user = getattr(self, "user_callbacks", None) or []
        if not isinstance(error, (ValueError, TypeError)) or not user:
            return None
        index = None
        trace = error.__traceback__
        while trace is not None:
            owner = trace.tb_frame.f_locals.get("self")
            hit = next((i for i, c in enumerate(user) if c is owner), None)
            index = hit if hit is not None else index
            trace = trace.tb_next
        if index is None:
            return None
        key: tuple[Any, ...] = ("callbacks", index)
        if "monitor=" in str(error):
            key += ("monitor",)
        text = " ".join(str(error).split())
        return ConfigError(problems=[self.s.loaded.problem(key, f"{type(user[index]).__name__} failed: {text}")])

    def _tagged(self, error: BaseException, status: str) -> BaseException:
        """Attach the run's :class:`TrainResult` (``error.result``) so ``--json`` can still print it."""
        with contextlib.suppress(Exception):  # an exception type without __dict__: nothing to attach
            error.result = TrainResult(self.run, self._epochs_done(), {}, status)  # type: ignore[attr-defined]
        return error

    def _save_last_good(self) -> None:
        """``checkpoints/last.keras`` from the newest epoch checkpoint (after a stop or divergence the model in
        memory holds a half epoch or NaN weights). Best effort: the epoch checkpoints are what resume uses."""
        try:
            if self.store.restore(self.s.model) is not None:
                save_with(self.run / "checkpoints" / "last.keras", self.s.model.save)
        except Exception:  # noqa: BLE001 - never hide the real stop reason behind this convenience copy
            log.debug("could not write last.keras", exc_info=True)

    def _epochs_done(self) -> int:
        epochs = self.store.epochs()
        return epochs[-1] if epochs else 0


def process_start() -> float | None:
    """When this process started (epoch seconds, ~10 ms), from /proc; None where /proc is not available."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return round(time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK")), 3)
    except (OSError, ValueError, IndexError):
        return None


_INPUT_NODES = ("Iterator::", "IteratorGetNext", "MultiDeviceIteratorGetNextFromShard")


def _input_error(error: BaseException) -> DataError | None:
    """A TensorFlow error raised by the input pipeline inside ``fit`` (a truncated image, a corrupt record) as a
    DataError with its readable line; None for anything else (errors in the model stay internal errors)."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, (tf.errors.InvalidArgumentError, tf.errors.DataLossError)):
        return None
    text = str(getattr(error, "message", None) or error)
    if not isinstance(error, tf.errors.DataLossError) and not any(node in text for node in _INPUT_NODES):
        return None
    import re

    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("[[", "<stack"))]
    detail = next((ln for ln in reversed(lines) if "Iterator::" in ln), None)
    detail = re.sub(r"^.*?Iterator::[\w:]+:\s*", "", detail) if detail is not None else tf_message(error)
    return DataError(f"reading the training data failed during training: {detail[:300]}")


def _is_schedule(optimizer: Any) -> bool:
    import keras

    return isinstance(getattr(optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule)


def _run_json(session: Session, command: list[str] | None, run: Path) -> dict[str, Any]:
    from dlkit.training.run_dir import git_commit, versions

    loaded = session.loaded
    return {
        "status": "running",
        "command": command if command is not None else sys.argv,
        "config_files": list(getattr(loaded, "files", []) or []),
        "overrides": list(getattr(loaded, "overrides", []) or []),
        "name": session.cfg.name,
        "run_dir": str(run),
        "versions": versions(),
        "device": session.device.as_dict(),
        "precision": session.policy,
        "seed": session.cfg.seed,
        "deterministic": session.cfg.training.deterministic,
        "git_commit": git_commit(),
        "data": {
            "fingerprint": getattr(session.bundle, "fingerprint", None),
            "samples": dict(getattr(session.bundle, "counts", {}) or {}),
            # What predict needs to name classes and encode string CSV columns as training did.
            "class_names": getattr(session.bundle, "class_names", None),
            "encoders": dict(getattr(session.bundle, "encoders", None) or {}),
            "feature_names": getattr(session.bundle, "feature_names", None),
        },
        "plugins": _plugins(),
        "epochs": session.cfg.training.epochs,
        "epochs_done": 0,
        "steps_per_epoch": session.steps_per_epoch,
        "steps_per_execution": session.steps_per_execution,
        "params": int(session.model.count_params()),
        "started_at": _now(),
        "timings": {"prepare_s": session.extra.get("prepare_s"), "process_start": process_start()},
        "jit_compile": session.cfg.training.jit_compile,
        "frozen": {k: resolved_config(loaded).get(k) for k in FROZEN_SECTIONS},
    }


def _plugins() -> list[str]:
    """Plugin modules imported in this process (``--plugin``, entry points): resume and load_run import them.

    Only modules still imported count (a long-lived process may have unloaded one; it is not in effect).
    """
    from dlkit.models import loaded_plugins

    return [name for name in loaded_plugins() if name.split(":")[0] in sys.modules]


def train(
    loaded: Any,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    name: str | None = None,
    dry_run: bool = False,
    command: list[str] | None = None,
    console: Any = None,
) -> TrainResult:
    """Train ``loaded`` (a LoadedConfig) into a new ``runs_dir/<name>/<NNN>`` folder.

    Args:
        loaded: The validated config.
        runs_dir: Parent of run folders. Defaults to "runs".
        name: Run name. Defaults to the config's ``name``.
        dry_run: Validate, build, load data and preflight; write nothing. Defaults to False.
        command: The command line recorded in run.json. Defaults to ``sys.argv``.
        console: A rich Console for the progress display, or None for none. Defaults to None.

    Raises:
        ConfigError, DataError, DivergedError, Interrupted.
    """
    from dlkit.training.signals import SignalFlag

    name = name or loaded.config.name
    rd._check_name(name)
    flag = SignalFlag()
    with flag.installed():
        return _train(loaded, runs_dir, name, dry_run, command, console, flag)


def train_files(
    paths: list[str] | tuple[str, ...],
    overrides: list[str] | tuple[str, ...] = (),
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    name: str | None = None,
    dry_run: bool = False,
    command: list[str] | None = None,
    console: Any = None,
) -> TrainResult:
    """Load configs (``paths`` merged, then ``overrides``) and :func:`train` them.

    The signal handlers go in first, so a SIGTERM/SIGINT while TensorFlow imports or the data loads also ends
    with exit 143/130 and nothing written.
    """
    from dlkit.training.signals import SignalFlag

    flag = SignalFlag()
    with flag.installed():
        loaded = load_config(paths, overrides)
        name = name or loaded.config.name
        rd._check_name(name)
        return _train(loaded, runs_dir, name, dry_run, command, console, flag)


def _not_started(flag: Any) -> None:
    """A signal that arrived while loading data or building the model: stop before writing anything."""
    if flag.signum is not None:
        import signal

        name = signal.Signals(flag.signum).name
        raise Interrupted(f"interrupted by {name} before training started; nothing was written", flag.signum)


def _train(
    loaded: Any, runs_dir: str | os.PathLike[str], name: str, dry_run: bool, command: Any, console: Any, flag: Any
) -> TrainResult:
    begun = time.time()
    session = prepare(loaded)
    session.extra["prepare_s"] = round(time.time() - begun, 3)
    _not_started(flag)
    if dry_run:
        return TrainResult(None, 0, {}, "dry_run", plan=_plan(session, runs_dir, name))
    from dlkit.atomic import write_json
    from dlkit.training.distribute import worker_dir

    # Only the chief writes the run folder; other workers write to scratch space removed at the end.
    target = rd.new_run_dir(runs_dir, name) if session.chief else None
    with worker_dir(target, session.strategy) as run:
        write_text(run / rd.CONFIG_YAML, to_yaml(resolved_config(loaded)))
        write_json(run / rd.RUN_JSON, _run_json(session, command, run))
        if session.chief:
            log.info("run folder: %s", run)
        result = Runner(session, run, console, flag).execute(0, None)
    return result if session.chief else _worker_result(session, result)


def _worker_result(session: Session, result: TrainResult) -> TrainResult:
    """A non-chief worker's result: no run folder of its own (its scratch folder is gone), its cluster role."""
    from dlkit.training.distribute import task_role

    return TrainResult(None, result.epochs, result.metrics, result.status, worker=task_role(session.strategy))


def resume(
    run_dir: str | os.PathLike[str],
    overrides: tuple[str, ...] | list[str] = (),
    *,
    command: list[str] | None = None,
    console: Any = None,
) -> TrainResult:
    """Continue a run from its newest good epoch checkpoint (or train more epochs of a finished one).

    Raises:
        UsageError: not a run folder, no usable checkpoint, or nothing left to train.
        ConfigError: the model or optimizer section differs from the run's (names the key).
    """
    from dlkit.training.signals import SignalFlag

    flag = SignalFlag()
    with flag.installed():
        return _resume(rd.resolve_run_dir(run_dir), overrides, command, console, flag)


def _resume(run: Path, overrides: Any, command: Any, console: Any, flag: Any) -> TrainResult:
    rd.import_run_plugins(run)  # before the config is checked: it may name a plugin's layers
    loaded = load_run_config(run, overrides)
    info = rd.read_run_json(run)
    problems = frozen_changes(loaded, info.get("frozen") or {})
    if problems:
        raise ConfigError("cannot resume: the model or optimizer changed since the run started", problems)
    begun = time.time()
    session = prepare(loaded)
    session.extra["prepare_s"] = round(time.time() - begun, 3)
    _not_started(flag)
    if not session.chief:
        # Other workers write nothing into the run folder; custom_fit gives them the chief's restored state.
        from dlkit.training.distribute import worker_dir

        with worker_dir(None, session.strategy) as scratch:
            return _worker_result(session, Runner(session, scratch, console, flag).execute(0, None))
    before = (info.get("data") or {}).get("fingerprint")
    now_fp = json.loads(json.dumps(getattr(session.bundle, "fingerprint", None), default=str))  # as stored
    if before and now_fp and before != now_fp:
        log.warning("the data changed since the run started (fingerprint differs); the resumed run will not match")
    runner = Runner(session, run, console, flag)
    restored = runner.store.restore(session.model)
    initial_epoch = restored.epoch if restored else 0
    epochs = loaded.config.training.epochs
    if initial_epoch >= epochs:
        raise UsageError(
            f"{run} has already trained {initial_epoch} of {epochs} epochs; "
            f"to train more: dlkit train --resume {run} --set training.epochs={initial_epoch + max(1, epochs)}"
        )
    if overrides:
        write_text(run / rd.CONFIG_YAML, to_yaml(resolved_config(loaded)))
    resumes = list(info.get("resumes") or [])
    resumes.append({"at": _now(), "from_epoch": initial_epoch, "overrides": list(overrides), "command": command})
    plugins = list(info.get("plugins") or [])
    plugins += [p for p in _plugins() if p not in plugins]
    rd.update_run_json(run, status="running", epochs=epochs, resumes=resumes, plugins=plugins)
    log.info("resuming %s from epoch %d of %d", run, initial_epoch, epochs)
    if loaded.config.data.augmentation and not loaded.config.training.deterministic:
        log.info(
            "note: data.augmentation runs in a parallel tf.data map whose random draws are not ordered; the "
            "resumed run is correct but not bit-identical to an uninterrupted one (training.deterministic: true is)"
        )
    return runner.execute(initial_epoch, restored)


def load_config(paths: list[str] | tuple[str, ...], overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Load and validate configs (schema and Keras component checks together); raises ConfigError."""
    api = _api()
    return api.load_config(list(paths), list(overrides), component_checker=api.validate_components)
