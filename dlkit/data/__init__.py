"""Data: sources, splits, in-model preprocessing, the tf.data pipeline and preflight checks.

``load_data(cfg, splits=...) -> DataBundle`` and ``preflight(cfg, bundle, model)`` are the interface
(ARCHITECTURE.md). Importing this package is cheap: TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

from dlkit.data.bundle import DataBundle
from dlkit.data.loader import load_data
from dlkit.data.preflight import preflight
from dlkit.data.sources import SOURCES, list_datasets, resolve_source

__all__ = ["SOURCES", "DataBundle", "list_datasets", "load_data", "preflight", "resolve_source"]
