"""Model summary: layer table, parameter counts, FLOPs per sample and weight memory.

FLOPs are counted analytically from the built model's shapes, as 2 x multiply-adds (the convention
``tf.profiler`` uses for matrix products), for the layers that dominate compute: ``Dense``, convolutions
(1D/2D/3D, depthwise, separable, transposed), recurrent layers (``SimpleRNN``/``LSTM``/``GRU``, also inside
``Bidirectional``) and ``TimeDistributed`` wrappers of those. Biases, activations, normalization and
pooling are not counted (they are a few percent of the total for these networks); layers with weights
whose FLOPs are not modelled are named in ``flops_uncounted``. Unknown (None) dimensions count as 1.
"""

from __future__ import annotations

import math
from typing import Any


def _dims(shape: Any) -> list[int]:
    return [1 if d is None else int(d) for d in shape]


def _prod(values: Any) -> int:
    return int(math.prod(_dims(values)))


def _shape_of(tensor: Any) -> list[int | None] | list[list[int | None]]:
    if isinstance(tensor, list | tuple):
        return [list(t.shape) for t in tensor]
    return list(tensor.shape)


def _rnn_macs(layer: Any, in_shape: list) -> int | None:
    cell = getattr(layer, "cell", None)
    kernel, recurrent = getattr(cell, "kernel", None), getattr(cell, "recurrent_kernel", None)
    if kernel is None or recurrent is None:
        return None
    steps = in_shape[1] if len(in_shape) > 2 and in_shape[1] is not None else 1
    return int(steps) * (_prod(kernel.shape) + _prod(recurrent.shape))


def layer_macs(layer: Any, in_shape: list, out_shape: list) -> int | None:
    """Multiply-adds of one call of ``layer`` on one sample (shapes include the batch axis); None if unmodelled."""
    import keras

    L = keras.layers
    if isinstance(layer, L.Bidirectional):
        parts = [_rnn_macs(sub, in_shape) for sub in (layer.forward_layer, layer.backward_layer)]
        return None if None in parts else sum(p for p in parts if p is not None)
    if isinstance(layer, L.TimeDistributed):
        steps = in_shape[1] if in_shape[1] is not None else 1
        inner = layer_macs(layer.layer, [in_shape[0], *in_shape[2:]], [out_shape[0], *out_shape[2:]])
        return None if inner is None else int(steps) * inner
    if isinstance(layer, L.RNN):
        return _rnn_macs(layer, in_shape)
    if isinstance(layer, L.SeparableConv1D | L.SeparableConv2D):
        dw, pw = layer.depthwise_kernel, layer.pointwise_kernel
        positions = _prod(out_shape[1:-1]) if layer.data_format == "channels_last" else _prod(out_shape[2:])
        return positions * (_prod(dw.shape) + _prod(pw.shape))
    if isinstance(layer, L.DepthwiseConv1D | L.DepthwiseConv2D):
        kernel = layer.kernel  # (k..., in, multiplier)
        return _prod(out_shape[1:]) * _prod(kernel.shape[:-2])
    if isinstance(layer, L.Conv1DTranspose | L.Conv2DTranspose | L.Conv3DTranspose):
        return _prod(in_shape[1:]) * _prod(layer.kernel.shape[:-1])  # kernel: (k..., filters, in)
    if isinstance(layer, L.Conv1D | L.Conv2D | L.Conv3D):
        return _prod(out_shape[1:]) * _prod(layer.kernel.shape[:-1])  # kernel: (k..., in/groups, filters)
    if isinstance(layer, L.Dense):
        return _prod(out_shape[1:-1]) * _prod(layer.kernel.shape)
    return None


def summarize(model: Any) -> dict[str, Any]:
    """Describe a built Keras model.

    Args:
        model: A built ``keras.Model`` (functional or sequential).

    Returns:
        ``{"params": {"total", "trainable", "non_trainable"}, "flops": N, "macs": N, "weight_bytes": N,
        "flops_method": "analytic", "flops_uncounted": [layer names], "layers": [{"name", "type",
        "output_shape", "params", "flops"}]}``; ``flops`` is per sample (batch size 1).
    """
    import numpy as np

    rows = []
    total_macs = 0
    uncounted = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            in_shape, out_shape = _shape_of(layer.input), _shape_of(layer.output)
        except (AttributeError, ValueError):
            in_shape, out_shape = [], []
        single = bool(in_shape) and not isinstance(in_shape[0], list) and bool(out_shape)
        single = single and not isinstance(out_shape[0], list)
        macs = layer_macs(layer, in_shape, out_shape) if single else None
        if macs is None:
            macs = 0
            if layer.count_params() and type(layer).__name__ not in _NO_COMPUTE:
                uncounted.append(layer.name)
        total_macs += macs
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": out_shape,
                "params": int(layer.count_params()),
                "flops": 2 * macs,
            }
        )
    trainable = sum(_prod(w.shape) for w in model.trainable_weights)
    total = sum(_prod(w.shape) for w in model.weights)
    weight_bytes = sum(_prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights)
    return {
        "params": {"total": int(total), "trainable": int(trainable), "non_trainable": int(total - trainable)},
        "flops": 2 * total_macs,
        "macs": total_macs,
        "weight_bytes": int(weight_bytes),
        "flops_method": "analytic",
        "flops_uncounted": uncounted,
        "layers": rows,
    }


# Layers whose weights are statistics or scales, not multiply-add work worth modelling.
_NO_COMPUTE = {"BatchNormalization", "LayerNormalization", "Normalization", "GroupNormalization", "Embedding"}
