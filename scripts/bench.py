"""Benchmark dlkit against the hand-written Keras scripts it replaces, on identical work.

Every variant runs in its own fresh process; paired variants alternate (A B, then B A, ...) and each is
repeated (median of at least 3). Ratios are computed per side-by-side pair and then their median is taken,
so background load on a shared machine hits both sides of a ratio alike.

Benchmarks (``--only`` takes a comma list of these names):

- ``cnn``, ``mlp``, ``lstm`` (issue items a, b, d, e): ``dlkit train`` of a config vs the hand-written
  script in ``scripts/bench_baselines/`` doing the same math on the same sizes: whole-process wall time,
  steady-state images/s (median of the epochs after the first), time from process start to the first
  training step, and peak RSS (``os.wait4`` of each child).
- ``cnn10``: the seed CNN for the seed article's own 10 epochs (steady state from nine epochs per run).
- ``torch``: ``dlkit train`` of the seed CNN vs the same model written by hand in PyTorch eager
  (``bench_baselines/torch_cnn.py``, channels-last): steady-state images/s side by side. Optional: torch is not
  a dlkit dependency; without it this benchmark prints one line and is skipped.
- ``cli`` (c): ``dlkit --help``, ``dlkit --version`` and ``dlkit config check`` vs ``python -c "import tensorflow"``.
- ``latency`` (f): per-sample latency of one trained CNN: Keras ``predict`` vs ``predict_on_batch`` vs a
  ``tf.function`` call vs TFLite float32 and int8 files (``model.export(format="litert")``).
- ``monitor``: ``dlkit train`` with ``training.gradient_monitor`` on vs off (issue target: < 3 % cost).
- ``progress``: ``dlkit train`` with stderr a pseudo-terminal (live progress bar) vs a file, then the bar's own
  CPU per epoch timed directly (dlkit's Progress callback on a pseudo-terminal vs a file, driven as ``fit``
  drives it over an epoch as long as the measured ones).
- ``bf16``: ``dlkit train`` at batch 256 with ``training.precision`` ``mixed_bfloat16`` vs ``float32``.

"Same math": the dlkit configs written here match the baselines layer for layer (Rescaling inside the
model, adam, sparse categorical cross-entropy, accuracy, batch 32) with ``validation_split: 0`` and no
augmentation, regularization, clipping or callbacks, because the seed script has none of them. "Same data":
both sides read the same ``.npz`` file (``write_case_data``), dlkit as ``source: npz``, the scripts with
``--data``.

Writes ``BENCHMARKS.md`` and ``benchmarks.json`` into ``--out-dir`` (default: the repository root).
Usage: ``.venv/bin/python scripts/bench.py [--quick] [--repeats N] [--only cnn,cli,...] [--merge OLD.json]``.
``--merge`` keeps the sections of an earlier report that this run did not measure, each labelled with its run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASELINES = Path(__file__).resolve().parent / "bench_baselines"
BENCHMARKS = ("cnn", "cnn10", "mlp", "lstm", "torch", "cli", "latency", "monitor", "progress", "bf16")

# The same model, written once as a dlkit config and once by hand in bench_baselines/<name>.py.
# Sizes: (samples, epochs) for a full run and for --quick.
TRAIN_CASES: dict[str, dict[str, Any]] = {
    "cnn": {
        "title": "Seed CNN (32x32x3 images, 10 classes)",
        "sizes": {"full": (8192, 3), "quick": (256, 2)},
        "input_shape": [32, 32, 3],
        "preprocessing": [{"type": "Rescaling", "scale": 1.0 / 255}],
        "layers": [
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            "Flatten",
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
}
# The seed article runs its script for 10 epochs (`model.fit(x_train, y_train, epochs=10, batch_size=32)`):
# the same case at that length gives the steady-state median nine epochs per run instead of two.
TRAIN_CASES["cnn10"] = dict(
    TRAIN_CASES["cnn"],
    title="Seed CNN, the seed article's 10 epochs",
    sizes={"full": (8192, 10), "quick": (256, 3)},
    script="cnn",
)
TRAIN_CASES |= {
    "mlp": {
        "title": "MLP (32 tabular features, 10 classes)",
        "sizes": {"full": (32768, 3), "quick": (512, 2)},
        "input_shape": [32],
        "preprocessing": [],
        "layers": [
            {"type": "Dense", "units": 128, "activation": "relu"},
            {"type": "Dense", "units": 64, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "lstm": {
        "title": "LSTM (40 steps x 16 features, 10 classes)",
        "sizes": {"full": (4096, 3), "quick": (128, 2)},
        "input_shape": [40, 16],
        "preprocessing": [],
        "layers": [
            {"type": "LSTM", "units": 64},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
}


# --------------------------------------------------------------------------------------------------------------
# Running one child process


@dataclass
class ProcRun:
    """One finished child process: what ran, how long, how much memory, and where its output went."""

    label: str
    cmd: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    start_time: float  # time.time() just before the process was started
    log: str
    stdout: str = ""
    cpu_s: float | None = None  # user + system CPU seconds of the child
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def child_env() -> dict[str, str]:
    """The environment every child gets (identical for dlkit and the baselines)."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("NO_COLOR", "1")
    env["PYTHONUNBUFFERED"] = "1"
    # Lets `dlkit train --plugin bench_plugin` import the first-step callback (the baselines have it already).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BASELINES), env.get("PYTHONPATH", "")) if p)
    return env


def run_process(label: str, cmd: Sequence[str], log: Path, cwd: Path | None = None, tty: bool = False) -> ProcRun:
    """Run ``cmd`` to completion; measure its wall time and peak RSS (``os.wait4`` gives this child's own).

    stdout is kept (small: ``--json`` output), stderr goes to ``log``; with ``tty`` stderr is a pseudo-terminal
    (drained into ``log``), so programs that draw live progress bars on a terminal do so.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".stdout")
    env = child_env()
    with open(log, "wb") as err, open(out_path, "wb") as out:
        master = slave = -1
        if tty:
            master, slave = pty.openpty()
            env.setdefault("TERM", "xterm-256color")
            env["COLUMNS"], env["LINES"] = "120", "40"
        start_time = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=slave if tty else err, env=env, cwd=cwd)
        drain = None
        if tty:
            os.close(slave)
            drain = threading.Thread(target=_drain, args=(master, err), daemon=True)
            drain.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if drain is not None:
            drain.join(timeout=5)
            os.close(master)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; tell Popen so it does not wait again
    return ProcRun(
        label=label,
        cmd=list(cmd),
        returncode=proc.returncode,
        wall_s=wall,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
        start_time=start_time,
        log=str(log),
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        cpu_s=usage.ru_utime + usage.ru_stime,
    )


def _drain(fd: int, sink: Any) -> None:
    """Copy a pseudo-terminal's output into ``sink`` until the child closes it."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the child side is closed
            return
        if not data:
            return
        sink.write(data)


def dlkit_cmd() -> list[str]:
    """How a user runs dlkit from this environment: the console script beside this Python."""
    script = Path(sys.executable).parent / "dlkit"
    if script.exists():
        return [str(script)]
    found = shutil.which("dlkit")
    return [found] if found else [sys.executable, "-m", "dlkit"]


def log_tail(path: str, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------------------------------------------
# Statistics


def median(values: Sequence[float | None]) -> float | None:
    """Median of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def steady_state(per_epoch: Sequence[float]) -> float | None:
    """Median of the per-epoch figures after the first (the first includes tracing); the only one if just one."""
    if not per_epoch:
        return None
    return median(per_epoch[1:] if len(per_epoch) > 1 else per_epoch)


def fastest_epoch(per_epoch: Sequence[float]) -> float | None:
    """The best per-epoch figure after the first: throughput without the pauses some epochs have."""
    steady = list(per_epoch[1:] if len(per_epoch) > 1 else per_epoch)
    return max(steady) if steady else None


def ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def alternate(pair: tuple[str, str], repeats: int) -> list[str]:
    """A B, B A, A B, ...: each side of a pair goes first equally often."""
    order: list[str] = []
    for r in range(repeats):
        order.extend(pair if r % 2 == 0 else pair[::-1])
    return order


# --------------------------------------------------------------------------------------------------------------
# Reading back what each side recorded


def read_baseline_timing(path: Path, start_time: float, samples: int | None = None) -> dict[str, Any]:
    """A BenchTimer/BenchFirstStep JSON -> per-epoch samples per wall and per CPU second, and seconds from
    process start to the first step."""
    data = json.loads(path.read_text(encoding="utf-8"))
    first = data.get("first_step_time")
    samples = samples or data.get("samples_per_epoch")
    cpu = list(data.get("epoch_cpu_seconds", []))
    return {
        "samples_per_second": list(data.get("samples_per_second", [])),
        "epoch_seconds": list(data.get("epoch_seconds", [])),
        "samples_per_cpu_second": [samples / c for c in cpu if c > 0] if samples else [],
        "first_step_s": (first - start_time) if first else None,
        **{k: data[k] for k in ("torch", "threads", "memory_format") if k in data},
    }


_SPS_COLUMNS = ("samples_per_second", "samples_per_s", "samples_per_sec", "throughput", "images_per_second")
_TIME_COLUMNS = ("epoch_time_s", "epoch_seconds", "epoch_time", "time_s", "seconds", "duration_s", "time")


def read_metrics_csv(path: Path, samples: int) -> dict[str, list[float]]:
    """dlkit's metrics.csv -> per-epoch samples/s (from its own column, or samples / epoch time)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {"samples_per_second": [], "epoch_seconds": []}
    columns = rows[0].keys()
    sps_col = next((c for c in _SPS_COLUMNS if c in columns), None)
    time_col = next((c for c in _TIME_COLUMNS if c in columns), None)
    seconds = [float(r[time_col]) for r in rows if r.get(time_col)] if time_col else []
    from_col = [float(r[sps_col]) for r in rows if r.get(sps_col)] if sps_col else []
    sps = from_col or [samples / s for s in seconds if s > 0]
    return {"samples_per_second": sps, "epoch_seconds": seconds}


def _timestamp(value: Any) -> float | None:
    """A run.json time (epoch seconds or ISO 8601) -> epoch seconds."""
    if isinstance(value, int | float) and value > 1e9:
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


_FIRST_STEP_KEYS = ("first_step_at", "first_step", "first_batch_at", "first_train_step_at", "first_step_time")


def read_dlkit_first_step(run_json: Path, start_time: float) -> float | None:
    """Seconds from process start to dlkit's first training step, from the timestamp run.json records."""
    try:
        data = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    timings = data.get("timings") or {}
    for key in _FIRST_STEP_KEYS:
        stamp = _timestamp(timings.get(key, data.get(key)))
        if stamp is not None:
            return stamp - start_time
    return None


# --------------------------------------------------------------------------------------------------------------
# Configs


def write_case_data(case: str, samples: int, path: Path, seed: int = 42) -> Path:
    """The training arrays both sides read (``x``, ``y`` in one ``.npz``): the same file, so the same data.

    The recipes are the ones the baselines use without ``--data``: 0-255 pixel values stored as float32 for
    the CNN (Rescaling inside the model), standard-normal features for the MLP and LSTM, labels 0-9.
    """
    import numpy as np

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    shape = (samples, *TRAIN_CASES[case]["input_shape"])
    if TRAIN_CASES[case].get("script", case) == "cnn":
        x = rng.integers(0, 256, size=shape).astype("float32")
    else:
        x = rng.standard_normal(size=shape).astype("float32")
    y = rng.integers(0, 10, size=(samples,))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(path)
    return path


def case_config(case: str, samples: int, epochs: int, data_path: Path | str, **training: Any) -> dict[str, Any]:
    """The dlkit config doing the same math as ``bench_baselines/<case>.py`` on the same ``.npz`` file:
    no validation, no extras."""
    spec = TRAIN_CASES[case]
    batch_size = training.pop("batch_size", 32)
    optimizer = training.pop("optimizer", "adam")
    return {
        "name": f"bench-{case}",
        "seed": 42,
        "data": {
            "source": "npz",
            "path": str(data_path),
            "validation_split": 0.0,
            "batch_size": batch_size,
            "preprocessing": spec["preprocessing"],
        },
        "model": {"input_shape": spec["input_shape"], "layers": spec["layers"]},
        "optimizer": optimizer,
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "training": {"epochs": epochs, **training},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a config as YAML (JSON is valid YAML; keeps this script free of a YAML dependency)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------------------
# The benchmarks


class Bench:
    """Holds the options, the work folder and every result; one method per benchmark."""

    def __init__(
        self, work: Path, repeats: int, quick: bool, say: Callable[[str], None], epochs: int | None = None
    ) -> None:
        self.work = work
        self.repeats = repeats
        self.quick = quick
        self.epochs = epochs  # --epochs: overrides the 3 epochs of the train cases and torch
        self.say = say
        self.runs: list[dict[str, Any]] = []
        self.pair_runs: dict[str, dict[str, list[ProcRun]]] = {}
        self.results: dict[str, Any] = {}
        self.failures: list[str] = []
        self._counter = 0

    def _log(self, label: str) -> Path:
        self._counter += 1
        return self.work / "logs" / f"{self._counter:03d}-{label}.log"

    def _record(self, run: ProcRun) -> ProcRun:
        record = asdict(run)
        record["stdout"] = record["stdout"][-2000:]  # Keras' progress bar can fill megabytes; the tail is enough
        self.runs.append(record)
        status = "ok" if run.ok else f"FAILED (exit {run.returncode}, log {run.log})"
        self.say(
            f"  {run.label:<28} {run.wall_s:7.2f} s  {run.cpu_s or 0:7.2f} CPU-s  {run.peak_rss_mb:6.0f} MiB  {status}"
        )
        if not run.ok:
            self.failures.append(f"{run.label}: exit {run.returncode}\n{log_tail(run.log)}")
        return run

    # -- one training run on each side -------------------------------------------------------------------------

    def sizes(self, case: str) -> tuple[int, int]:
        """(samples, epochs) of a train case: full or --quick, with --epochs applied."""
        samples, epochs = TRAIN_CASES[case]["sizes"]["quick" if self.quick else "full"]
        return samples, self.epochs or epochs

    def data_file(self, case: str, samples: int) -> Path:
        """The ``.npz`` both sides of ``case`` train on (written once per size).

        Written by a child process: the arrays would otherwise raise this process's peak RSS, which Linux
        hands on to every child it starts (``ru_maxrss`` counts the parent's memory at the exec).
        """
        path = self.work / "data" / f"{TRAIN_CASES[case].get('script', case)}-{samples}.npz"
        if not path.exists():
            code = (
                "import sys, pathlib, bench\n"
                "bench.write_case_data(sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3]))"
            )
            env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent))
            subprocess.run([sys.executable, "-c", code, case, str(samples), str(path)], check=True, env=env)
        return path

    def config(self, case: str, samples: int, epochs: int, **training: Any) -> dict[str, Any]:
        return case_config(case, samples, epochs, self.data_file(case, samples), **training)

    def dlkit_train(self, label: str, config: dict[str, Any], samples: int, tty: bool = False) -> ProcRun:
        # run.json does not record when the first step began: a one-callback plugin writes it, as the
        # baselines' BenchTimer does (see bench_baselines/bench_plugin.py).
        first_step = self.work / "timing" / f"{label}-{self._counter + 1:03d}-first-step.json"
        first_step.parent.mkdir(parents=True, exist_ok=True)
        config = dict(config, callbacks=[{"type": "BenchFirstStep", "out": str(first_step)}])
        cfg = write_config(self.work / "configs" / f"{label}.yaml", config)
        runs_dir = self.work / "runs"
        cmd = [*dlkit_cmd(), "train", str(cfg), "--runs-dir", str(runs_dir), "--json", "--plugin", "bench_plugin"]
        run = self._record(run_process(label, cmd, self._log(label), cwd=self.work, tty=tty))
        if not run.ok:
            return run
        run_dir = self._run_dir(run, runs_dir / config["name"])
        if run_dir is None:
            self.failures.append(f"{label}: could not find the run folder")
            return run

        timing = read_metrics_csv(run_dir / "metrics.csv", samples) if (run_dir / "metrics.csv").exists() else {}
        timing["first_step_s"] = read_dlkit_first_step(run_dir / "run.json", run.start_time)
        if first_step.exists():
            outside = read_baseline_timing(first_step, run.start_time, samples)
            timing["samples_per_cpu_second"] = outside["samples_per_cpu_second"]
            if timing["first_step_s"] is None:
                timing["first_step_s"] = outside["first_step_s"]
        timing["run_dir"] = str(run_dir)
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            timing |= {k: recorded.get(k) for k in ("steps_per_epoch", "steps_per_execution")}
        run.extra.update(timing)
        self.runs[-1]["extra"] = run.extra
        return run

    @staticmethod
    def _run_dir(run: ProcRun, name_dir: Path) -> Path | None:
        try:
            return Path(json.loads(run.stdout)["run_dir"])
        except (ValueError, KeyError, TypeError):
            numbered = sorted(p for p in name_dir.glob("*") if p.is_dir()) if name_dir.exists() else []
            return numbered[-1] if numbered else None

    def baseline_train(self, label: str, case: str, samples: int, epochs: int, data: Path) -> ProcRun:
        """Run ``bench_baselines/<case>.py`` (a hand-written script) on ``data`` and read back its timing JSON."""
        timing_path = self.work / "timing" / f"{label}-{self._counter + 1:03d}.json"
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(BASELINES / f"{case}.py"), "--samples", str(samples), "--epochs", str(epochs)]
        cmd += ["--data", str(data), "--timing-out", str(timing_path)]
        run = self._record(run_process(label, cmd, self._log(label), cwd=self.work))
        if run.ok and timing_path.exists():
            run.extra.update(read_baseline_timing(timing_path, run.start_time))
            self.runs[-1]["extra"] = run.extra
        return run

    # -- a, b, d, e: dlkit train vs the hand-written script ----------------------------------------------------

    def train_case(self, case: str) -> None:
        samples, epochs = self.sizes(case)
        script = TRAIN_CASES[case].get("script", case)
        self.say(f"{case}: dlkit train vs bench_baselines/{script}.py, {samples} samples, {epochs} epochs, batch 32")
        config = self.config(case, samples, epochs)
        sides: dict[str, list[ProcRun]] = {"dlkit": [], "keras": []}
        for side in alternate(("dlkit", "keras"), self.repeats):
            label = f"{case}-{side}"
            if side == "dlkit":
                sides[side].append(self.dlkit_train(label, config, samples))
            else:
                data = self.data_file(case, samples)
                sides[side].append(self.baseline_train(label, script, samples, epochs, data))
        self.results[case] = summarize_pairs(sides["dlkit"], sides["keras"]) | {
            "title": TRAIN_CASES[case]["title"],
            "samples": samples,
            "epochs": epochs,
            "batch_size": 32,
        }

    # -- dlkit vs PyTorch eager (optional) --------------------------------------------------------------------

    def torch(self) -> None:
        samples, epochs = self.sizes("cnn")
        if importlib.util.find_spec("torch") is None:
            self.say("torch: skipped, torch is not importable here (optional: install a CPU build of torch to compare)")
            self.results["torch"] = {"skipped": "torch is not importable in this environment"}
            return
        self.say(f"torch: dlkit train seed CNN vs bench_baselines/torch_cnn.py (PyTorch eager), {samples} samples")
        config = self.config("cnn", samples, epochs)
        data = self.data_file("cnn", samples)
        sides: dict[str, list[ProcRun]] = {"dlkit": [], "pytorch": []}
        for side in alternate(("dlkit", "pytorch"), self.repeats):
            if side == "dlkit":
                sides[side].append(self.dlkit_train("torch-dlkit", config, samples))
            else:
                sides[side].append(self.baseline_train("torch-pytorch", "torch_cnn", samples, epochs, data))
        torch_runs = [r for r in sides["pytorch"] if r.ok]
        self.results["torch"] = summarize_pairs(sides["dlkit"], sides["pytorch"], names=("dlkit", "pytorch")) | {
            "title": "Seed CNN: dlkit train vs PyTorch eager",
            "samples": samples,
            "epochs": epochs,
            "batch_size": 32,
            "torch_version": torch_runs[0].extra.get("torch") if torch_runs else None,
            "torch_threads": torch_runs[0].extra.get("threads") if torch_runs else None,
            "memory_format": torch_runs[0].extra.get("memory_format") if torch_runs else None,
        }

    # -- monitor and bf16: dlkit vs dlkit ----------------------------------------------------------------------

    def dlkit_pair(
        self,
        key: str,
        a: tuple[str, dict[str, Any]],
        b: tuple[str, dict[str, Any]],
        samples: int,
        note: str,
        tty: tuple = (),
    ) -> None:
        """Two dlkit configs, alternated; ``tty`` names the sides whose stderr is a terminal."""
        sides: dict[str, list[ProcRun]] = {a[0]: [], b[0]: []}
        configs = dict([a, b])
        for side in alternate((a[0], b[0]), self.repeats):
            sides[side].append(self.dlkit_train(f"{key}-{side}", configs[side], samples, tty=side in tty))
        self.results[key] = summarize_pairs(sides[a[0]], sides[b[0]], names=(a[0], b[0])) | {"note": note}
        self.pair_runs[key] = sides

    def _small_cost_sizes(self) -> tuple[int, int]:
        """Sizes for dlkit-vs-dlkit pairs that look for a cost under 3 %: six epochs, so the median of five
        steady ones passes over the odd slow epoch this shared machine has (single epochs vary by about 10 %)."""
        samples, epochs = TRAIN_CASES["cnn"]["sizes"]["quick" if self.quick else "full"]
        return samples, epochs if self.quick else 6

    def progress(self) -> None:
        samples, epochs = self._small_cost_sizes()
        self.say(f"progress: dlkit train seed CNN with stderr a terminal (live bar) vs a file ({samples} x {epochs})")
        config = self.config("cnn", samples, epochs)
        self.dlkit_pair(
            "progress",
            ("terminal", config),
            ("file", config),
            samples,
            f"same config, {samples} images x {epochs} epochs; the live progress bar is drawn only on a terminal",
            tty=("terminal",),
        )
        self._display_cost(samples)

    def _display_cost(self, samples: int) -> None:
        """Time the bar's own work: dlkit's Progress callback driven as ``fit`` drives it over an epoch as long as
        the measured ones (``--worker progress``), on a pseudo-terminal vs a file; the difference is the display."""
        files = [
            r
            for r in self.pair_runs["progress"]["file"]
            if r.ok and r.extra.get("steps_per_execution") and r.extra.get("steps_per_epoch")
        ]
        file_side = self.results["progress"]["file"]
        if not files or not file_side["samples_per_second"] or not file_side["samples_per_cpu_second"]:
            return
        steps, spe = files[0].extra["steps_per_epoch"], files[0].extra["steps_per_execution"]
        epoch_s = samples / file_side["samples_per_second"]
        spec = {"epoch_s": epoch_s, "steps": steps, "spe": spe, "quick": self.quick}
        display = self._worker("progress", "--worker-args", json.dumps(spec))
        if display is not None:
            display["epoch_cpu_s"] = samples / file_side["samples_per_cpu_second"]
            display["of_epoch_cpu"] = display["display_cpu_s"] / display["epoch_cpu_s"]
            display["of_epoch_wall"] = display["display_cpu_s"] / epoch_s
            self.results["progress"]["display"] = display

    def monitor(self) -> None:
        samples, epochs = self._small_cost_sizes()
        self.say(f"monitor: dlkit train seed CNN, gradient_monitor on vs off ({samples} x {epochs}, clipnorm 1.0)")
        clip = {"type": "adam", "global_clipnorm": 1.0}
        on = self.config("cnn", samples, epochs, optimizer=clip, gradient_monitor=True)
        off = self.config("cnn", samples, epochs, optimizer=clip, gradient_monitor=False)
        note = f"{samples} images x {epochs} epochs, both with global_clipnorm 1.0; only the monitor differs"
        self.dlkit_pair("monitor", ("on", on), ("off", off), samples, note)

    def bf16(self) -> None:
        samples, epochs = (512, 2) if self.quick else (8192, 3)
        self.say(f"bf16: dlkit train seed CNN, batch 256, mixed_bfloat16 vs float32 ({samples} samples)")
        configs = {
            p: self.config("cnn", samples, epochs, batch_size=256, precision=p) for p in ("mixed_bfloat16", "float32")
        }
        self.dlkit_pair(
            "bf16",
            ("mixed_bfloat16", configs["mixed_bfloat16"]),
            ("float32", configs["float32"]),
            samples,
            "batch 256; bfloat16 changes numerics, so it is an explicit choice",
        )

    # -- c: start-up -------------------------------------------------------------------------------------------

    def cli(self) -> None:
        self.say("cli: dlkit --help / --version / config check vs python -c 'import tensorflow'")
        cfg = write_config(self.work / "configs" / "cli-check.yaml", self.config("cnn", 256, 1))
        commands = {
            "dlkit --help": [*dlkit_cmd(), "--help"],
            "dlkit --version": [*dlkit_cmd(), "--version"],
            "dlkit config check": [*dlkit_cmd(), "config", "check", str(cfg)],
            "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"],
            "python -c 'pass'": [sys.executable, "-c", "pass"],
        }
        walls: dict[str, list[float]] = {k: [] for k in commands}
        rss: dict[str, list[float]] = {k: [] for k in commands}
        for r in range(max(self.repeats, 3)):
            names = list(commands) if r % 2 == 0 else list(commands)[::-1]
            for name in names:
                run = self._record(run_process(name, commands[name], self._log("cli"), cwd=self.work))
                if run.ok:
                    walls[name].append(run.wall_s)
                    rss[name].append(run.peak_rss_mb)
        self.results["cli"] = {
            name: {"wall_s": median(walls[name]), "walls": walls[name], "peak_rss_mb": median(rss[name])}
            for name in commands
        }

    # -- f: latency --------------------------------------------------------------------------------------------

    def latency(self) -> None:
        self.say("latency: per-sample latency of the seed CNN (predict, predict_on_batch, tf.function, TFLite)")
        latency = self._worker("latency", *(["--quick"] if self.quick else []))
        if latency is not None:
            self.results["latency"] = latency

    def _worker(self, name: str, *args: str) -> dict[str, Any] | None:
        """Run ``bench.py --worker NAME`` in its own process (it imports TensorFlow) and read the ``NAME.json``
        it writes into the work folder; None when it failed (recorded in the failures)."""
        out = self.work / f"{name}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--work-dir", str(self.work), *args]
        run = self._record(run_process(f"{name}-worker", cmd, self._log(name), cwd=self.work))
        return json.loads(out.read_text(encoding="utf-8")) if run.ok and out.exists() else None


def summarize_pairs(
    a_runs: list[ProcRun], b_runs: list[ProcRun], names: tuple[str, str] = ("dlkit", "keras")
) -> dict[str, Any]:
    """Medians per side and medians of the per-pair ratios (the i-th run of a with the i-th run of b)."""

    def side(runs: list[ProcRun]) -> dict[str, Any]:
        ok = [r for r in runs if r.ok]
        return {
            "runs": len(runs),
            "ok": len(ok),
            "wall_s": median([r.wall_s for r in ok]),
            "samples_per_second": median([steady_state(r.extra.get("samples_per_second", [])) for r in ok]),
            "first_epoch_samples_per_second": median([(r.extra.get("samples_per_second") or [None])[0] for r in ok]),
            "fastest_epoch_samples_per_second": median(
                [fastest_epoch(r.extra.get("samples_per_second", [])) for r in ok]
            ),
            "first_step_s": median([r.extra.get("first_step_s") for r in ok]),
            "peak_rss_mb": median([r.peak_rss_mb for r in ok]),
            "cpu_s": median([r.cpu_s for r in ok]),
            "samples_per_cpu_second": median([steady_state(r.extra.get("samples_per_cpu_second", [])) for r in ok]),
        }

    def per_pair(a: ProcRun, b: ProcRun, key: str) -> float | None:
        return ratio(steady_state(a.extra.get(key, [])), steady_state(b.extra.get(key, [])))

    pairs = [(a, b) for a, b in zip(a_runs, b_runs, strict=False) if a.ok and b.ok]
    a_name, b_name = names
    return {
        a_name: side(a_runs),
        b_name: side(b_runs),
        "ratios": {
            # > 1 means side a is faster / leaner
            "samples_per_second": median([per_pair(a, b, "samples_per_second") for a, b in pairs]),
            "samples_per_cpu_second": median([per_pair(a, b, "samples_per_cpu_second") for a, b in pairs]),
            "fastest_epoch_samples_per_second": median(
                [
                    ratio(
                        fastest_epoch(a.extra.get("samples_per_second", [])),
                        fastest_epoch(b.extra.get("samples_per_second", [])),
                    )
                    for a, b in pairs
                ]
            ),
            "cpu": median([ratio(b.cpu_s, a.cpu_s) for a, b in pairs]),
            "wall": median([ratio(b.wall_s, a.wall_s) for a, b in pairs]),
            "peak_rss": median([ratio(a.peak_rss_mb, b.peak_rss_mb) for a, b in pairs]),
            "first_step_added_s": median(
                [
                    (a.extra["first_step_s"] - b.extra["first_step_s"])
                    if a.extra.get("first_step_s") is not None and b.extra.get("first_step_s") is not None
                    else None
                    for a, b in pairs
                ]
            ),
        },
    }


# --------------------------------------------------------------------------------------------------------------
# The latency worker (runs in its own process: it imports TensorFlow)


def _percall(fn: Callable[[], Any], calls: int, warmup: int = 3) -> float:
    """Median milliseconds of one call of ``fn`` over ``calls`` timed calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def latency_worker(work: Path, quick: bool) -> None:
    """Train the seed CNN briefly, export TFLite float32 and int8, and time one sample through each path."""
    import keras
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    spec = TRAIN_CASES["cnn"]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(256, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(256,))
    model = keras.Sequential(
        [keras.Input(shape=spec["input_shape"]), keras.layers.Rescaling(1.0 / 255)]
        + [
            keras.layers.Flatten()
            if layer == "Flatten"
            else getattr(keras.layers, layer["type"])(**{k: v for k, v in layer.items() if k != "type"})
            for layer in spec["layers"]
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    one = x[:1]
    calls = 20 if quick else 200

    results: dict[str, Any] = {"calls": calls}
    results["keras_predict_ms"] = _percall(lambda: model.predict(one, verbose=0), max(calls // 10, 5))
    results["keras_predict_on_batch_ms"] = _percall(lambda: model.predict_on_batch(one), calls)
    serve = tf.function(model, input_signature=[tf.TensorSpec([1, *spec["input_shape"]], tf.float32)])
    one_t = tf.constant(one)
    results["tf_function_ms"] = _percall(lambda: serve(one_t), calls)

    def representative() -> Any:
        for i in range(64 if not quick else 16):
            yield [x[i : i + 1]]

    tflite = {
        "float32": {},
        "int8": {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative,
            "target_spec": tf.lite.TargetSpec(supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8]),
        },
    }
    reference = model.predict_on_batch(one)
    for kind, kwargs in tflite.items():
        path = work / f"cnn-{kind}.tflite"
        model.export(str(path), format="litert", verbose=False, **kwargs)
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]

        def invoke(interpreter: Any = interpreter, inp: dict = inp) -> None:
            interpreter.set_tensor(inp["index"], one)
            interpreter.invoke()

        results[f"tflite_{kind}_ms"] = _percall(invoke, calls * 5)
        results[f"tflite_{kind}_bytes"] = path.stat().st_size
        results[f"tflite_{kind}_max_abs_diff"] = float(np.max(np.abs(interpreter.get_tensor(out["index"]) - reference)))
    (work / "latency.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


def progress_worker(work: Path, spec: dict[str, Any]) -> None:
    """The live bar's own CPU per epoch: dlkit's ``Progress`` callback on a pseudo-terminal vs on a file, driven as
    ``fit`` drives it (one update per ``steps_per_execution`` group, spread over an epoch of the measured length).

    Training runs in TensorFlow's threads with the GIL released, so what the bar can take from it is this CPU:
    the refresh thread's redraws and the callback calls. Sleeping stands in for the training, which costs no CPU.
    """
    from rich.console import Console

    from dlkit.training.progress import Progress

    steps, spe, epoch_s = int(spec["steps"]), int(spec["spe"]), float(spec["epoch_s"])
    groups = list(range(spe - 1, steps, spe))
    if not groups or groups[-1] != steps - 1:
        groups.append(steps - 1)  # Keras reports a short last group at the epoch's last batch
    epochs = 3 if spec.get("quick") else 10
    master, slave = pty.openpty()
    seen = (work / "progress-terminal.log").open("wb")  # what the terminal showed, for a check that it drew
    drain = subprocess.Popen(["cat"], stdin=master, stdout=seen)  # a terminal that someone reads
    os.close(master)
    with os.fdopen(slave, "w") as terminal, (work / "progress-file.log").open("w", encoding="utf-8") as plain:
        consoles = {"terminal": Console(file=terminal), "file": Console(file=plain)}
        assert consoles["terminal"].is_terminal and not consoles["file"].is_terminal
        cpu: dict[str, list[float]] = {side: [] for side in consoles}
        for epoch in range(epochs):
            for side in ("terminal", "file") if epoch % 2 == 0 else ("file", "terminal"):
                callback = Progress(consoles[side], epochs, steps)
                start = time.process_time()
                callback.on_epoch_begin(epoch)
                for batch in groups:
                    time.sleep(epoch_s / len(groups))
                    callback.on_train_batch_end(batch, {"loss": 0.5})
                logs = {"loss": 0.5, "accuracy": 0.9, "time": epoch_s, "samples_per_s": steps / epoch_s}
                callback.on_epoch_end(epoch, logs)
                cpu[side].append(time.process_time() - start)
    drain.wait()  # the terminal is closed: cat reads to its end and exits
    seen.close()
    result = {
        "epochs": epochs,
        "epoch_s": epoch_s,
        "updates_per_epoch": len(groups),
        "terminal_cpu_s": statistics.median(cpu["terminal"]),
        "file_cpu_s": statistics.median(cpu["file"]),
    }
    result["display_cpu_s"] = result["terminal_cpu_s"] - result["file_cpu_s"]
    result["bar_drawn"] = "━" in (work / "progress-terminal.log").read_text(encoding="utf-8", errors="replace")
    (work / "progress.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------
# Report


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions and load, for the report header."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": version("tensorflow"),
        "keras": version("keras"),
        "dlkit": version("dlkit"),
        "torch": version("torch"),
        "platform": platform.platform(),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _x(value: float | None) -> str:
    """A ratio as ``1.23x``."""
    return _fmt(value, ".2f", "x")


def _verdict(value: float | None, ok: Callable[[float], bool]) -> str:
    return "n/a" if value is None else ("met" if ok(value) else "MISSED")


def _source_runs(report: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(date, command) of each run that contributed figures -> the sections it contributed."""
    runs: dict[tuple[str, str], list[str]] = {}
    for key in report["results"]:
        src = report.get("sources", {}).get(key) or {"date": report["date"], "command": report["command"]}
        runs.setdefault((src["date"], src["command"]), []).append(key)
    return runs


def _source_line(report: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """'From the run of DATE' under a section, only when the report merges several runs."""
    runs = _source_runs(report)
    if len(runs) < 2:
        return []
    parts = [
        f"{', '.join(k for k in ks if k in keys)} from the run of {date}"
        for (date, _), ks in runs.items()
        if set(ks) & set(keys)
    ]
    return [f"_Figures: {'; '.join(parts)}._", ""]


def _render_torch(r: dict[str, Any]) -> list[str]:
    """The dlkit vs PyTorch eager section."""
    title = "## dlkit train vs PyTorch eager (seed CNN, same data, batch 32)"
    if "skipped" in r:
        return [title, "", f"Skipped: {r['skipped']}.", ""]
    d, t, q = r["dlkit"], r["pytorch"], r["ratios"]
    rows = [
        f"| {name} | {_fmt(s['samples_per_second'], ',.0f')} | {_fmt(s['first_epoch_samples_per_second'], ',.0f')} "
        f"| {_fmt(s['samples_per_cpu_second'], ',.0f')} | {_fmt(s['wall_s'], '.1f', ' s')} "
        f"| {_fmt(s['first_step_s'], '.2f', ' s')} | {_fmt(s['peak_rss_mb'], '.0f', ' MiB')} |"
        for name, s in (("dlkit train", d), (f"PyTorch {r.get('torch_version') or ''} eager", t))
    ]
    return [
        title,
        "",
        f"{r['samples']} images x {r['epochs']} epochs; PyTorch in `scripts/bench_baselines/torch_cnn.py`: the same",
        "layers, cross-entropy on logits, Adam lr 1e-3, a fresh shuffle per epoch, "
        f"{r.get('memory_format') or 'channels_last'} memory, {r.get('torch_threads') or '?'} threads.",
        "",
        "| side | images/s (steady) | images/s (epoch 1) | images/CPU-s | wall | first step | peak RSS |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"images/s ratio dlkit / PyTorch: **{_x(q['samples_per_second'])}** "
        f"(target: ahead of PyTorch eager, {_verdict(q['samples_per_second'], lambda v: v > 1.0)}); "
        f"images/CPU-s ratio {_x(q['samples_per_cpu_second'])}; wall ratio {_x(q['wall'])}.",
        "",
    ]


def merge_reports(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """``new`` plus the sections of ``old`` that ``new`` did not measure, each keeping the run it came from."""
    merged = dict(new)
    own = {"date": new["date"], "command": new["command"]}
    sources = {key: new.get("sources", {}).get(key, own) for key in new["results"]}
    results = dict(new["results"])
    for key, value in old["results"].items():
        if key not in results:
            results[key] = value
            sources[key] = old.get("sources", {}).get(key) or {"date": old["date"], "command": old["command"]}
    merged["results"] = results
    merged["sources"] = sources

    def section(label: str) -> str:
        head = label.split("-", 1)[0]
        return head if head in BENCHMARKS else "cli"

    kept = [r for r in old.get("runs", []) if section(r.get("label", "")) not in new["results"]]
    merged["runs"] = list(new.get("runs", [])) + kept
    merged["failures"] = list(new.get("failures", [])) + [
        f for f in old.get("failures", []) if section(f.split(":", 1)[0]) not in new["results"]
    ]
    return merged


def render_markdown(report: dict[str, Any]) -> str:
    """The BENCHMARKS.md text: what ran, on what, and the tables."""
    m = report["machine"]
    res = report["results"]
    lines = [
        "# dlkit benchmarks",
        "",
        f"{'Latest run' if len(_source_runs(report)) > 1 else 'Measured'} {report['date']} with "
        f"`{report['command']}` ({report['repeats']} repeats per variant, "
        f"{'quick sizes' if report['quick'] else 'full sizes'}); took {report['elapsed_s']:.0f} s.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, TensorFlow {m['tensorflow']}, "
        f"Keras {m['keras']}, dlkit {m['dlkit']}; load average at start {m['loadavg']}, "
        f"at end {report['loadavg_end']}.",
        "",
        "Each variant runs in its own fresh process; pairs alternate (A B, B A, ...). Figures are medians; ratios",
        "are medians of the ratios of side-by-side pairs, so load from other processes on a shared machine hits",
        "both sides of a ratio alike. Absolute numbers move with that load; the ratios are what count. Where the",
        "machine is shared, CPU seconds (user + system of the process) are the steadier measure of the work done.",
        "",
        "Same math on both sides: the dlkit config and the hand-written script (`scripts/bench_baselines/`) have",
        "the same layers (Rescaling inside the model for the CNN), adam, sparse categorical cross-entropy,",
        "accuracy, batch 32, no validation split, augmentation, regularization, clipping or callbacks. Same data:",
        "both read one `.npz` file the benchmark writes (random 0-255 pixels for the CNN, standard-normal features",
        "for the MLP and LSTM, labels 0-9). The script loads it with `np.load` and feeds the NumPy arrays to",
        "`model.fit` with Keras' defaults (progress bar on); dlkit reads it as `source: npz` and runs as a user",
        "runs it (`dlkit train CONFIG`) with its own defaults.",
        "dlkit's per-epoch images/s come from its `metrics.csv`; its first-step time and per-epoch CPU seconds",
        "from a one-callback plugin (`scripts/bench_baselines/bench_plugin.py`, passed with `--plugin`), the same",
        "callback the scripts use, because `run.json` does not record them.",
        "",
        "Reproduce: `.venv/bin/python scripts/bench.py` (or `make bench`; `--quick` for a smoke test,",
        "`--only cnn,cli` for a subset, `--repeats N`, `--merge OLD.json` to keep an earlier report's other",
        "sections). The `torch` section runs only where PyTorch is importable (it is not a dlkit dependency).",
        "",
    ]
    runs = _source_runs(report)
    if len(runs) > 1:
        lines += [
            "This report merges runs (`--merge`); each section says which run its figures come from:",
            "",
            *[f"- {date}: `{command}`: {', '.join(keys)}" for (date, command), keys in runs.items()],
            "",
        ]
    train = [c for c in TRAIN_CASES if c in res]
    if train:
        lines += [
            "## dlkit train vs the hand-written Keras script (same model, data sizes, batch 32, no validation)",
            "",
            "Throughput in steady state (median of the epochs after the first):",
            "",
            "| model | samples x epochs | images/s dlkit | images/s Keras | ratio | images/CPU-s dlkit "
            "| images/CPU-s Keras | ratio | fastest epoch: dlkit | Keras | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for case in train:
            r = res[case]
            d, k, q = r["dlkit"], r["keras"], r["ratios"]
            lines.append(
                f"| {case} | {r['samples']} x {r['epochs']} | {_fmt(d['samples_per_second'], ',.0f')} "
                f"| {_fmt(k['samples_per_second'], ',.0f')} | **{_x(q['samples_per_second'])}** "
                f"| {_fmt(d['samples_per_cpu_second'], ',.0f')} | {_fmt(k['samples_per_cpu_second'], ',.0f')} "
                f"| {_x(q['samples_per_cpu_second'])} | {_fmt(d.get('fastest_epoch_samples_per_second'), ',.0f')} "
                f"| {_fmt(k.get('fastest_epoch_samples_per_second'), ',.0f')} "
                f"| {_x(q.get('fastest_epoch_samples_per_second'))} |"
            )
        lines += [
            "",
            "The median counts every epoch as a user waits for it. The fastest epoch leaves out the pauses some",
            "epochs have: in the hand-written script, Keras drops each epoch's unfinished tf.data iterator and waits",
            "for tf.data's autotune thread (0.5-1 s in over half the epochs here); dlkit's pipeline turns",
            "that thread off (`dlkit/data/pipeline.py`, docs/PERFORMANCE.md). The rest of the gap is",
            "`steps_per_execution`: one graph call per 32 batches instead of one per batch.",
            "",
            "Whole process (start to exit):",
            "",
            "| model | wall dlkit | wall Keras | ratio | CPU dlkit | CPU Keras | ratio | first step dlkit "
            "| first step Keras | peak RSS dlkit | peak RSS Keras | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for case in train:
            r = res[case]
            d, k, q = r["dlkit"], r["keras"], r["ratios"]
            lines.append(
                f"| {case} | {_fmt(d['wall_s'], '.1f', ' s')} | {_fmt(k['wall_s'], '.1f', ' s')} | **{_x(q['wall'])}** "
                f"| {_fmt(d['cpu_s'], '.1f', ' s')} | {_fmt(k['cpu_s'], '.1f', ' s')} | {_x(q['cpu'])} "
                f"| {_fmt(d['first_step_s'], '.2f', ' s')} | {_fmt(k['first_step_s'], '.2f', ' s')} "
                f"| {_fmt(d['peak_rss_mb'], '.0f', ' MiB')} | {_fmt(k['peak_rss_mb'], '.0f', ' MiB')} "
                f"| {_x(q['peak_rss'])} |"
            )
        lines += [
            "",
            "Ratios > 1 favour dlkit for speed: images/s and images/CPU-s are dlkit / Keras; wall and CPU are",
            "Keras / dlkit seconds. The RSS ratio is dlkit / Keras (< 1: dlkit uses less). CPU = user + system",
            "seconds of the process, which other load on the machine disturbs less than wall time.",
            "First step: seconds from process start to the first training batch.",
            "",
        ]
        targets = []
        for case in train:
            q = res[case]["ratios"]
            targets.append(
                f"| {case} | {_x(q['samples_per_second'])} ({_verdict(q['samples_per_second'], lambda v: v >= 1.4)})"
                f" | {_x(q['wall'])} ({_verdict(q['wall'], lambda v: v >= 1.0)})"
                f" | {_fmt(q['first_step_added_s'], '+.2f', ' s')}"
                f" ({_verdict(q['first_step_added_s'], lambda v: v < 1.0)})"
                f" | {_x(q['peak_rss'])} ({_verdict(q['peak_rss'], lambda v: v <= 1.10)}) |"
            )
        lines += [
            "Issue targets: images/s ratio >= 1.4, wall ratio >= 1.0, dlkit adds < 1 s before the first step,",
            "peak RSS within 10 %.",
            "",
            "| model | images/s ratio | wall ratio | first step added by dlkit | RSS ratio |",
            "|---|---|---|---|---|",
            *targets,
            "",
            *_source_line(report, train),
        ]
    if "torch" in res:
        lines += _render_torch(res["torch"]) + _source_line(report, ["torch"])
    if "cli" in res:
        lines += ["## Start-up", "", "| command | wall (median) | peak RSS |", "|---|---|---|"]
        for name, r in res["cli"].items():
            lines.append(f"| `{name}` | {_fmt(r['wall_s'], '.3f', ' s')} | {_fmt(r['peak_rss_mb'], '.0f', ' MiB')} |")
        help_s = res["cli"].get("dlkit --help", {}).get("wall_s")
        lines += ["", f"Target `dlkit --help` < 0.3 s: {_verdict(help_s, lambda v: v < 0.3)}.", ""]
        lines += _source_line(report, ["cli"])
    if "latency" in res:
        r = res["latency"]
        rows = [
            ("Keras `model.predict(x[:1])`", r.get("keras_predict_ms")),
            ("Keras `model.predict_on_batch(x[:1])`", r.get("keras_predict_on_batch_ms")),
            ("`tf.function(model)` call", r.get("tf_function_ms")),
            (f"TFLite float32 ({r.get('tflite_float32_bytes', 0):,} bytes)", r.get("tflite_float32_ms")),
            (f"TFLite int8 ({r.get('tflite_int8_bytes', 0):,} bytes)", r.get("tflite_int8_ms")),
        ]
        lines += [
            "## Latency of one sample through the seed CNN",
            "",
            "| path | ms per sample (median) |",
            "|---|---|",
            *[f"| {name} | {_fmt(v, '.3f')} |" for name, v in rows],
            "",
            "TFLite runs with `ai_edge_litert`; max |output diff| vs Keras: float32 "
            f"{_fmt(r.get('tflite_float32_max_abs_diff'), '.1e')}, "
            f"int8 {_fmt(r.get('tflite_int8_max_abs_diff'), '.1e')}.",
            "",
            *_source_line(report, ["latency"]),
        ]
    for key, title, a, b in (
        ("monitor", "Gradient monitor cost (dlkit train, seed CNN)", "on", "off"),
        ("progress", "Progress display cost (dlkit train, seed CNN)", "terminal", "file"),
        (
            "bf16",
            "mixed_bfloat16 vs float32 on this CPU (dlkit train, seed CNN, batch 256)",
            "mixed_bfloat16",
            "float32",
        ),
    ):
        if key not in res:
            continue
        r = res[key]
        q = r["ratios"]
        lines += [
            f"## {title}",
            "",
            "| variant | images/s | images/CPU-s | wall |",
            "|---|---|---|---|",
            *[
                f"| {v} | {_fmt(r[v]['samples_per_second'], ',.0f')} | {_fmt(r[v]['samples_per_cpu_second'], ',.0f')} "
                f"| {_fmt(r[v]['wall_s'], '.1f', ' s')} |"
                for v in (a, b)
            ],
            "",
            f"images/s ratio {a} / {b}: **{_x(q['samples_per_second'])}**; images/CPU-s ratio "
            f"{_x(q['samples_per_cpu_second'])} ({r['note']}).",
        ]
        if key in ("monitor", "progress"):
            costs = [
                None if v is None else (1 - v) * 100 for v in (q["samples_per_second"], q["samples_per_cpu_second"])
            ]
            lines.append(
                f"Cost: {_fmt(costs[0], '.1f', ' %')} of images/s ({_verdict(costs[0], lambda v: v < 3)}), "
                f"{_fmt(costs[1], '.1f', ' %')} of images/CPU-s ({_verdict(costs[1], lambda v: v < 3)}); target < 3 %."
            )
        display = r.get("display") if key == "progress" else None
        if display:
            share = display["of_epoch_cpu"] * 100
            lines += [
                "",
                f"The bar's own work, timed directly (`--worker progress`: dlkit's Progress callback, whose bar "
                f"appears 0.5 s into an epoch{'' if display.get('bar_drawn', True) else ' (it never did here)'}, "
                f"driven as `fit` drives it, {display['updates_per_epoch']} update(s) over a "
                f"{display['epoch_s']:.2f} s epoch, "
                f"{display['epochs']} epochs on a pseudo-terminal vs a file): "
                f"{display['display_cpu_s'] * 1000:.1f} ms of CPU per epoch, {share:.2f} % of the epoch's "
                f"{display['epoch_cpu_s']:.2f} CPU-s ({display['of_epoch_wall'] * 100:.2f} % of its wall time even "
                f"if none of it overlapped training). Target < 3 %: {_verdict(share, lambda v: v < 3)}. The pair "
                "above measures the same cost end to end, where single runs on this machine swing by more than 3 %.",
            ]
        lines.append("")
        lines += _source_line(report, [key])
    if report["failures"]:
        lines += ["## Failures", "", "```", *report["failures"], "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Tiny sizes (smoke test); numbers are not meaningful.")
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="Runs per variant (median). Defaults to 5: some epochs of the hand-written scripts pause at random "
        "(see BENCHMARKS.md), so with 3 their medians move more between runs.",
    )
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"Comma list of {', '.join(BENCHMARKS)}.")
    parser.add_argument("--out-dir", type=Path, default=REPO, help="Where BENCHMARKS.md and benchmarks.json go.")
    parser.add_argument("--work-dir", type=Path, default=None, help="Scratch folder. Defaults to a temp folder.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch folder (logs, runs, configs).")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="Only re-render BENCHMARKS.md from a benchmarks.json (no runs)."
    )
    parser.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="An earlier benchmarks.json: keep its sections that this run does not measure (labelled by run).",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="Epochs of the cnn/mlp/lstm/torch runs (default 3; the seed article's script runs 10). More epochs "
        "give the steady-state median more epochs to work with; the whole-process target is for 3.",
    )
    parser.add_argument("--worker", choices=["latency", "progress"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", type=json.loads, default={}, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.epochs is not None and args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not steady state)")
    args.only = only
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "latency":
        latency_worker(args.work_dir, args.quick)
        return 0
    if args.worker == "progress":
        progress_worker(args.work_dir, args.worker_args)
        return 0
    if args.from_json is not None:
        report = json.loads(args.from_json.read_text(encoding="utf-8"))
        if args.merge is not None:
            report = merge_reports(report, json.loads(args.merge.read_text(encoding="utf-8")))
        markdown = render_markdown(report)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "BENCHMARKS.md").write_text(markdown, encoding="utf-8")
        if args.merge is not None:
            text = json.dumps(report, indent=2, default=str) + "\n"
            (args.out_dir / "benchmarks.json").write_text(text, encoding="utf-8")
        print(markdown)
        return 0

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    machine = machine_info()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="dlkit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, args.repeats, args.quick, say, epochs=args.epochs)
    say(f"dlkit benchmarks in {work} ({machine['cpu']}, {machine['cores']} cores, TF {machine['tensorflow']})")
    for name in args.only:
        if name in TRAIN_CASES:
            bench.train_case(name)
        else:
            getattr(bench, name)()
    cli_args = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join(["python scripts/bench.py", *cli_args])
    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "repeats": args.repeats,
        "quick": args.quick,
        "elapsed_s": time.perf_counter() - started,
        "machine": machine,
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "results": bench.results,
        "failures": bench.failures,
        "runs": bench.runs,
    }
    if args.merge is not None:
        report = merge_reports(report, json.loads(args.merge.read_text(encoding="utf-8")))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    (args.out_dir / "BENCHMARKS.md").write_text(markdown, encoding="utf-8")
    (args.out_dir / "benchmarks.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(markdown)
    if not args.keep and args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
