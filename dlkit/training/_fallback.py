"""TEMPORARY stand-ins for dlkit.config.loader / dlkit.models / dlkit.data while those land. Delete after."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlkit.config.schema import Config


@dataclass
class LoadedConfig:
    config: Config
    raw: dict
    origins: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)

    def where(self, path: tuple) -> tuple[str | None, int | None]:
        return (self.files[-1] if self.files else None, None)

    def problem(self, path: tuple, message: str, **kw: Any) -> Any:
        from dlkit.errors import Problem

        dotted = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        return Problem(file=self.where(path)[0], path=dotted, message=message, **kw)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(paths, overrides=(), component_checker=None) -> LoadedConfig:
    from dlkit.errors import ConfigError, Problem

    raw: dict = {}
    for p in paths:
        raw = _merge(raw, yaml.safe_load(Path(p).read_text()) or {})
    for item in overrides:
        key, _, value = item.partition("=")
        cur = raw
        parts = key.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = yaml.safe_load(value)
    try:
        cfg = Config.model_validate(raw)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(problems=[Problem(file=str(paths[-1]), message=str(e))]) from None
    return LoadedConfig(cfg, raw, {}, [str(p) for p in paths], list(overrides))


def build_model(cfg: Config, preprocessing=None):
    import keras

    inp = keras.Input(tuple(cfg.model.input_shape))
    x = inp
    for layer in preprocessing or []:
        x = layer(x)
    for spec in cfg.model.layers:
        x = getattr(keras.layers, spec.type)(**spec.kwargs)(x)
    if keras.mixed_precision.global_policy().name != "float32":
        x = keras.layers.Activation("linear", dtype="float32")(x)
    return keras.Model(inp, x)


def build_optimizer(opt):
    import keras

    kw = opt.kwargs
    return keras.optimizers.get({"class_name": opt.type, "config": kw}) if kw else keras.optimizers.get(opt.type)


def build_loss(loss):
    import keras

    return keras.losses.get(loss.type)


def build_metrics(metrics):
    return [m.type for m in metrics]


def build_callbacks(callbacks, run_dir=None):
    import keras

    return [getattr(keras.callbacks, c.type)(**c.kwargs) for c in callbacks]


@dataclass
class DataBundle:
    train: Any
    validation: Any
    test: Any
    preprocessing: list
    arrays: dict
    counts: dict
    num_classes: int | None
    task: str
    fingerprint: dict


def load_data(cfg: Config, splits=("train", "validation", "test")) -> DataBundle:
    import tensorflow as tf

    rng = np.random.default_rng(cfg.seed)
    n = cfg.data.samples
    x = rng.standard_normal((n, *cfg.model.input_shape)).astype("float32")
    units = cfg.model.layers[-1].kwargs.get("units", 2)
    y = (x.reshape(n, -1) @ rng.standard_normal((x[0].size, units))).argmax(1)
    nv = int(n * cfg.data.validation_split)
    tr = tf.data.Dataset.from_tensor_slices((x[nv:], y[nv:]))
    tr = tr.shuffle(n, seed=cfg.seed, reshuffle_each_iteration=True).batch(cfg.data.batch_size).prefetch(2)
    va = tf.data.Dataset.from_tensor_slices((x[:nv], y[:nv])).batch(cfg.data.batch_size) if nv else None
    return DataBundle(
        tr,
        va,
        None,
        [],
        {"train": (x[nv:], y[nv:])},
        {"train": n - nv, "validation": nv},
        units,
        "classification",
        {"source": "synthetic"},
    )


def preflight(cfg, bundle, model) -> None:
    return None
