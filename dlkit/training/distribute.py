"""tf.distribute strategies from ``training.distribution``, ``TF_CONFIG`` validation and worker roles.

The batch size in the config is the GLOBAL batch: each step splits it across the replicas. The learning
rate is never rescaled behind the user's back. Under ``multi_worker_mirrored`` every worker runs the same
``dlkit train`` command; only the chief writes the run folder, the others keep scratch state that is
removed at the end (``worker_dir``). ``model.fit`` does not work under MultiWorkerMirroredStrategy in
Keras 3.15 (keras-team/keras#20585), so the trainer asks ``needs_custom_loop`` and then calls
``dlkit.training.multiworker.custom_fit`` instead of ``fit``.

Imports TensorFlow lazily: ``validate_tf_config`` and the CLI's ``--help`` must stay fast.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlkit.config.suggest import did_you_mean
from dlkit.errors import ConfigError, Problem

if TYPE_CHECKING:
    import tensorflow as tf

    from dlkit.config.schema import DistributionConfig

log = logging.getLogger("dlkit.training.distribute")

TF_CONFIG = "TF_CONFIG"
SUPPORTED_JOBS = ("chief", "worker")
TF_CONFIG_KEYS = ("cluster", "task", "rpc_layer", "environment")
EXAMPLE = (
    "Example: TF_CONFIG='"
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    "'"
)


@dataclass(frozen=True)
class ClusterInfo:
    """A validated ``TF_CONFIG``: the cluster and this process's place in it.

    Attributes:
        cluster: Job name -> list of ``host:port`` addresses (``chief`` and/or ``worker``).
        task_type: This process's job (``chief`` or ``worker``).
        task_index: This process's index within its job.
    """

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        """Processes taking part in training (chief + workers)."""
        return sum(len(self.cluster.get(job, [])) for job in SUPPORTED_JOBS)

    @property
    def is_chief(self) -> bool:
        """The chief is ``chief:0`` or, when there is no chief job, ``worker:0`` (TensorFlow's rule)."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def address(self) -> str:
        """This process's ``host:port``."""
        return self.cluster[self.task_type][self.task_index]


def _problem(field: str, message: str, **kw: Any) -> Problem:
    return Problem(path=f"{TF_CONFIG}: {field}" if field else TF_CONFIG, message=message, **kw)


def _check_address(job: str, i: int, address: Any, problems: list[Problem]) -> None:
    field = f"cluster.{job}[{i}]"
    if not isinstance(address, str):
        problems.append(_problem(field, "must be a 'host:port' string", got=repr(address)))
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        problems.append(
            _problem(field, "must be 'host:port' with a port from 1 to 65535", got=repr(address), hint=EXAMPLE)
        )


def _check_cluster(cluster: Any, problems: list[Problem]) -> dict[str, list[str]]:
    if cluster is None:
        problems.append(_problem("cluster", "is missing: give the address of every worker", hint=EXAMPLE))
        return {}
    if not isinstance(cluster, dict) or not cluster:
        problems.append(_problem("cluster", "must be a non-empty object of job -> addresses", got=repr(cluster)))
        return {}
    jobs: dict[str, list[str]] = {}
    for job, addresses in cluster.items():
        if job == "ps":
            problems.append(
                _problem(
                    "cluster.ps",
                    "parameter servers are not supported (Keras 3 has no ParameterServerStrategy)",
                    hint="Use only 'chief' and 'worker' jobs with strategy multi_worker_mirrored.",
                )
            )
            continue
        if job == "evaluator":
            problems.append(
                _problem(
                    "cluster.evaluator",
                    "a side-car evaluator job is not supported",
                    hint="Remove it; run `dlkit evaluate RUN_DIR` after training instead.",
                )
            )
            continue
        if job not in SUPPORTED_JOBS:
            problems.append(
                _problem(
                    f"cluster.{job}",
                    "unknown job name; expected 'chief' or 'worker'",
                    suggestion=did_you_mean(job, SUPPORTED_JOBS),
                )
            )
            continue
        if not isinstance(addresses, list) or not addresses:
            problems.append(
                _problem(f"cluster.{job}", "must be a non-empty list of 'host:port' addresses", got=repr(addresses))
            )
            continue
        if job == "chief" and len(addresses) != 1:
            problems.append(_problem("cluster.chief", f"must hold exactly one address (got {len(addresses)})"))
        for i, address in enumerate(addresses):
            _check_address(job, i, address, problems)
        jobs[job] = addresses
    if not problems and not jobs:
        problems.append(_problem("cluster", "needs a 'worker' (or 'chief') job", hint=EXAMPLE))
    seen: dict[str, str] = {}
    for job, addresses in jobs.items():
        for i, address in enumerate(addresses):
            if isinstance(address, str) and address in seen:
                problems.append(_problem(f"cluster.{job}[{i}]", f"address {address} is also used by {seen[address]}"))
            seen.setdefault(str(address), f"{job}[{i}]")
    return jobs


def _check_task(task: Any, jobs: dict[str, list[str]], problems: list[Problem]) -> tuple[str, int] | None:
    if task is None:
        problems.append(
            _problem(
                "task",
                "is missing: say which worker this process is",
                hint='Example: "task": {"type": "worker", "index": 0}',
            )
        )
        return None
    if not isinstance(task, dict):
        problems.append(_problem("task", "must be an object with 'type' and 'index'", got=repr(task)))
        return None
    for key in task:
        if key not in ("type", "index"):
            near = did_you_mean(str(key), ("type", "index"))
            problems.append(_problem(f"task.{key}", "unknown key", suggestion=near))
    task_type, index = task.get("type"), task.get("index", 0)
    if not isinstance(task_type, str):
        problems.append(
            _problem("task.type", "is missing: 'chief' or 'worker'", got=None if task_type is None else repr(task_type))
        )
        return None
    if task_type not in jobs:
        known = ", ".join(jobs) or "none"
        if task_type in ("ps", "evaluator"):
            return None  # already reported on the cluster
        problems.append(
            _problem(
                "task.type",
                f"'{task_type}' is not a job of the cluster (jobs: {known})",
                suggestion=did_you_mean(task_type, list(jobs)),
            )
        )
        return None
    if isinstance(index, bool) or not isinstance(index, int):
        problems.append(_problem("task.index", "must be a whole number", got=repr(index)))
        return None
    size = len(jobs[task_type])
    if not 0 <= index < size:
        noun = task_type if size == 1 else f"{task_type}s"
        problems.append(
            _problem(
                "task.index", f"{index} is out of range for '{task_type}' ({size} {noun})", hint=f"Use 0 to {size - 1}."
            )
        )
        return None
    return task_type, index


def validate_tf_config(environ: Mapping[str, str] = os.environ) -> ClusterInfo | None:
    """Parse and check the ``TF_CONFIG`` environment variable before anything is written.

    Args:
        environ: Environment to read. Defaults to ``os.environ``.

    Returns:
        The cluster and this task, or None when ``TF_CONFIG`` is unset or empty (a single worker).

    Raises:
        ConfigError: Every problem at once (malformed JSON, missing cluster/task, unknown job or task
            type, index out of range, bad address), each naming ``TF_CONFIG`` and the field.
    """
    text = environ.get(TF_CONFIG, "")
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            problems=[
                _problem(
                    "",
                    f"is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
                    got=text if len(text) <= 200 else text[:200] + "...",
                    hint=EXAMPLE,
                )
            ]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(problems=[_problem("", "must be a JSON object", got=type(data).__name__, hint=EXAMPLE)])
    problems: list[Problem] = []
    for key in data:
        if key not in TF_CONFIG_KEYS:
            problems.append(_problem(str(key), "unknown key", suggestion=did_you_mean(str(key), TF_CONFIG_KEYS)))
    jobs = _check_cluster(data.get("cluster"), problems)
    task = _check_task(data.get("task"), jobs, problems)
    if problems or task is None:
        raise ConfigError(problems=problems)
    return ClusterInfo(cluster=jobs, task_type=task[0], task_index=task[1])


def _normalize_device(name: str) -> str | None:
    import tensorflow as tf

    try:
        spec = tf.DeviceSpec.from_string(name if name.startswith("/") else f"/{name}")
    except ValueError:
        return None
    if not spec.device_type:
        return None
    return f"{spec.device_type.upper()}:{spec.device_index or 0}"


def _mirrored(devices: list[str] | None) -> tf.distribute.Strategy:
    import tensorflow as tf

    if not devices:
        return tf.distribute.MirroredStrategy()
    available = {}
    for device in tf.config.list_logical_devices():
        available[f"{device.device_type.upper()}:{device.name.rsplit(':', 1)[-1]}"] = device.name
    problems = []
    chosen = []
    for i, name in enumerate(devices):
        key = _normalize_device(name)
        if key is None or key not in available:
            problems.append(
                Problem(
                    path=f"training.distribution.devices[{i}]",
                    message=f"no such device on this machine (available: {', '.join(sorted(available))})",
                    got=repr(name),
                    suggestion=did_you_mean(key or name, [k for k in available if key and k[:3] == key[:3]]),
                )
            )
        else:
            chosen.append(available[key])
    if problems:
        raise ConfigError(problems=problems)
    if len(set(chosen)) != len(chosen):
        raise ConfigError(problems=[Problem(path="training.distribution.devices", message="lists a device twice")])
    return tf.distribute.MirroredStrategy(devices=chosen)


def _tpu() -> tf.distribute.Strategy:
    import tensorflow as tf

    hint = "Run on a TPU VM (or set TPU_NAME), or use strategy none, mirrored or multi_worker_mirrored."
    name = os.environ.get("TPU_NAME", "")
    if not name and not (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        # Without a name or a local TPU, the resolver would spend seconds probing the GCE metadata server.
        raise ConfigError(
            problems=[
                Problem(
                    path="training.distribution.strategy",
                    message="strategy 'tpu' needs a TPU: no local TPU device and TPU_NAME is not set",
                    hint=hint,
                )
            ]
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name or "local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            problems=[
                Problem(
                    path="training.distribution.strategy",
                    message=f"strategy 'tpu' needs a TPU, and none was found ({first})",
                    hint=hint,
                )
            ]
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(dist: DistributionConfig) -> tf.distribute.Strategy | None:
    """Build the tf.distribute strategy named by ``training.distribution``.

    Call it first, before any other TensorFlow work (datasets, models): MultiWorkerMirroredStrategy must
    configure TensorFlow's collective ops at program start-up.

    Args:
        dist: The ``training.distribution`` section.

    Returns:
        None for ``none`` (Keras' default single-device strategy); otherwise the strategy, under whose
        ``scope()`` the model and optimizer must be built and compiled.

    Raises:
        ConfigError: Unknown devices, a bad ``TF_CONFIG`` or no TPU.
    """
    import tensorflow as tf

    if dist.strategy == "none":
        if dist.devices:
            raise ConfigError(
                problems=[Problem(path="training.distribution.devices", message="applies to strategy mirrored only")]
            )
        return None
    if dist.strategy == "mirrored":
        strategy = _mirrored(dist.devices)
    elif dist.strategy == "multi_worker_mirrored":
        if dist.devices:
            raise ConfigError(
                problems=[
                    Problem(
                        path="training.distribution.devices",
                        message="applies to strategy mirrored only; multi_worker_mirrored uses every local GPU",
                        hint="Limit GPUs per worker with CUDA_VISIBLE_DEVICES.",
                    )
                ]
            )
        info = validate_tf_config()
        if info is None:
            log.warning("strategy multi_worker_mirrored without TF_CONFIG: training as a single worker")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = _tpu()
    log.info(
        "strategy %s: %d replica(s) in sync%s",
        dist.strategy,
        strategy.num_replicas_in_sync,
        "" if dist.strategy != "multi_worker_mirrored" else f", task {task_role(strategy)}",
    )
    return strategy


def check_global_batch(strategy: tf.distribute.Strategy | None, batch_size: int) -> None:
    """Refuse a global batch that does not split evenly across the replicas.

    Raises:
        ConfigError: ``data.batch_size`` is not a multiple of the number of replicas.
    """
    if strategy is None:
        return
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        lower = max(replicas, batch_size - batch_size % replicas)
        raise ConfigError(
            problems=[
                Problem(
                    path="data.batch_size",
                    message=f"the global batch must split evenly across {replicas} replicas",
                    got=str(batch_size),
                    hint=f"Use a multiple of {replicas}, e.g. {lower} or {lower + replicas}.",
                )
            ]
        )


def reduce_before_clipping(optimizer: Any) -> bool:
    """Make gradient clipping see the all-reduced (global) gradient, as it does on one device.

    Keras 3 clips each replica's local gradient and only then sums them across replicas, so under a
    multi-replica strategy ``clipnorm``/``global_clipnorm``/``clipvalue`` act on the wrong quantity (a 2-device
    run drifted from the one-device run by 3e-3 in our test). This sums the gradients first, inside
    ``apply``, and turns Keras' later sum into a no-op: still one all-reduce per step. The gradient monitor,
    which hooks ``_clip_gradients``, then sees the global gradient too, identical on every worker.

    Call it once after ``compile`` under the strategy; a no-op (returns False) without clipping or when
    already applied.

    Args:
        optimizer: The compiled model's optimizer (a LossScaleOptimizer's inner optimizer is patched).

    Returns:
        Whether the optimizer was patched.
    """
    import tensorflow as tf

    inner = getattr(optimizer, "inner_optimizer", optimizer)
    clipping = any(getattr(inner, name, None) for name in ("clipnorm", "clipvalue", "global_clipnorm"))
    if not clipping or getattr(inner, "_dlkit_reduce_first", False):
        return False
    original_apply = inner.apply
    original_reduce = inner._all_reduce_sum_gradients

    def _multi_replica() -> Any:
        ctx = tf.distribute.get_replica_context()
        return ctx if ctx is not None and ctx.num_replicas_in_sync > 1 else None

    def apply(grads: list[Any], trainable_variables: Any = None) -> Any:
        ctx = _multi_replica()
        if ctx is not None:
            grads = list(grads)
            present = [g for g in grads if g is not None]
            summed = iter(ctx.all_reduce(tf.distribute.ReduceOp.SUM, present) if present else [])
            grads = [None if g is None else next(summed) for g in grads]
        return original_apply(grads, trainable_variables)

    def all_reduce_sum_gradients(grads_and_vars: Any) -> Any:
        # Already summed in apply (above) whenever there is more than one replica.
        return list(grads_and_vars) if _multi_replica() is not None else original_reduce(grads_and_vars)

    inner.apply = apply
    inner._all_reduce_sum_gradients = all_reduce_sum_gradients
    inner._dlkit_reduce_first = True
    return True


def needs_custom_loop(strategy: tf.distribute.Strategy | None) -> bool:
    """True where ``model.fit`` cannot run: MultiWorkerMirroredStrategy (keras-team/keras#20585)."""
    if strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def task_role(strategy: tf.distribute.Strategy | None = None) -> str:
    """This process's ``<type>-<index>`` in the cluster (``chief-0`` when not distributed across workers)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is not None and resolver.task_type:
        return f"{resolver.task_type}-{resolver.task_id or 0}"
    return "chief-0"


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run folder, metrics and exports.

    Args:
        strategy: The strategy in use. Defaults to None (one process: always the chief).
    """
    if strategy is None or not needs_custom_loop(strategy):
        return True
    return bool(strategy.extended.should_checkpoint)


@contextlib.contextmanager
def worker_dir(run_dir: str | os.PathLike[str] | None, strategy: tf.distribute.Strategy | None) -> Iterator[Path]:
    """The folder this process writes to: ``run_dir`` on the chief, a scratch folder on other workers.

    Only the chief writes the run folder. Other workers get a fresh temporary folder (never inside the run
    folder, which may be on a shared file system), removed when the block ends: on resume the chief
    broadcasts its restored state (``multiworker.sync_from_chief``), so they never need their own copies.

    Args:
        run_dir: The run folder; required on the chief, ignored elsewhere.
        strategy: The strategy in use.
    """
    if is_chief(strategy):
        if run_dir is None:
            raise ValueError("the chief needs a run folder")
        yield Path(run_dir)
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"dlkit-{task_role(strategy)}-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
