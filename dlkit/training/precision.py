"""Mixed-precision policy: pick one for the hardware (``auto``) or honour the config, before building the model.

``auto``: mixed_bfloat16 on NVIDIA GPUs with compute capability >= 8.0 (A100/H100/H200: no loss scaling needed)
and on TPUs, mixed_float16 on 7.x (V100/T4), float32 on CPU (mixed_float16 ran ~130x slower than float32 on
the development CPU, FIELD_NOTES "Speed"). Keras wraps the optimizer in a LossScaleOptimizer under
mixed_float16 by itself in ``compile``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("dlkit.training.precision")


@dataclass(frozen=True)
class Device:
    """What the run trains on: ``kind`` cpu|gpu|tpu, a readable ``name``, the GPU compute capability."""

    kind: str
    name: str
    count: int = 1
    compute_capability: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "name": self.name, "count": self.count}
        if self.compute_capability:
            out["compute_capability"] = ".".join(map(str, self.compute_capability))
        return out


def detect_device() -> Device:
    """The accelerator TensorFlow sees (first GPU, a TPU, or the CPU)."""
    import platform

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        cc = details.get("compute_capability")
        return Device("gpu", str(details.get("device_name", gpus[0].name)), len(gpus), tuple(cc) if cc else None)
    tpus = tf.config.list_logical_devices("TPU")
    if tpus:
        return Device("tpu", "TPU", len(tpus))
    return Device("cpu", platform.processor() or platform.machine() or "cpu", 1)


def choose_policy(requested: str, device: Device) -> str:
    """The Keras dtype policy name for ``training.precision``.

    Args:
        requested: ``auto``, ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
        device: From :func:`detect_device`.
    """
    if requested != "auto":
        if requested == "mixed_float16" and device.kind == "cpu":
            log.warning("mixed_float16 on a CPU is very slow (no float16 compute units); consider float32")
        return requested
    if device.kind == "tpu":
        return "mixed_bfloat16"
    if device.kind == "gpu" and device.compute_capability:
        major = device.compute_capability[0]
        if major >= 8:
            return "mixed_bfloat16"
        if major == 7:
            return "mixed_float16"
    return "float32"


def apply_policy(policy: str) -> None:
    """Set Keras' global dtype policy; call before building the model."""
    import keras

    keras.mixed_precision.set_global_policy(policy)


def loss_scale(model: object) -> float | None:
    """The current dynamic loss scale under mixed_float16, else None."""
    opt = getattr(model, "optimizer", None)
    scale = getattr(opt, "dynamic_scale", None)
    if scale is None:
        return None
    try:
        return float(scale.numpy() if hasattr(scale, "numpy") else scale)
    except (TypeError, ValueError):
        return None
