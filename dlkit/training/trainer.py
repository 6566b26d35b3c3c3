"""Train a config into a run folder, or resume one: the engine behind ``dlkit train``.

One :class:`Session` prepares everything (seed, precision, strategy, data, model, preflight) before the run folder
exists, so config and data errors leave nothing behind. Training is ``model.fit`` with dlkit's callbacks: a
checkpoint at every epoch end (the resume state), a NaN guard that raises instead of writing the NaN state, a
signal flag checked at batch ends, a gradient monitor, metrics.csv and TensorBoard. That run, and how it ends,
is :class:`dlkit.training.runner.Runner`'s; this module holds the entry points and the session set-up.

Resume is bit-exact at epoch boundaries: weights and optimizer state come from the epoch checkpoint, and the
training dataset's seeded reshuffle is advanced by creating (not consuming) one iterator per finished epoch,
so epoch k sees the same order as in an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from dlkit.atomic import write_text
from dlkit.config.render import to_yaml
from dlkit.errors import ConfigError, Interrupted, UsageError
from dlkit.training import run_dir as rd
from dlkit.training.frozen import FROZEN_SECTIONS, frozen_changes, load_run_config, resolved_config
from dlkit.training.runner import Runner, Session, TrainResult, _now, _null, process_start

log = logging.getLogger("dlkit.training")

AUTO_STEPS_PER_EXECUTION = 32


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
