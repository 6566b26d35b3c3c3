"""The seed's hand-written Keras CIFAR-10 CNN script, on synthetic 32x32x3 images so it runs offline.

This is the code a user writes without dlkit: NumPy arrays straight into ``model.fit(x, y, epochs=E,
batch_size=32)``, Keras defaults everywhere. Only the ``BenchTimer`` callback is added for the benchmark.
"""

import numpy as np
from _common import BenchTimer, parse_args
from keras import Input, Sequential, layers

args = parse_args(__doc__, samples=8192)

if args.data:  # the file scripts/bench.py gives dlkit too
    with np.load(args.data) as arrays:
        x_train, y_train = arrays["x"], arrays["y"]
else:
    rng = np.random.default_rng(args.seed)
    x_train = rng.integers(0, 256, size=(args.samples, 32, 32, 3)).astype("float32")
    y_train = rng.integers(0, 10, size=(args.samples,))

model = Sequential(
    [
        Input(shape=(32, 32, 3)),
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(
    x_train,
    y_train,
    epochs=args.epochs,
    batch_size=args.batch_size,
    callbacks=[BenchTimer(args.timing_out, len(x_train))],
)
