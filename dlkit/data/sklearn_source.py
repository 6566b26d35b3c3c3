"""scikit-learn's bundled datasets (digits, iris, wine, breast_cancer, diabetes): real data, offline."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split


def load_sklearn(cfg: Any, name: str | None) -> Loaded:
    """Load ``sklearn:NAME``; ``digits`` comes as 8x8(x1) images when ``model.input_shape`` asks for them.

    Defaults to 64 flat features for digits.
    """
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    x, y = loader(return_X_y=True)
    x = np.asarray(x, dtype=np.float32)
    shape = [d for d in cfg.model.input_shape]
    if name == "digits" and len(shape) >= 2:
        x = x.reshape((-1, 8, 8, 1) if len(shape) == 3 else (-1, 8, 8))
    y = np.asarray(y, dtype=np.float32 if name == "diabetes" else np.int64)
    classes = None if name == "diabetes" else int(y.max()) + 1
    return Loaded(splits={"train": Split(x, y, file=f"sklearn:{name}")}, num_classes=classes)
