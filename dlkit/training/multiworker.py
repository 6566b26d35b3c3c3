"""A custom training loop with ``fit``'s semantics, for strategies where ``model.fit`` fails.

Under MultiWorkerMirroredStrategy ``model.fit`` fails in Keras 3.15 (keras-team/keras#20585: "Attempt to
convert a value (PerReplica...)"), while ``strategy.run(model.train_step)`` works. ``custom_fit`` drives
the compiled model's own ``train_step``/``test_step`` (so its loss, metrics, optimizer, clipping, loss
scaling and any ``train_step`` override apply unchanged) and calls the callbacks exactly like ``fit``:
same hooks, same log keys (``loss``, metrics, ``val_*``), ``model.stop_training`` honoured.

Multi-worker specifics:
- Every worker must take the same number of steps. A stop asked for on any worker (``stop_training``
  set by a callback or a signal handler) is agreed on by all workers after the current step.
- On start, the chief's weights, optimizer state and initial epoch are broadcast to every worker, so a
  relaunch resumes from the chief's last checkpoint even where other workers kept nothing.
- SIGTERM on any worker: TensorFlow's ``PreemptionCheckpointHandler`` makes all workers stop at the same
  step, ``on_preempt(epoch, step)`` runs on every worker (save state there), then ``Interrupted``
  (exit 143) is raised on every worker.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import tempfile
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from dlkit.errors import DlkitError, Interrupted

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

log = logging.getLogger("dlkit.training.multiworker")


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by batch slices, not files: each worker takes its part of every global batch.

    With DATA sharding the split of a global batch matches MirroredStrategy's split on one machine,
    and every worker sees the same number of steps whatever the source.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _all_variables(model: keras.Model) -> list[Any]:
    seen: set[int] = set()
    out = []
    for variable in [*model.variables, *model.optimizer.variables]:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out


def sync_from_chief(model: keras.Model, strategy: tf.distribute.Strategy, initial_epoch: int) -> int:
    """Broadcast the chief's model/optimizer variables and initial epoch to every replica.

    All workers must call it at the same point. Builds the optimizer first if needed so every worker
    holds the same variables.

    Args:
        model: The compiled model (built under ``strategy.scope()``).
        strategy: The strategy in use.
        initial_epoch: This worker's idea of the first epoch to run.

    Returns:
        The chief's initial epoch.
    """
    import tensorflow as tf

    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    variables = _all_variables(model)
    epoch = tf.constant(float(initial_epoch), tf.float64)

    def replica_fn() -> list[tf.Tensor]:
        ctx = tf.distribute.get_replica_context()
        first = tf.equal(ctx.replica_id_in_sync_group, 0)
        values = [tf.cast(v.value, tf.float64) for v in variables] + [epoch]
        masked = [tf.where(first, value, tf.zeros_like(value)) for value in values]
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, masked)

    @tf.function
    def broadcast() -> tf.Tensor:
        reduced = strategy.experimental_local_results(strategy.run(replica_fn))[0]
        for variable, value in zip(variables, reduced[:-1], strict=True):
            variable.assign(tf.cast(value, variable.dtype))
        return reduced[-1]

    return int(broadcast().numpy())


class PeerLost(DlkitError):
    """Another worker died (no heartbeat, collective aborted): this worker cannot go on alone (exit 1)."""


class _Preempted(Exception):
    """Raised by the termination handler's exit function once every worker has agreed to stop."""


class _PreemptionGuard:
    """TensorFlow's PreemptionCheckpointHandler used for its cluster-wide agreement on when to stop.

    TensorFlow swallows SIGTERM under MultiWorkerMirroredStrategy; the handler installs its own SIGTERM
    handler, tells every peer, picks a step all workers stop after, then calls ``save_fn`` and
    ``exit_fn`` on each of them. The trainer's state is saved by ``on_preempt``; the handler itself
    writes nothing (its bookkeeping checkpoint lives in a temporary folder).
    """

    def __init__(self, strategy: tf.distribute.Strategy, on_save: Callable[[], None]) -> None:
        import tensorflow as tf

        self._previous = signal.getsignal(signal.SIGTERM)
        self._tmp = tempfile.TemporaryDirectory(prefix="dlkit-preempt-")
        config = tf.distribute.experimental.TerminationConfig(
            exit_fn=self._exit, save_fn=lambda *a, **k: on_save(), grace_period=0
        )
        self.handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            strategy.cluster_resolver, tf.train.Checkpoint(), checkpoint_dir=self._tmp.name, termination_config=config
        )

    @staticmethod
    def _exit() -> None:
        raise _Preempted

    def close(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)
        for name in ("_stop_poll_termination_signal_thread", "_stop_cluster_wise_termination_watcher_thread"):
            stop = getattr(self.handler, name, None)
            if stop is not None:
                try:
                    stop()
                except Exception:  # best effort: daemon threads end with the process anyway
                    log.debug("could not stop %s", name, exc_info=True)
        self._tmp.cleanup()


def _quiet_tf_deprecations() -> Any:
    try:
        from tensorflow.python.util import deprecation

        return deprecation.silence()
    except (ImportError, AttributeError):  # private API: fall back to the warning
        return contextlib.nullcontext()


def _to_logs(values: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in values.items()}


def custom_fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    validation_ds: tf.data.Dataset | None = None,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy,
    steps_per_epoch: int | None = None,
    on_preempt: Callable[[int, int], None] | None = None,
) -> keras.callbacks.History:
    """Train like ``model.fit`` with a custom loop under ``strategy``.

    Args:
        model: A model built and compiled under ``strategy.scope()``.
        train_ds: Batched ``(x, y)`` dataset with the GLOBAL batch size.
        validation_ds: Batched validation dataset. Defaults to None.
        epochs: Index of the last epoch + 1, as in ``fit``.
        initial_epoch: First epoch to run. Defaults to 0. A callback that sets ``model._initial_epoch``
            in ``on_train_begin`` (``BackupAndRestore``) overrides it, as in ``fit``; the chief's value wins.
        callbacks: Keras callbacks. Defaults to none.
        strategy: The strategy (MultiWorkerMirroredStrategy, or any other for testing).
        steps_per_epoch: Steps per epoch. Defaults to one pass over ``train_ds``.
        on_preempt: Called as ``on_preempt(epoch, step)`` on every worker at the same step after a SIGTERM
            on any worker, before ``Interrupted`` is raised; save resumable state there. Defaults to None.

    Returns:
        The ``History`` callback, as ``fit`` returns it.

    Raises:
        Interrupted: SIGTERM on any worker (exit code 143).
    """
    import keras
    import tensorflow as tf

    from dlkit.training.distribute import needs_custom_loop, reduce_before_clipping

    reduce_before_clipping(model.optimizer)  # clip the global gradient, as on one device (idempotent)
    with strategy.scope():
        # As fit does: create the compiled loss/metrics and optimizer variables before tracing the step.
        model._symbolic_build(data_batch=train_ds.element_spec)
    train_dist = strategy.experimental_distribute_dataset(_shard_by_data(train_ds))
    val_dist = (
        strategy.experimental_distribute_dataset(_shard_by_data(validation_ds)) if validation_ds is not None else None
    )
    steps = steps_per_epoch
    if steps is None:
        cardinality = int(train_ds.cardinality())
        steps = cardinality if cardinality > 0 else None
    cbs = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=False, model=model, epochs=epochs, steps=steps
    )

    @tf.function
    def train_step(iterator: Any) -> None:
        strategy.run(model.train_step, args=(next(iterator),))

    @tf.function
    def test_step(batch: Any) -> None:
        strategy.run(model.test_step, args=(batch,))

    @tf.function
    def results() -> dict[str, tf.Tensor]:
        return model.get_metrics_result()

    @tf.function
    def any_worker(flag: tf.Tensor) -> tf.Tensor:
        # A stop asked for on one worker (a callback, a signal handler) must stop every worker at the same step.
        per_replica = strategy.run(lambda: tf.identity(flag))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None) > 0

    state = {"epoch": initial_epoch, "step": 0}

    def save_on_preempt() -> None:
        if on_preempt is not None:
            on_preempt(state["epoch"], state["step"])

    guard = _PreemptionGuard(strategy, save_on_preempt) if needs_custom_loop(strategy) else None

    def current_logs() -> dict[str, float]:
        return _to_logs(results())

    def agreed_stop() -> bool:
        stop = bool(any_worker(tf.constant(1.0 if model.stop_training else 0.0)))
        model.stop_training = stop
        return stop

    def run_step(batch: Any) -> None:
        if guard is not None:
            with _quiet_tf_deprecations():  # the handler's own bookkeeping uses a deprecated property
                guard.handler.run(train_step, batch)
        else:
            train_step(batch)

    def evaluate() -> dict[str, float]:
        model.reset_metrics()
        cbs.on_test_begin()
        logs: dict[str, float] = {}
        for step, batch in enumerate(val_dist):  # type: ignore[arg-type]
            cbs.on_test_batch_begin(step)
            test_step(batch)
            logs = current_logs()
            cbs.on_test_batch_end(step, logs)
        logs = current_logs()
        cbs.on_test_end(logs)
        return logs

    model.stop_training = False
    training_logs: dict[str, float] | None = None
    try:
        cbs.on_train_begin()
        start = getattr(model, "_initial_epoch", None) or initial_epoch
        start = sync_from_chief(model, strategy, start) if strategy.num_replicas_in_sync > 1 else start
        # A seeded reshuffle draws each new iterator's order from a generator held by the distributed dataset:
        # create (without consuming) one iterator per finished epoch so epoch k sees its uninterrupted order.
        for _ in range(start):
            iter(train_dist)
        for epoch in range(start, epochs):
            state["epoch"], state["step"] = epoch, 0
            model.reset_metrics()
            cbs.on_epoch_begin(epoch)
            iterator = iter(train_dist)
            logs: dict[str, float] = {}
            step = 0
            while steps is None or step < steps:
                cbs.on_train_batch_begin(step)
                run_step(iterator)
                step += 1
                state["step"] = step
                logs = current_logs()
                cbs.on_train_batch_end(step - 1, logs)
                if agreed_stop():
                    break
            epoch_logs = dict(logs)
            if val_dist is not None:
                epoch_logs.update({f"val_{k}": v for k, v in evaluate().items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if agreed_stop():
                break
        if epochs > 0 and isinstance(model.optimizer, keras.optimizers.Optimizer):
            model.optimizer.finalize_variable_values(model.trainable_weights)
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError) as error:
        if not needs_custom_loop(strategy):
            raise
        first = next((line for line in str(error).splitlines() if "unhealthy" in line or "aborted" in line), "")
        raise PeerLost(
            f"another worker stopped during training ({first.strip() or type(error).__name__}); "
            "the last completed epoch is in the chief's checkpoints: relaunch every worker with "
            "`dlkit train --resume RUN_DIR`"
        ) from error
    except _Preempted:
        where = f"during epoch {state['epoch'] + 1} (after step {state['step']})"
        kept = "state saved" if on_preempt is not None else "the checkpoint of the last finished epoch is kept"
        log.warning("SIGTERM: every worker stopped %s", where)
        raise Interrupted(
            f"stopped by SIGTERM {where} on every worker; {kept}. "
            "Relaunch every worker with `dlkit train --resume RUN_DIR` to continue",
            signal.SIGTERM,
        ) from None
    finally:
        if guard is not None:
            guard.close()
    cbs.on_train_end(logs=training_logs)
    history = model.history
    assert history is not None
    return history
