"""Scale-out: TF_CONFIG validation, strategies, custom_fit, multi-worker equivalence, preemption and resume.

The multi-device/multi-worker tests run subprocesses (tests/training/distribute_worker.py): logical CPU
devices must be configured before TensorFlow initializes, and each worker is its own process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dlkit.config.schema import DistributionConfig
from dlkit.errors import ConfigError
from dlkit.training import distribute
from dlkit.training.distribute import ClusterInfo, validate_tf_config

WORKER = Path(__file__).with_name("distribute_worker.py")
TIMEOUT = 180


def _tf_config(cluster: object, task: object = None) -> dict[str, str]:
    data: dict[str, object] = {"cluster": cluster}
    if task is not None:
        data["task"] = task
    return {"TF_CONFIG": json.dumps(data)}


def _problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_tf_config(environ)
    return [p.render() for p in info.value.problems]


# --- TF_CONFIG ---------------------------------------------------------------------------------------------


def test_no_tf_config_means_single_worker():
    assert validate_tf_config({}) is None
    assert validate_tf_config({"TF_CONFIG": "  "}) is None


def test_valid_tf_config():
    info = validate_tf_config(_tf_config({"worker": ["h1:1000", "h2:1000"]}, {"type": "worker", "index": 1}))
    assert info == ClusterInfo({"worker": ["h1:1000", "h2:1000"]}, "worker", 1)
    assert info.num_workers == 2 and not info.is_chief and info.address == "h2:1000"
    chief = validate_tf_config(
        _tf_config({"chief": ["c:1"], "worker": ["w:1"]}, {"type": "chief", "index": 0}) | {"X": "1"}
    )
    assert chief is not None and chief.is_chief and chief.num_workers == 2
    assert validate_tf_config(_tf_config({"worker": ["a:1"]}, {"type": "worker", "index": 0})).is_chief


def test_index_out_of_range_names_variable_and_field():
    problems = _problems(_tf_config({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 3}))
    assert problems == ["TF_CONFIG: task.index: 3 is out of range for 'worker' (2 workers). Use 0 to 1."]


def test_malformed_json():
    (problem,) = _problems({"TF_CONFIG": '{"cluster": {"worker": ["a:1"]'})
    assert problem.startswith("TF_CONFIG: is not valid JSON: Expecting ',' delimiter at line 1, column 31 (got ")
    assert ". Example: TF_CONFIG=" in problem


def test_unknown_task_type_suggests():
    (problem,) = _problems(_tf_config({"worker": ["a:1"]}, {"type": "wroker", "index": 0}))
    assert (
        problem == "TF_CONFIG: task.type: 'wroker' is not a job of the cluster (jobs: worker). Did you mean 'worker'?"
    )


def test_every_problem_at_once():
    problems = _problems(
        {
            "TF_CONFIG": json.dumps(
                {"clustr": 1, "cluster": {"chief": ["a:1", "b:2"], "workers": ["c:3"], "ps": ["d:4"]}, "task": None}
            )
        }
    )
    assert "TF_CONFIG: clustr: unknown key. Did you mean 'cluster'?" in problems
    assert "TF_CONFIG: cluster.chief: must hold exactly one address (got 2)" in problems
    assert (
        "TF_CONFIG: cluster.workers: unknown job name; expected 'chief' or 'worker'. Did you mean 'worker'?" in problems
    )
    assert any(p.startswith("TF_CONFIG: cluster.ps: parameter servers are not supported") for p in problems)
    assert any(p.startswith("TF_CONFIG: task: is missing") for p in problems)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TF_CONFIG": "[1]"}, "TF_CONFIG: must be a JSON object (got list)"),
        (_tf_config(None, {"type": "worker"}), "TF_CONFIG: cluster: is missing"),
        (_tf_config({"worker": []}, {"type": "worker"}), "TF_CONFIG: cluster.worker: must be a non-empty list"),
        (_tf_config({"worker": ["a"]}, {"type": "worker"}), "TF_CONFIG: cluster.worker[0]: must be 'host:port'"),
        (_tf_config({"worker": ["a:99999"]}, {"type": "worker"}), "TF_CONFIG: cluster.worker[0]: must be 'host:port'"),
        (_tf_config({"worker": ["a:1", "a:1"]}, {"type": "worker"}), "TF_CONFIG: cluster.worker[1]: address a:1 is"),
        (_tf_config({"worker": ["a:1"]}, {"index": 0}), "TF_CONFIG: task.type: is missing"),
        (_tf_config({"worker": ["a:1"]}, {"type": "worker", "index": True}), "TF_CONFIG: task.index: must be a whole"),
        (_tf_config({"worker": ["a:1"]}, {"type": "worker", "index": -1}), "TF_CONFIG: task.index: -1 is out of range"),
        (_tf_config({"evaluator": ["a:1"]}, {"type": "evaluator"}), "TF_CONFIG: cluster.evaluator: a side-car"),
    ],
)
def test_bad_tf_config(environ, expected):
    assert any(p.startswith(expected) for p in _problems(environ)), _problems(environ)


# --- strategies (in-process: one CPU device) ---------------------------------------------------------------


def test_none_strategy_and_roles():
    assert distribute.get_strategy(DistributionConfig()) is None
    assert distribute.is_chief(None) and not distribute.needs_custom_loop(None)
    assert distribute.task_role(None) == "chief-0"
    distribute.check_global_batch(None, 7)


def test_mirrored_unknown_device_is_config_error():
    with pytest.raises(ConfigError) as info:
        distribute.get_strategy(DistributionConfig(strategy="mirrored", devices=["/cpu:0", "/gpu:3", "tpu"]))
    lines = [p.render() for p in info.value.problems]
    assert lines == [
        "training.distribution.devices[1]: no such device on this machine (available: CPU:0) (got '/gpu:3')",
        "training.distribution.devices[2]: no such device on this machine (available: CPU:0) (got 'tpu')",
    ]


def test_mirrored_strategy_on_cpu_and_batch_check():
    strategy = distribute.get_strategy(DistributionConfig(strategy="mirrored", devices=["cpu:0"]))
    assert strategy is not None and strategy.num_replicas_in_sync == 1
    assert distribute.is_chief(strategy) and not distribute.needs_custom_loop(strategy)

    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(ConfigError, match=r"data.batch_size: the global batch must split evenly across 2 replicas"):
        distribute.check_global_batch(TwoReplicas(), 33)  # type: ignore[arg-type]
    distribute.check_global_batch(TwoReplicas(), 32)  # type: ignore[arg-type]


def test_reduce_before_clipping_patches_once_and_only_with_clipping():
    import keras

    assert not distribute.reduce_before_clipping(keras.optimizers.SGD(0.1))
    sgd = keras.optimizers.SGD(0.1, clipnorm=1.0)
    assert distribute.reduce_before_clipping(sgd) and not distribute.reduce_before_clipping(sgd)
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(global_clipnorm=1.0))
    assert distribute.reduce_before_clipping(scaled) and scaled.inner_optimizer._dlkit_reduce_first
    # Outside a multi-replica context the optimizer behaves exactly as before.
    variable = keras.Variable([1.0, -2.0])
    sgd.apply([keras.ops.convert_to_tensor([3.0, 4.0])], [variable])
    np.testing.assert_allclose(variable.numpy(), [1.0 - 0.1 * 0.6, -2.0 - 0.1 * 0.8], rtol=1e-6)


def test_devices_only_with_mirrored():
    with pytest.raises(ConfigError, match="applies to strategy mirrored only"):
        distribute.get_strategy(DistributionConfig(strategy="none", devices=["cpu:0"]))


def test_tpu_without_tpu_is_config_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ConfigError, match="strategy 'tpu' needs a TPU"):
        distribute.get_strategy(DistributionConfig(strategy="tpu"))


def test_worker_dir_chief_and_scratch(tmp_path):
    with distribute.worker_dir(tmp_path, None) as folder:
        assert folder == tmp_path

    class NonChief:
        num_replicas_in_sync = 2

        class extended:  # noqa: N801 - mimics tf.distribute's attribute
            should_checkpoint = False

        class cluster_resolver:  # noqa: N801
            task_type, task_id = "worker", 1

    fake = NonChief()
    distribute_needs = distribute.needs_custom_loop
    try:
        distribute.needs_custom_loop = lambda strategy: True  # type: ignore[assignment]
        with distribute.worker_dir(tmp_path, fake) as folder:  # type: ignore[arg-type]
            assert "dlkit-worker-1-" in folder.name and folder.is_dir() and tmp_path not in folder.parents
        assert not folder.exists() and list(tmp_path.iterdir()) == []
        with distribute.worker_dir(None, fake) as folder:  # type: ignore[arg-type]
            assert "dlkit-worker-1-" in folder.name and folder.is_dir()
        assert not folder.exists()
    finally:
        distribute.needs_custom_loop = distribute_needs  # type: ignore[assignment]


@pytest.mark.slow
def test_custom_fit_matches_fit_with_mixed_precision_and_clipping():
    import keras
    import tensorflow as tf

    from dlkit.training.multiworker import custom_fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(16)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])

    def build():
        keras.utils.set_random_seed(3)
        with strategy.scope():
            model = keras.Sequential(
                [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
                + [keras.layers.Activation("softmax", dtype="float32")]
            )
            model.compile(
                optimizer=keras.optimizers.SGD(0.1, clipnorm=0.5),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
        return model

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        a = build()
        assert distribute.reduce_before_clipping(a.optimizer)  # one replica: must change nothing
        assert isinstance(a.optimizer, keras.optimizers.LossScaleOptimizer)
        fit_history = a.fit(train, validation_data=val, epochs=2, verbose=0).history
        b = build()
        seen = []

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                seen.append(sorted(logs))

        custom_history = custom_fit(b, train, val, epochs=2, callbacks=[Stop()], strategy=strategy).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert sorted(custom_history) == sorted(fit_history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert seen == [sorted(fit_history)] * 2
    for key, values in fit_history.items():
        np.testing.assert_allclose(custom_history[key], values, rtol=1e-5, err_msg=key)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, atol=1e-6)
    assert int(b.optimizer.iterations.numpy()) == 8


@pytest.mark.slow
def test_custom_fit_honours_stop_training():
    import keras
    import tensorflow as tf

    from dlkit.training.multiworker import custom_fit

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((40, 2), "float32"), np.ones((40, 1), "float32"))).batch(4)

    class StopAfter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    history = custom_fit(model, data, epochs=5, initial_epoch=1, callbacks=[StopAfter()], strategy=strategy)
    assert history.epoch == [1] and int(model.optimizer.iterations.numpy()) == 3


# --- subprocesses: 2 logical devices, 2 workers, preemption ------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "DLKIT_TEST_SLOW")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **extra)
    return env


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(out: Path, epochs: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, str(WORKER), str(out), str(epochs)], env=env, stdout=fh, stderr=subprocess.STDOUT
        )


def _workers(out: Path, epochs: int, n: int = 2, **extra: str) -> list[subprocess.Popen]:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(n)]}
    return [
        _start(
            out,
            epochs,
            _env(
                DLKIT_TEST_STRATEGY="multi_worker_mirrored",
                DLKIT_TEST_LOOP="custom",
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                **extra,
            ),
            out / f"worker-{i}.log",
        )
        for i in range(n)
    ]


def _wait(procs: list[subprocess.Popen]) -> list[int]:
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return codes


def _logs(out: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(out.glob("*.log")))


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    """One device (fit) and 2 logical CPU devices (fit, then custom_fit), 3 epochs each, run side by side."""
    dirs = {name: tmp_path_factory.mktemp(name) for name in ("single", "mirrored")}
    procs = [
        _start(dirs["single"], 3, _env(DLKIT_TEST_STRATEGY="none"), dirs["single"] / "run.log"),
        _start(
            dirs["mirrored"],
            3,
            _env(DLKIT_TEST_STRATEGY="mirrored", DLKIT_TEST_LOOP="both"),
            dirs["mirrored"] / "run.log",
        ),
    ]
    codes = _wait(procs)
    assert codes == [0, 0], _logs(dirs["single"]) + _logs(dirs["mirrored"])
    return dirs


@pytest.mark.slow
def test_mirrored_on_two_devices_matches_one_device(reference):
    single = _weights(reference["single"] / "final-fit-chief-0.npz")
    mirrored = _weights(reference["mirrored"] / "final-fit-chief-0.npz")
    assert _max_diff(single, mirrored) < 1e-6
    one = json.loads((reference["single"] / "final-fit-chief-0.json").read_text())["history"]
    two = json.loads((reference["mirrored"] / "final-fit-chief-0.json").read_text())["history"]
    for key, values in one.items():
        np.testing.assert_allclose(two[key], values, rtol=1e-5, err_msg=key)


@pytest.mark.slow
def test_custom_fit_matches_fit_on_two_devices(reference):
    fit = json.loads((reference["mirrored"] / "final-fit-chief-0.json").read_text())
    custom = json.loads((reference["mirrored"] / "final-custom-chief-0.json").read_text())
    assert custom["batches"] == fit["batches"] == 24
    assert sorted(custom["history"]) == sorted(fit["history"]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key, values in fit["history"].items():
        np.testing.assert_allclose(custom["history"][key], values, rtol=1e-6, err_msg=key)
    weights_fit = _weights(reference["mirrored"] / "final-fit-chief-0.npz")
    assert _max_diff(weights_fit, _weights(reference["mirrored"] / "final-custom-chief-0.npz")) < 1e-6


@pytest.mark.slow
def test_two_workers_stop_together_on_sigterm_and_resume_to_the_mirrored_result(reference, tmp_path):
    # SIGTERM on worker 1 only: every worker stops after the same step and exits 143, the chief keeps the
    # checkpoint of the last finished epoch, worker 1 keeps nothing. Relaunched, the chief restores and
    # broadcasts its state, and the result equals an uninterrupted 3-epoch run on 2 mirrored devices.
    procs = _workers(tmp_path, 3, DLKIT_TEST_SLOW="0.1")
    log1 = tmp_path / "worker-1.log"
    deadline = time.monotonic() + TIMEOUT
    while "epoch-begin 1" not in log1.read_text() and time.monotonic() < deadline and procs[1].poll() is None:
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGTERM)
    assert _wait(procs) == [143, 143], _logs(tmp_path)
    for i in range(2):
        assert "on every worker; state saved" in (tmp_path / f"worker-{i}.log").read_text()
    stops = [json.loads((tmp_path / f"preempt-worker-{i}.json").read_text()) for i in range(2)]
    assert stops[0] == stops[1] and stops[0][0] in (1, 2), stops  # same epoch and step on both
    run = tmp_path / "run-custom"
    assert sorted(p.name for p in run.iterdir()) == ["state.json", "state.weights.h5"]  # nothing from worker 1
    saved = json.loads((run / "state.json").read_text())["epoch"]
    assert saved == stops[0][0]
    for log in tmp_path.glob("*.log"):
        log.rename(log.with_suffix(".first"))

    assert _wait(_workers(tmp_path, 3)) == [0, 0], _logs(tmp_path)
    for i in range(2):
        log = (tmp_path / f"worker-{i}.log").read_text()
        begun = [int(n) for n in re.findall(r"epoch-begin (\d+)", log)]
        assert begun == list(range(saved, 3)), log
    mirrored = _weights(reference["mirrored"] / "final-fit-chief-0.npz")
    w0, w1 = (_weights(tmp_path / f"final-custom-worker-{i}.npz") for i in range(2))
    assert _max_diff(w0, w1) == 0.0
    assert _max_diff(w0, mirrored) < 1e-6
    mirrored_history = json.loads((reference["mirrored"] / "final-fit-chief-0.json").read_text())["history"]
    history = json.loads((tmp_path / "final-custom-worker-0.json").read_text())["history"]
    np.testing.assert_allclose(history["loss"], mirrored_history["loss"][saved:], rtol=1e-6)


# --- through `dlkit train` ---------------------------------------------------------------------------------


def test_bad_tf_config_exits_2_via_dlkit_train_before_writing(tmp_path, write_config, runner, monkeypatch):
    from dlkit.cli.main import cli

    config = write_config(
        """
        name: mw
        data: {source: synthetic, samples: 64, batch_size: 16}
        model: {input_shape: [4], layers: [{type: Dense, units: 2, activation: softmax}]}
        loss: sparse_categorical_crossentropy
        training: {epochs: 1, distribution: {strategy: multi_worker_mirrored}}
        """
    )
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 3}})
    )
    result = runner.invoke(cli, ["train", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "TF_CONFIG: task.index: 3 is out of range for 'worker' (2 workers). Use 0 to 1." in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()

    monkeypatch.setenv("TF_CONFIG", "{oops")
    result = runner.invoke(cli, ["train", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "TF_CONFIG: is not valid JSON" in result.stderr
    assert not (tmp_path / "runs").exists()
