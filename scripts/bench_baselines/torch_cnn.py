"""The seed CNN written by hand in PyTorch (eager mode), on the same synthetic 32x32x3 images as cnn.py.

An optional baseline for ``scripts/bench.py --only torch``: torch is not a dlkit dependency, and the benchmark
skips this script when torch is not importable. Same layers as the Keras seed model (Rescaling 1/255,
Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2, Flatten, Dense 10), cross-entropy on the logits
(the softmax is inside the loss, as PyTorch users write it), Adam lr 1e-3 (eps 1e-7, Keras' default), batch 32,
a fresh shuffle each epoch and a running accuracy, as ``model.fit`` does. Channels-last memory by default: the
data is already NHWC, and oneDNN's convolutions are faster on it on this CPU.

Writes the same timing JSON as ``_common.BenchTimer`` (first step's wall-clock time, each epoch's wall and
CPU seconds); it does not import ``_common`` because that imports Keras.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--samples", type=int, default=8192, help="Training samples. Defaults to 8192.")
parser.add_argument("--epochs", type=int, default=3, help="Epochs. Defaults to 3.")
parser.add_argument("--batch-size", type=int, default=32, help="Batch size. Defaults to 32.")
parser.add_argument("--seed", type=int, default=42, help="Seed of the synthetic data. Defaults to 42.")
parser.add_argument("--nchw", action="store_true", help="Use PyTorch's default NCHW memory instead of channels-last.")
parser.add_argument("--data", type=Path, help="An .npz with arrays x and y (what dlkit reads) instead of new ones.")
parser.add_argument("--timing-out", type=Path, required=True, help="Where to write the timing JSON.")
args = parser.parse_args()

if args.data:  # the file scripts/bench.py gives dlkit too
    with np.load(args.data) as arrays:
        x_train, y_train = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"])  # NHWC
    args.samples = len(x_train)
else:
    rng = np.random.default_rng(args.seed)
    x_train = torch.from_numpy(rng.integers(0, 256, size=(args.samples, 32, 32, 3)).astype("float32"))  # NHWC
    y_train = torch.from_numpy(rng.integers(0, 10, size=(args.samples,)))
memory_format = torch.contiguous_format if args.nchw else torch.channels_last


class SeedCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(64 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x * (1.0 / 255)))


torch.manual_seed(args.seed)
model = SeedCNN().to(memory_format=memory_format)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
loss_fn = nn.CrossEntropyLoss()

first_step_time: float | None = None
epoch_seconds: list[float] = []
epoch_cpu_seconds: list[float] = []
model.train()
for epoch in range(args.epochs):
    start = (time.perf_counter(), time.process_time())
    order = torch.randperm(args.samples)
    loss_sum = torch.zeros(())
    correct = torch.zeros((), dtype=torch.long)
    for i in range(0, args.samples, args.batch_size):
        if first_step_time is None:
            first_step_time = time.time()
        idx = order[i : i + args.batch_size]
        # NHWC rows viewed as NCHW: a channels-last tensor without a copy; .contiguous() makes NCHW when asked.
        xb = x_train[idx].permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
        yb = y_train[idx]
        optimizer.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss.detach() * len(yb)
            correct += (logits.argmax(1) == yb).sum()
    epoch_seconds.append(time.perf_counter() - start[0])
    epoch_cpu_seconds.append(time.process_time() - start[1])
    print(
        f"Epoch {epoch + 1}/{args.epochs}: loss {loss_sum.item() / args.samples:.4f}, "
        f"accuracy {correct.item() / args.samples:.4f}, {args.samples / epoch_seconds[-1]:,.0f} images/s",
        flush=True,
    )

record = {
    "first_step_time": first_step_time,
    "epoch_seconds": epoch_seconds,
    "epoch_cpu_seconds": epoch_cpu_seconds,
    "samples_per_epoch": args.samples,
    "samples_per_second": [args.samples / s for s in epoch_seconds],
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "memory_format": "nchw" if args.nchw else "channels_last",
}
args.timing_out.write_text(json.dumps(record, indent=2), encoding="utf-8")
