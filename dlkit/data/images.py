"""``images``: a folder of class subfolders, decoded in parallel inside tf.data.

Follows ``keras.utils.image_dataset_from_directory``'s conventions (class subfolders in sorted order give
the label indices; .bmp/.gif/.jpeg/.jpg/.png files; bilinear resize to ``image_size``; float32 pixels in
0-255), but lists the files itself so that the seeded train/validation/test holdout splits file paths and
only the kept files are decoded. A split is then an array of paths; ``decode`` runs in ``map`` with
``num_parallel_calls=AUTOTUNE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.data.paths import given_files, require
from dlkit.errors import DataError, Problem

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
# File signatures tf.io.decode_image accepts for these extensions; a file without one would stop training
# mid-epoch with a TensorFlow graph error, so it is reported up front (reading 8 bytes per file).
MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
MAX_BAD = 5


def unreadable(paths: list[str]) -> list[str]:
    """The files among ``paths`` that do not start like a PNG, JPEG, GIF or BMP image."""
    bad = []
    for path in paths:
        with open(path, "rb") as fh:
            head = fh.read(8)
        if not head.startswith(MAGIC):
            bad.append(path)
    return bad


def _list(folder: Path, key: str, classes: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if classes is None:
        classes = found
    elif found and found != classes:
        raise DataError(
            problems=[
                Problem(
                    file=str(folder),
                    path=key,
                    message=f"class folders {found} differ from the training folder's {classes}",
                    hint="Every split needs the same class subfolders.",
                )
            ]
        )
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        sub = folder / name
        if not sub.is_dir():
            continue
        files = sorted(str(p) for p in sub.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        paths += files
        labels += [index] * len(files)
    if not classes or not paths:
        raise DataError(
            problems=[
                Problem(
                    file=str(folder),
                    path=key,
                    message="no images found" if classes else "no class subfolders found",
                    hint="Expected FOLDER/<class name>/<image> with images ending in " + " ".join(EXTENSIONS) + ".",
                )
            ]
        )
    bad = unreadable(paths)
    if bad:
        problems = [
            Problem(file=path, path=key, message="not a PNG, JPEG, GIF or BMP image. Replace or remove the file.")
            for path in bad[:MAX_BAD]
        ]
        if len(bad) > MAX_BAD:
            problems.append(Problem(file=str(folder), path=key, message=f"{len(bad) - MAX_BAD} more unreadable files"))
        raise DataError(problems=problems)
    return np.asarray(paths), np.asarray(labels, dtype=np.int64), classes


def image_shape(cfg: Any) -> tuple[int, int, int]:
    """(height, width, channels) the images decode to: ``data.image_size`` or the model's input height/width."""
    channels = CHANNELS[cfg.data.color_mode]
    if cfg.data.image_size:
        if len(cfg.data.image_size) != 2:
            raise DataError(
                problems=[Problem(path="data.image_size", message="give [height, width]", got=str(cfg.data.image_size))]
            )
        return int(cfg.data.image_size[0]), int(cfg.data.image_size[1]), channels
    shape = cfg.model.input_shape
    if len(shape) == 3 and shape[0] and shape[1]:
        return int(shape[0]), int(shape[1]), channels
    return 256, 256, channels  # image_dataset_from_directory's default


def make_decoder(height: int, width: int, channels: int):
    """A tf function: file path -> float32 image (height, width, channels), like Keras' loader."""
    import tensorflow as tf

    def decode(path: Any) -> Any:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        image = tf.image.resize(image, (height, width), method="bilinear")
        image.set_shape((height, width, channels))
        return image

    return decode


def load_images(cfg: Any, name: str | None = None) -> Loaded:
    """List the class folders the config names; images are decoded later, in the pipeline.

    Raises:
        DataError: missing folder, no class subfolders or images, splits with different classes.
    """
    files = given_files(cfg)
    splits: dict[str, Split] = {}
    classes: list[str] | None = None
    for split, (path, key) in files.items():
        folder = require(path, key, folder=True)
        x, y, classes = _list(folder, key, classes)
        splits[split] = Split(x, y, file=path, key=key, unit="image")
    height, width, channels = image_shape(cfg)
    return Loaded(
        splits=splits,
        files=[path for path, _ in files.values()],
        class_names=classes,
        num_classes=len(classes or []),
        decode=make_decoder(height, width, channels),
        sample_shape=(height, width, channels),
    )
