"""Kill a real ``dlkit train`` process (SIGKILL, SIGINT, SIGTERM) after its first epoch checkpoint, resume it, and
check the final weights equal an uninterrupted run's bit for bit (same seed, separate processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CONFIG = """
name: kill
seed: 11
data: {source: synthetic, samples: 2400, batch_size: 32, validation_split: 0.1}
model:
  input_shape: [16]
  layers:
    - {type: Dense, units: 64, activation: relu}
    - {type: Dropout, rate: 0.2}
    - {type: Dense, units: 4, activation: softmax}
optimizer: {type: adam, learning_rate: 0.002, global_clipnorm: 1.0}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
callbacks:
  - {type: ReduceLROnPlateau, monitor: loss, patience: 1, factor: 0.5, min_delta: 0.05}
training: {epochs: 4, steps_per_execution: 4}
"""
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def _dlkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlkit", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1"}


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(path, compile=False).get_weights()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted reference run and three runs killed after their first checkpoint, then resumed."""
    root = tmp_path_factory.mktemp("kill")
    config = root / "kill.yaml"
    config.write_text(textwrap.dedent(CONFIG).lstrip())
    runs_dir = root / "runs"
    procs = {
        name: subprocess.Popen(
            # SIGINT/SIGTERM runs use --json: the one JSON object (status, run_dir) must still reach stdout.
            _dlkit("train", str(config), "--runs-dir", str(runs_dir), "--name", name)
            + (["--json"] if name in ("SIGINT", "SIGTERM") else []),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("reference", "again", *SIGNALS)
    }
    first = {name: runs_dir / name / "001" / "checkpoints" / "epoch-0001.json" for name in SIGNALS}
    sent: dict[str, float] = {}
    deadline = time.monotonic() + 240
    while len(sent) < len(SIGNALS) and time.monotonic() < deadline:
        for name, sig in SIGNALS.items():
            if name not in sent and first[name].exists():
                procs[name].send_signal(sig)
                sent[name] = time.monotonic()
        time.sleep(0.05)
    killed = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        run_json = runs_dir / name / "001" / "run.json"
        killed[name] = (proc.returncode, out, err, json.loads(run_json.read_text()))
    resumed = {}
    resumers = {
        name: subprocess.Popen(
            _dlkit("train", "--resume", str(runs_dir / name), "--json"),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in SIGNALS
    }
    for name, proc in resumers.items():
        out, err = proc.communicate(timeout=300)
        resumed[name] = (proc.returncode, out, err)
    return runs_dir, killed, resumed


def test_reference_run_completes(runs):
    runs_dir, killed, _ = runs
    code, _, err, _ = killed["reference"]
    assert code == 0, err
    assert json.loads((runs_dir / "reference" / "001" / "run.json").read_text())["epochs_done"] == 4


def test_same_config_and_seed_give_identical_weights_in_two_processes(runs):
    runs_dir, killed, _ = runs
    assert killed["again"][0] == 0, killed["again"][2]
    first = _weights(runs_dir / "reference" / "001" / "model.keras")
    second = _weights(runs_dir / "again" / "001" / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("name", list(SIGNALS))
def test_killed_run_resumes_to_the_same_weights(runs, name):
    runs_dir, killed, resumed = runs
    code, stdout, err, info = killed[name]
    run = runs_dir / name / "001"
    if name == "SIGKILL":
        assert code == -signal.SIGKILL
        assert info["status"] == "running"  # nothing could record the kill
    else:
        assert code == 128 + SIGNALS[name], err
        assert info["status"] == "interrupted"
        assert f"Interrupted by {name}" in err and "error:" not in err  # a stop is not an error
        assert f"Resume with: dlkit train --resume {run}" in err
        assert "Traceback" not in err and "Aborted" not in err
        assert 1 <= info["epochs_done"] < 4
        stopped = json.loads(stdout)
        assert stopped["status"] == "interrupted" and stopped["run_dir"] == str(run)
        assert stopped["epochs"] == info["epochs_done"]
    assert info["epochs_done"] < 4  # after SIGKILL run.json may lag the newest checkpoint by one write
    rcode, out, rerr = resumed[name]
    assert rcode == 0, rerr
    result = json.loads(out)
    assert result["status"] == "completed" and result["epochs"] == 4
    reference = _weights(runs_dir / "reference" / "001" / "model.keras")
    mine = _weights(run / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(reference, mine, strict=True))
    ref_rows = (runs_dir / "reference" / "001" / "metrics.csv").read_text().splitlines()
    rows = (run / "metrics.csv").read_text().splitlines()
    lr = ref_rows[0].split(",").index("lr")
    assert [r.split(",")[: lr + 1] for r in rows] == [r.split(",")[: lr + 1] for r in ref_rows]
