"""A hand-written Keras LSTM classifier on synthetic sequences (40 steps x 16 features, 10 classes).

NumPy arrays straight into ``model.fit``, Keras defaults everywhere; only ``BenchTimer`` is added.
"""

import numpy as np
from _common import BenchTimer, parse_args
from keras import Input, Sequential, layers

args = parse_args(__doc__, samples=4096)

if args.data:  # the file scripts/bench.py gives dlkit too
    with np.load(args.data) as arrays:
        x_train, y_train = arrays["x"], arrays["y"]
else:
    rng = np.random.default_rng(args.seed)
    x_train = rng.standard_normal(size=(args.samples, 40, 16)).astype("float32")
    y_train = rng.integers(0, 10, size=(args.samples,))

model = Sequential(
    [
        Input(shape=(40, 16)),
        layers.LSTM(64),
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
