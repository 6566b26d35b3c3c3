"""Random data shaped from ``model.input_shape`` and the loss, for smoke tests and benchmarks (seeded).

Labels are not noise: they come from a fixed random linear map of the features, so a model can learn them
and a smoke test can see the loss fall.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.data.task import label_kind, output_width
from dlkit.errors import DataError, Problem


def load_synthetic(cfg: Any, name: str | None = None) -> Loaded:
    """``data.samples`` random samples; class labels for classification losses, real targets otherwise.

    Raises:
        DataError: when the input shape has unknown dimensions or the class count cannot be told.
    """
    shape = list(cfg.model.input_shape)
    if any(d is None for d in shape):
        raise DataError(
            problems=[
                Problem(
                    path="model.input_shape",
                    message="synthetic data needs a fully known input shape",
                    got=str(shape),
                    hint="Replace null dimensions with sizes.",
                )
            ]
        )
    rng = np.random.default_rng(cfg.seed)
    n = cfg.data.samples
    x = rng.standard_normal((n, *shape), dtype=np.float32)
    kind = label_kind(cfg)
    width = output_width(cfg)
    if kind in ("sparse", "one_hot", "binary") and width is None:
        raise DataError(
            problems=[
                Problem(
                    path="data.num_classes",
                    message="synthetic class labels need the number of classes",
                    hint="Set data.num_classes (or give the last layer `units`).",
                )
            ]
        )
    flat = x.reshape(n, -1)
    out = width or 1
    if kind == "binary":
        out = 1 if width in (None, 1) else width
    w = rng.standard_normal((flat.shape[1], max(out, 2) if kind in ("sparse", "one_hot") else out)).astype(np.float32)
    scores = flat @ w / np.sqrt(flat.shape[1])
    num_classes = None
    if kind in ("sparse", "one_hot"):
        assert width is not None
        num_classes = width
        y = np.argmax(scores[:, :width], axis=1).astype(np.int64)
        if kind == "one_hot":
            y = np.eye(width, dtype=np.float32)[y]
    elif kind == "binary":
        y = (scores > 0).astype(np.float32)
        y = y[:, 0] if out == 1 else y
        num_classes = 2
    else:
        y = scores.astype(np.float32)
        y = y[:, 0] if out == 1 else y
    return Loaded(splits={"train": Split(x, y, file="synthetic")}, num_classes=num_classes)
