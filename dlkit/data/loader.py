"""``load_data``: a config's ``data:`` section -> a ``DataBundle`` (source, holdout, checks, preprocessing, tf.data)."""

from __future__ import annotations

import functools
import logging
from typing import Any

from dlkit.data.bundle import SPLITS, DataBundle, Loaded
from dlkit.data.fingerprint import fingerprint
from dlkit.data.pipeline import from_stream, make_dataset, unbatched
from dlkit.data.preflight import check_rows
from dlkit.data.preprocessing import adapt, build_layers, check_augmentation, needs_adapt
from dlkit.data.sources import resolve_source, unused_keys
from dlkit.data.splits import hold_out
from dlkit.data.task import label_kind, output_width, task_of
from dlkit.errors import DataError, Problem

log = logging.getLogger("dlkit.data")
ADAPT_BATCH = 256


def _input_dtype(cfg: Any) -> str:
    dtype = cfg.model.input_dtype or "float32"
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def _num_classes(cfg: Any, loaded: Loaded, task: str) -> int | None:
    if task == "regression":
        return None
    if task == "binary":
        return 2
    if cfg.data.num_classes:
        return cfg.data.num_classes
    if loaded.num_classes:
        return loaded.num_classes
    train = loaded.splits.get("train")
    if train is not None and len(train) and train.y.dtype.kind in "iu":
        return int(train.y.max()) + 1
    return output_width(cfg)


def load_data(cfg: Any, *, splits: tuple[str, ...] = SPLITS) -> DataBundle:
    """Load, split, check and batch the data of ``cfg`` (a ``dlkit.config.schema.Config``).

    Args:
        cfg: The validated config; paths in ``cfg.data`` are absolute.
        splits: Which batched datasets to build. The holdout is always computed from all the data, so the
            test split is the same whether or not train is built. Preprocessing adapts only when ``train`` is
            among them. Defaults to train, validation and test.

    Returns:
        A ``DataBundle``; datasets not requested or not available are None.

    Raises:
        DataError: unreadable/empty/inconsistent data, NaN/Inf (unless ``nan_policy: drop``).
        ConfigError: an unknown source, preprocessing layer or a MixUp/CutMix with class-index labels.
    """
    import tensorflow as tf

    spec, name = resolve_source(cfg.data.source)
    ignored = unused_keys(cfg.data.source, cfg.data)
    if ignored:  # a warning, not an error: `--set data.source=synthetic` smoke-tests any config
        log.warning("source '%s' ignores %s", spec.name, ", ".join(f"data.{k}" for k in ignored))
    loaded: Loaded = spec.load()(cfg, name)
    task, kind, dtype = task_of(cfg), label_kind(cfg), _input_dtype(cfg)

    augmentation = build_layers(cfg.data.augmentation, "augmentation", seed=cfg.seed)
    check_augmentation(augmentation, kind)
    preprocessing = build_layers(cfg.data.preprocessing, "preprocessing")

    if loaded.stream:
        return _streamed(cfg, loaded, splits, task, dtype, preprocessing, augmentation)

    given = dict(loaded.splits)
    rows = hold_out(check_rows(given, cfg, loaded.feature_names), cfg)  # check each file as given, then split
    if "train" in splits and any(map(needs_adapt, preprocessing, cfg.data.preprocessing)):
        train = rows["train"]
        batches = tf.data.Dataset.from_tensor_slices(train.x)
        if loaded.decode is not None:
            batches = batches.map(loaded.decode, num_parallel_calls=tf.data.AUTOTUNE)
        batches = batches.batch(ADAPT_BATCH)
        if dtype != "string":
            batches = batches.map(lambda x: tf.cast(x, dtype))
        adapt(preprocessing, cfg.data.preprocessing, batches)

    datasets: dict[str, Any] = {s: None for s in SPLITS}
    for s in splits:
        if s in rows:
            aug = augmentation if s == "train" else None
            datasets[s] = make_dataset(rows[s], loaded, cfg, training=(s == "train"), augmentation=aug, dtype=dtype)
    arrays = {} if loaded.decode is not None else {s: (r.x, r.y) for s, r in rows.items()}
    bundle = DataBundle(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        preprocessing=preprocessing,
        augmentation=augmentation,
        arrays=arrays,
        counts={s: len(r) for s, r in rows.items()},
        num_classes=_num_classes(cfg, loaded, task),
        task=task,
        fingerprint=fingerprint(cfg, loaded.files, given, loaded),
        encoders=loaded.encoders,
        class_names=loaded.class_names,
        splits=rows,
        sample_shape=loaded.sample_shape,
        feature_names=loaded.feature_names,
    )
    # Built on first use: most commands never ask, and each is another copy of the split.
    bundle._unbatched = {s: functools.partial(unbatched, r, loaded, dtype) for s, r in rows.items()}
    log.info("data %s: %s", cfg.data.source, ", ".join(f"{s} {n}" for s, n in bundle.counts.items()))
    return bundle


def _streamed(cfg: Any, loaded: Loaded, splits: tuple[str, ...], task: str, dtype: str, pre: list, aug: list):
    """The bundle of a streaming source (tfds): no arrays, counts from the source's metadata."""
    import tensorflow as tf

    empty = [s for s, n in loaded.stream_counts.items() if n == 0]
    if empty:
        raise DataError(problems=[Problem(path="data.source", message=f"the {empty[0]} split is empty")])
    if "train" in splits and any(map(needs_adapt, pre, cfg.data.preprocessing)):
        batches = loaded.stream["train"].map(lambda x, y: x).batch(ADAPT_BATCH)
        adapt(pre, cfg.data.preprocessing, batches)
    datasets: dict[str, Any] = {s: None for s in SPLITS}
    for s in splits:
        if s in loaded.stream:
            datasets[s] = from_stream(
                loaded.stream[s], cfg, training=(s == "train"), augmentation=aug if s == "train" else None, dtype=dtype
            )
    sample = loaded.stream["train"].element_spec[0].shape
    bundle = DataBundle(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        preprocessing=pre,
        augmentation=aug,
        arrays={},
        counts=dict(loaded.stream_counts),
        num_classes=_num_classes(cfg, loaded, task),
        task=task,
        fingerprint={"source": cfg.data.source, "seed": cfg.seed},
        sample_shape=tuple(sample) if sample.is_fully_defined() else None,
    )
    bundle._unbatched = {
        s: ds.map(lambda x, y: (x if dtype == "string" else tf.cast(x, dtype), y)) for s, ds in loaded.stream.items()
    }
    return bundle


__all__ = ["load_data"]
