"""Data pipeline throughput: dlkit's tf.data pipeline vs a plain tf.data pipeline vs Keras ``fit`` on NumPy.

All three feed the same arrays to the same model; each arm trains ``--epochs`` epochs (the first, with graph
tracing, is not timed) and reports samples/s; arms are interleaved and repeated, and the median is printed
with ratios against dlkit. A second table times the input pipelines alone (iterate one epoch, no model).

    .venv/bin/python scripts/bench_data.py [--samples 4096] [--repeats 3] [--epochs 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _config(args: argparse.Namespace):
    from dlkit.config.schema import Config

    return Config.model_validate(
        {
            "seed": 1,
            "data": {
                "source": "synthetic",
                "samples": args.samples,
                "batch_size": args.batch_size,
                "validation_split": 0,
            },
            "model": {
                "input_shape": [32, 32, 3],
                "layers": [
                    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": 2},
                    "Flatten",
                    {"type": "Dense", "units": 10, "activation": "softmax"},
                ],
            },
            "loss": "sparse_categorical_crossentropy",
        }
    )


def _model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


class _EpochTimes:
    def __init__(self) -> None:
        import keras

        class Cb(keras.callbacks.Callback):
            def on_epoch_begin(cb, epoch, logs=None):  # noqa: N805
                cb.t = time.perf_counter()

            def on_epoch_end(cb, epoch, logs=None):  # noqa: N805
                self.times.append(time.perf_counter() - cb.t)

        self.times: list[float] = []
        self.callback = Cb()


def _fit_rate(arm: str, cfg, x, y, args) -> float:
    import tensorflow as tf

    from dlkit.data import load_data

    model = _model(args.seed)
    timer = _EpochTimes()
    kw = {"epochs": args.epochs, "verbose": 0, "callbacks": [timer.callback]}
    if arm == "dlkit":
        model.fit(load_data(cfg, splits=("train",)).train, **kw)
    elif arm == "plain tf.data":
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=1).batch(args.batch_size)
        model.fit(ds, **kw)
    else:
        model.fit(x, y, batch_size=args.batch_size, shuffle=True, **kw)
    return len(x) / statistics.median(timer.times[1:])


def _iter_rate(arm: str, cfg, x, y, args) -> float:
    import tensorflow as tf

    from dlkit.data import load_data

    if arm == "dlkit":
        ds = load_data(cfg, splits=("train",)).train
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=1).batch(args.batch_size)
    for _ in ds:  # warm-up epoch
        pass
    t = time.perf_counter()
    for _ in ds:
        pass
    return len(x) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from dlkit.data import load_data

    cfg = _config(args)
    x, y = load_data(cfg, splits=()).arrays["train"]
    arms = ["dlkit", "plain tf.data", "fit(NumPy)"]
    fit: dict[str, list[float]] = {a: [] for a in arms}
    it: dict[str, list[float]] = {a: [] for a in arms[:2]}
    for r in range(args.repeats):
        # Interleaved, so load changes on a shared machine hit every arm alike, and rotated: whichever arm runs
        # first in a round measured ~1.4x slower here (whatever ran before it), so each arm takes each place.
        for arm in arms[r % len(arms) :] + arms[: r % len(arms)]:
            fit[arm].append(_fit_rate(arm, cfg, x, y, args))
        for arm in list(it)[r % len(it) :] + list(it)[: r % len(it)]:
            it[arm].append(_iter_rate(arm, cfg, x, y, args))

    print(f"data: {len(x)} samples 32x32x3, batch {args.batch_size}; median of {args.repeats} repeats")
    print(f"{'training (fit, samples/s)':<28}{'median':>10}{'vs dlkit':>10}")
    base = statistics.median(fit["dlkit"])
    for arm in arms:
        med = statistics.median(fit[arm])
        print(f"{arm:<28}{med:>10,.0f}{med / base:>10.2f}")
    print(f"{'input pipeline only':<28}{'median':>10}{'vs dlkit':>10}")
    base = statistics.median(it["dlkit"])
    for arm in it:
        med = statistics.median(it[arm])
        print(f"{arm:<28}{med:>10,.0f}{med / base:>10.2f}")


if __name__ == "__main__":
    main()
