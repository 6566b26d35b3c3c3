"""scripts/launch_local_cluster.py: TF_CONFIG per worker, prefixed output, stop-all with escalation, exit codes.

Most tests run a fake ``dlkit`` (a tiny Python script, no TensorFlow) so they are fast; one slow test runs the
real ``dlkit train`` as two workers end to end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "launch_local_cluster.py"

FAKE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    conf = json.loads(os.environ["TF_CONFIG"])
    index = conf["task"]["index"]
    mode = os.environ.get("FAKE_MODE", "ok")

    def on_term(signum, frame):
        print(f"got SIGTERM", flush=True)
        sys.exit(143)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
    print(json.dumps({"argv": sys.argv[1:], "conf": conf}), flush=True)
    if mode == "ok":
        sys.exit(0)
    if mode in ("fail", "stubborn") and index == 1:
        time.sleep(0.3)
        print("failing", flush=True)
        sys.exit(3)
    print("waiting", flush=True)
    time.sleep(60)
    """
)


def _launch(
    tmp_path: Path, *args: str, mode: str = "ok", wait: bool = True, **kw
) -> subprocess.Popen | subprocess.CompletedProcess:
    fake = tmp_path / "fake_dlkit.py"
    fake.write_text(FAKE)
    env = dict(os.environ, FAKE_MODE=mode)
    env.pop("TF_CONFIG", None)
    command = [sys.executable, str(SCRIPT), "--dlkit", f"{sys.executable} {fake}", *args]
    if wait:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, **kw)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _worker_lines(stdout: str) -> dict[int, list[str]]:
    lines: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        match = re.match(r"\[worker (\d+)\] (.*)", line)
        if match:
            lines.setdefault(int(match[1]), []).append(match[2])
    return lines


def test_each_worker_gets_its_tf_config_and_the_train_args(tmp_path):
    result = _launch(tmp_path, "3", "cfg.yaml", "--", "--set", "training.epochs=2")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _worker_lines(result.stdout)
    assert sorted(lines) == [0, 1, 2]
    reports = {i: json.loads(lines[i][0]) for i in lines}
    cluster = reports[0]["conf"]["cluster"]
    assert len(cluster["worker"]) == 3 and len(set(cluster["worker"])) == 3
    assert all(address.startswith("127.0.0.1:") for address in cluster["worker"])
    for i, report in reports.items():
        assert report["conf"] == {"cluster": cluster, "task": {"type": "worker", "index": i}}
        assert report["argv"] == ["train", "cfg.yaml", "--set", "training.epochs=2"]
    assert "[launcher] all 3 workers finished" in result.stdout
    assert result.stdout.count("TF_CONFIG=") == 3


def test_one_failure_stops_the_others_and_gives_its_exit_code(tmp_path):
    start = time.monotonic()
    result = _launch(tmp_path, "--grace", "10", "3", "cfg.yaml", mode="fail")
    assert result.returncode == 3, result.stdout + result.stderr
    assert time.monotonic() - start < 20
    lines = _worker_lines(result.stdout)
    assert "failing" in lines[1]
    for i in (0, 2):
        assert lines[i][-1] == "got SIGTERM", lines
    assert "[launcher] worker 1 exited with 3: stopping the others" in result.stdout


def test_workers_ignoring_sigterm_are_killed_after_the_grace_period(tmp_path):
    start = time.monotonic()
    result = _launch(tmp_path, "--grace", "1", "2", "cfg.yaml", mode="stubborn")
    assert result.returncode == 3
    assert time.monotonic() - start < 15
    assert "[launcher] worker 0 still running 1s after SIGTERM: killing it" in result.stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_every_worker(tmp_path, signum, code):
    proc = _launch(tmp_path, "--grace", "10", "2", "cfg.yaml", mode="wait", wait=False)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if sum("waiting" in s for s in seen) == 2:
            break
    proc.send_signal(signum)
    rest, _ = proc.communicate(timeout=30)
    output = "".join(seen) + rest
    assert proc.returncode == code, output
    lines = _worker_lines(output)
    assert lines[0][-1] == lines[1][-1] == "got SIGTERM"
    assert f"[launcher] {signal.Signals(signum).name}: stopping every worker" in output


def test_usage_errors(tmp_path):
    result = _launch(tmp_path, "0", "cfg.yaml")
    assert result.returncode == 2 and "N must be at least 1 (got 0)" in result.stderr
    result = _launch(tmp_path, "2")
    assert result.returncode == 2 and "give a CONFIG" in result.stderr


@pytest.mark.slow
def test_two_real_workers_train_one_run_folder_and_resume(tmp_path, write_config):
    config = write_config(
        """
        name: tiny
        seed: 1
        data: {source: synthetic, samples: 128, batch_size: 32, validation_split: 0.25}
        model:
          input_shape: [4]
          layers:
            - {type: Dense, units: 8, activation: relu}
            - {type: Dense, units: 3, activation: softmax}
        optimizer: {type: Adam, learning_rate: 0.01}
        loss: sparse_categorical_crossentropy
        metrics: [accuracy]
        training: {epochs: 2, distribution: {strategy: multi_worker_mirrored}}
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    runs = tmp_path / "runs"

    def launch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--grace", "10", "2", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )

    result = launch(str(config), "--", "--runs-dir", str(runs))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    run_dirs = [p for p in (runs / "tiny").iterdir() if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs  # only the chief made a run folder
    run = run_dirs[0]
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3, rows  # header + 2 epochs, written once
    assert json.loads((run / "run.json").read_text())["status"] == "completed"

    # Relaunch every worker on the run: the chief restores epoch 2 and broadcasts it; worker 1 has no state.
    result = launch("--", "--resume", str(run), "--set", "training.epochs=3")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    lines = _worker_lines(result.stdout)
    for i in (0, 1):
        epochs = [line for line in lines[i] if re.match(r"epoch \d+/3", line)]
        assert [e.split()[1] for e in epochs] == ["3/3"], lines[i]
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and [r["from_epoch"] for r in info["resumes"]] == [2]
    assert sorted(p.name for p in (runs / "tiny").iterdir()) == [run.name]
