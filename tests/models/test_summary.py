"""Summary numbers: parameters, FLOPs (2 x multiply-adds, analytic) and weight memory."""

from __future__ import annotations

import keras

from dlkit.models import summarize


def test_cnn_numbers_by_hand() -> None:
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    info = summarize(model)
    assert info["params"] == {"total": 42442, "trainable": 42442, "non_trainable": 0}
    macs = 30 * 30 * 32 * (3 * 3 * 3) + 13 * 13 * 64 * (3 * 3 * 32) + 2304 * 10
    assert info["macs"] == macs and info["flops"] == 2 * macs == 7_831_296
    assert info["weight_bytes"] == 42442 * 4
    assert [row["type"] for row in info["layers"]] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    assert info["layers"][0]["output_shape"] == [None, 30, 30, 32]
    assert info["layers"][0]["params"] == 896 and info["layers"][0]["flops"] == 2 * 30 * 30 * 32 * 27
    assert info["flops_uncounted"] == []


def test_rnn_conv1d_conv3d_and_batchnorm() -> None:
    inp = keras.Input((10, 4))
    x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))(inp)
    x = keras.layers.GRU(6, return_sequences=True)(x)
    x = keras.layers.SimpleRNN(5)(x)
    model = keras.Model(inp, x)
    info = summarize(model)
    lstm = 2 * 10 * 4 * (4 * 8 + 8 * 8)  # two directions, 4 gates, input + recurrent kernels
    gru = 10 * 3 * (16 * 6 + 6 * 6)
    rnn = 10 * (6 * 5 + 5 * 5)
    assert info["macs"] == lstm + gru + rnn
    assert info["params"]["total"] == model.count_params()

    vol = keras.Sequential(
        [keras.Input((4, 6, 6, 2)), keras.layers.Conv3D(3, 3, padding="same"), keras.layers.BatchNormalization()]
    )
    info = summarize(vol)
    assert info["macs"] == 4 * 6 * 6 * 3 * (27 * 2)
    assert info["params"] == {"total": (54 * 3 + 3) + 4 * 3, "trainable": (54 * 3 + 3) + 2 * 3, "non_trainable": 2 * 3}

    seq = keras.Sequential(
        [keras.Input((16, 3)), keras.layers.Conv1D(4, 5), keras.layers.TimeDistributed(keras.layers.Dense(2))]
    )
    assert summarize(seq)["macs"] == 12 * 4 * (5 * 3) + 12 * (4 * 2)


def test_unmodelled_layers_are_named() -> None:
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Embedding(10, 3), keras.layers.EinsumDense("ab,bc->ac", output_shape=4)]
    )
    info = summarize(model)
    assert info["flops_uncounted"] == [model.layers[1].name]
