"""``keras:NAME``: Keras' own dataset loaders, downloaded once into Keras' cache.

With ``data.path`` pointing at an already-downloaded archive the loader runs offline: the archive is linked
into a private, temporary Keras cache under the file name the loader expects, so Keras' own hash check and
parsing apply unchanged (a wrong or damaged file is reported, not silently re-downloaded).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.errors import DataError, Problem

log = logging.getLogger("dlkit.data")
_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_LOCK = threading.Lock()

# name -> (files the loader looks for under KERAS_HOME/datasets, where to get them, classes)
ARCHIVES: dict[str, tuple[tuple[str, ...], str, int | None]] = {
    "mnist": (("mnist.npz",), _BASE + "mnist.npz", 10),
    "fashion_mnist": (
        tuple(
            f"fashion-mnist/{f}"
            for f in (
                "train-labels-idx1-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
            )
        ),
        _BASE + "{train,t10k}-{labels-idx1,images-idx3}-ubyte.gz",
        10,
    ),
    "cifar10": (("cifar-10-batches-py-target_archive",), "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", 10),
    "cifar100": (
        ("cifar-100-python-target_archive",),
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        100,
    ),
    "imdb": (("imdb.npz",), _BASE + "imdb.npz", 2),
    "reuters": (("reuters.npz",), _BASE + "reuters.npz", 46),
    "boston_housing": (("boston_housing.npz",), _BASE + "boston_housing.npz", None),
}


def _vocab_size(cfg: Any) -> int | None:
    """``input_dim`` of the model's Embedding layer: the ``num_words`` for imdb/reuters."""
    for spec in cfg.model.layers:
        if spec.type.lower() == "embedding" and isinstance(spec.kwargs.get("input_dim"), int):
            return int(spec.kwargs["input_dim"])
    return None


def _call(name: str, cfg: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    import keras

    module = getattr(keras.datasets, name)
    kwargs: dict[str, Any] = {}
    if name in ("imdb", "reuters"):
        kwargs["num_words"] = _vocab_size(cfg)
    # Keras reports downloads on stdout; keep stdout for results (``--json``).
    with contextlib.redirect_stdout(sys.stderr):
        return module.load_data(**kwargs)


def _offline(name: str, cfg: Any, archive: Path) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    from keras.src.backend import config as keras_config

    files, origin, _ = ARCHIVES[name]
    with tempfile.TemporaryDirectory(prefix="dlkit-keras-") as home, _LOCK:
        for rel in files:
            target = Path(home) / "datasets" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive / Path(rel).name if archive.is_dir() else archive
            if not source.is_file():
                raise DataError(
                    problems=[
                        Problem(
                            file=str(archive),
                            path="data.path",
                            message=f"keras:{name} expects the file {Path(rel).name} here",
                            hint=f"Download it from {origin}.",
                        )
                    ]
                )
            os.symlink(source.resolve(), target)
        saved = keras_config._KERAS_DIR  # the loaders read their cache folder from here
        keras_config._KERAS_DIR = home
        try:
            return _call(name, cfg)
        finally:
            keras_config._KERAS_DIR = saved


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_keras(cfg: Any, name: str) -> Loaded:
    """Load ``keras:NAME`` as train and test splits (the loader's own split).

    Raises:
        DataError: when the download fails (pass ``data.path``) or the local archive is wrong.
    """
    files, origin, classes = ARCHIVES[name]
    archive = Path(cfg.data.path) if cfg.data.path else None
    if archive is not None and not archive.exists():
        raise DataError(problems=[Problem(file=str(archive), path="data.path", message="file not found")])
    try:
        (x_train, y_train), (x_test, y_test) = _offline(name, cfg, archive) if archive else _call(name, cfg)
    except DataError:
        raise
    except Exception as exc:  # urllib/hash/extract failures surface as bare Exceptions from get_file
        where = f"the archive {archive}" if archive else f"downloading {origin}"
        raise DataError(
            problems=[
                Problem(
                    file=str(archive) if archive else None,
                    path="data.path" if archive else "data.source",
                    message=f"keras:{name}: {where} failed: {_first_line(exc)}",
                    hint=(
                        "The file must be the original archive (Keras checks its hash)."
                        if archive
                        else f"Download {origin} on a connected machine and set data.path to the file"
                        + (" (a folder holding the four .gz files)." if name == "fashion_mnist" else ".")
                    ),
                )
            ]
        ) from None
    if name in ("imdb", "reuters"):
        import keras

        maxlen = cfg.model.input_shape[0] if cfg.model.input_shape and cfg.model.input_shape[0] else 200
        x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
        x_test = keras.utils.pad_sequences(x_test, maxlen=maxlen)
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    if name in ("mnist", "fashion_mnist") and len(cfg.model.input_shape) == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]  # (28, 28) -> (28, 28, 1) when the model asks
    y_train, y_test = np.asarray(y_train).reshape(len(y_train), -1), np.asarray(y_test).reshape(len(y_test), -1)
    if y_train.shape[1] == 1:
        y_train, y_test = y_train[:, 0], y_test[:, 0]
    if classes is not None:
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    else:
        y_train, y_test = y_train.astype(np.float32), y_test.astype(np.float32)
    source = str(archive) if archive else f"keras:{name}"
    return Loaded(
        splits={
            "train": Split(x_train, y_train, file=source, key="data.source"),
            "test": Split(x_test, y_test, file=source, key="data.source"),
        },
        files=[str(archive)] if archive and archive.is_file() else [],
        num_classes=classes,
    )
