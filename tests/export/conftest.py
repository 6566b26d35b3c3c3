"""Fixtures for the export tests: a trained digits run folder (see export_helpers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from export_helpers import digits_config, digits_files, write_run


@pytest.fixture(scope="session")
def digits_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained digits run folder (trained once per session; copy it before writing into it)."""
    import keras

    root = tmp_path_factory.mktemp("digits")
    files = digits_files(root)
    keras.utils.set_random_seed(0)
    train = np.load(files["train"])
    val = np.load(files["validation"])
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(0.0625),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        train["x"], train["y"], validation_data=(val["x"], val["y"]), epochs=4, batch_size=64, verbose=0
    ).history
    return write_run(root / "runs" / "digits" / "001", model, digits_config(files), history)


@pytest.fixture
def digits_run(digits_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained digits run (tests may export/evaluate into it)."""
    run = tmp_path / "runs" / "digits" / "001"
    shutil.copytree(digits_template, run)
    return run
