"""Shared test fixtures. Keep them few; each package's tests own their helpers."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NO_COLOR", "1")


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a YAML config (dedented) into tmp_path and return its path."""

    def _write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def float32_policy():
    """Restore the float32 global policy after a test that changes it (training can set a mixed one)."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def runner():
    """An in-process CliRunner with stdout and stderr kept apart."""
    from click.testing import CliRunner

    return CliRunner()
