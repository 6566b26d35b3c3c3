#!/usr/bin/env bash
# GPU check: train a small CNN for about a minute with `dlkit train` under float32, mixed_float16 and
# mixed_bfloat16 (all with optimizer.global_clipnorm), plus float32 with the gradient monitor off; print
# steady-state throughput (median samples/s of the epochs after the first), the ratio to float32, the
# final loss and, under mixed_float16, the final dynamic loss scale.
#
#   scripts/gpu_check.sh                 # SAMPLES=20000 EPOCHS=4 BATCH=256 by default
#   SAMPLES=50000 EPOCHS=6 scripts/gpu_check.sh
#
# Python: $PY if set, else .venv/bin/python, else a python3 that already has TensorFlow (the repo is put on
# PYTHONPATH), else a fresh .venv-gpu (python3 -m venv + pip install -e .). On a CPU-only machine the
# mixed_float16 run is skipped (about 130x slower there) unless FORCE_FP16=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
  elif python3 -c "import tensorflow, click, pydantic, yaml, rich" 2>/dev/null; then
    PY=python3
  else
    python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install -q -e .
    PY=.venv-gpu/bin/python
  fi
fi
exec "$PY" - <<'PYEOF'
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

samples = int(os.environ.get("SAMPLES", "20000"))
epochs = int(os.environ.get("EPOCHS", "4"))
batch = int(os.environ.get("BATCH", "256"))

import tensorflow as tf  # noqa: E402

gpus = tf.config.list_physical_devices("GPU")
device = "CPU"
if gpus:
    details = tf.config.experimental.get_device_details(gpus[0])
    device = f"{details.get('device_name', 'GPU')} (compute capability {details.get('compute_capability')})"
print(f"device: {device}; TensorFlow {tf.__version__}; {samples} samples x {epochs} epochs, batch {batch}", flush=True)

CONFIG = """
name: gpu-check
seed: 1
data: {{source: synthetic, samples: {samples}, batch_size: {batch}, validation_split: 0.0, num_classes: 10}}
model:
  input_shape: [32, 32, 3]
  layers:
    - {{type: Conv2D, filters: 32, kernel_size: 3, activation: relu}}
    - {{type: MaxPooling2D, pool_size: 2}}
    - {{type: Conv2D, filters: 64, kernel_size: 3, activation: relu}}
    - {{type: MaxPooling2D, pool_size: 2}}
    - Flatten
    - {{type: Dense, units: 128, activation: relu}}
    - {{type: Dense, units: 10, activation: softmax}}
optimizer: {{type: adam, learning_rate: 0.001, global_clipnorm: 1.0}}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {{epochs: {epochs}, precision: {precision}, gradient_monitor: {monitor}}}
"""

variants = [
    ("float32", "float32", "auto"),
    ("float32, monitor off", "float32", "false"),
    ("mixed_float16", "mixed_float16", "auto"),
    ("mixed_bfloat16", "mixed_bfloat16", "auto"),
]
work = Path(tempfile.mkdtemp(prefix="dlkit-gpu-check-"))
rows = []
for label, precision, monitor in variants:
    if precision == "mixed_float16" and not gpus and os.environ.get("FORCE_FP16") != "1":
        print(f"{label}: skipped on CPU (set FORCE_FP16=1 to run it anyway)", flush=True)
        continue
    cfg = work / f"{label.replace(' ', '_').replace(',', '')}.yaml"
    cfg.write_text(CONFIG.format(samples=samples, batch=batch, epochs=epochs, precision=precision, monitor=monitor))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dlkit", "train", str(cfg), "--runs-dir", str(work / "runs"), "--json"],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"{label}: dlkit train failed with exit {proc.returncode}\n{proc.stderr[-3000:]}", flush=True)
        continue
    result = json.loads(proc.stdout)
    run = Path(result["run_dir"])
    with open(run / "metrics.csv", newline="") as fh:
        epochs_rows = list(csv.DictReader(fh))
    steady = [float(r["samples_per_s"]) for r in epochs_rows[1:]] or [float(epochs_rows[0]["samples_per_s"])]
    info = json.loads((run / "run.json").read_text())
    rows.append((label, statistics.median(steady), result["metrics"]["loss"], info.get("loss_scale"),
                 result["metrics"].get("clipped_frac"), wall))
    print(f"{label}: done in {wall:.1f}s", flush=True)

base = next((r[1] for r in rows if r[0] == "float32"), None)
print()
print(f"{'variant':24} {'samples/s':>12} {'vs float32':>11} {'final loss':>11} {'loss scale':>11} {'clipped':>8}")
for label, speed, loss, scale, clipped, wall in rows:
    ratio = f"{speed / base:.2f}x" if base else "-"
    scale_text = f"{scale:g}" if scale is not None else "-"
    clip_text = f"{clipped:.2f}" if clipped is not None else "-"
    print(f"{label:24} {speed:12,.0f} {ratio:>11} {loss:11.4f} {scale_text:>11} {clip_text:>8}")
PYEOF
