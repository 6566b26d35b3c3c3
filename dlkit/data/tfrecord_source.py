"""``tfrecord``: files of ``tf.train.Example`` parsed with ``data.feature_spec`` in parallel.

Features other than ``data.label`` are flattened and concatenated, in the order of ``feature_spec``, into
one float32 vector per example (a single feature keeps its shape, e.g. an image). Parsed records are held in
memory so they get the same splits, checks (record numbers in messages) and fingerprint as array sources.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlkit.data.bundle import Loaded, Split
from dlkit.data.paths import given_files, require
from dlkit.errors import DataError, Problem, tf_message


def _spec(cfg: Any, path: str) -> tuple[dict[str, Any], list[str]]:
    import tensorflow as tf

    spec = cfg.data.feature_spec
    label = cfg.data.label
    if not spec or not label:
        raise DataError(
            problems=[
                Problem(
                    file=path,
                    path="data.feature_spec" if not spec else "data.label",
                    message="a tfrecord source needs data.feature_spec and data.label",
                    hint="e.g. feature_spec: {x: {dtype: float32, shape: [4]}, y: {dtype: int64}}; label: y",
                )
            ]
        )
    if label not in spec:
        raise DataError(
            problems=[Problem(path="data.label", message=f"'{label}' is not in data.feature_spec", got=label)]
        )
    parse = {k: tf.io.FixedLenFeature(v.shape, getattr(tf, v.dtype)) for k, v in spec.items()}
    features = [k for k in spec if k != label]
    if not features:
        raise DataError(problems=[Problem(path="data.feature_spec", message="no features besides the label")])
    bad = [k for k in features if spec[k].dtype == "string"]
    if bad:
        raise DataError(
            problems=[
                Problem(
                    path=f"data.feature_spec.{bad[0]}",
                    message="string features are not supported in tfrecord sources",
                    hint="Store numbers (float32/int64), or decode images before writing the records.",
                )
            ]
        )
    return parse, features


def _read(cfg: Any, path: str, key: str) -> Split:
    import tensorflow as tf

    require(path, key)
    parse, features = _spec(cfg, path)
    label = cfg.data.label

    def to_xy(record: Any) -> Any:
        ex = tf.io.parse_single_example(record, parse)
        if len(features) == 1:
            x = tf.cast(ex[features[0]], tf.float32)
        else:
            x = tf.concat([tf.reshape(tf.cast(ex[k], tf.float32), [-1]) for k in features], axis=0)
        return x, ex[label]

    ds = tf.data.TFRecordDataset([path], num_parallel_reads=tf.data.AUTOTUNE)
    ds = ds.map(to_xy, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(4096)
    xs, ys = [], []
    try:
        for x, y in ds:
            xs.append(x.numpy())
            ys.append(y.numpy())
    except tf.errors.DataLossError as exc:
        raise DataError(
            problems=[Problem(file=path, path=key, message=f"not a valid TFRecord file ({tf_message(exc)})")]
        ) from None
    except tf.errors.InvalidArgumentError as exc:
        raise DataError(
            problems=[
                Problem(
                    file=path,
                    path="data.feature_spec",
                    message=f"records do not match data.feature_spec: {exc.message.splitlines()[0]}",
                    hint="Check each feature's dtype and shape against how the file was written.",
                )
            ]
        ) from None
    if not xs:
        raise DataError(problems=[Problem(file=path, path=key, message="the file holds no records")])
    y_all = np.concatenate(ys)
    if cfg.data.feature_spec[label].dtype == "float32":
        y_all = y_all.astype(np.float32)
    return Split(np.concatenate(xs), y_all, file=path, key=key, unit="record")


def load_tfrecord(cfg: Any, name: str | None = None) -> Loaded:
    """Parse the TFRecord files the config names.

    Raises:
        DataError: missing file, corrupt file, records that do not match the feature spec.
    """
    files = given_files(cfg)
    splits = {split: _read(cfg, path, key) for split, (path, key) in files.items()}
    return Loaded(splits=splits, files=[path for path, _ in files.values()])
