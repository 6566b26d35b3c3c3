"""Custom layers come only from plugin modules; the registry refuses silent overwrites."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from dlkit.errors import UsageError
from dlkit.models import build_model, load_plugins, lookup, names, register_layer, unregister_layer, validate_components

PLUGIN = '''
import keras
from dlkit.models import register_layer


@register_layer
class Scale(keras.layers.Layer):
    """Multiplies by a learned per-feature scale."""

    def __init__(self, init=2.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(self.init))

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "init": self.init}
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "dlkit_test_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "dlkit_test_plugin"
    unregister_layer("Scale")
    sys.modules.pop("dlkit_test_plugin", None)


def test_unknown_until_the_plugin_is_loaded(plugin: str) -> None:
    assert lookup("layers", "Scale") is None
    assert load_plugins([plugin], entry_points=False) == [plugin]
    entry = lookup("layers", "scale")
    assert entry is not None and entry.name == "Scale" and entry.plugin
    assert "Scale" in names("layers")


def test_plugin_layer_is_checked_and_round_trips(plugin: str, make_config, tmp_path: Path) -> None:
    load_plugins([plugin], entry_points=False)
    raw = {"model": {"input_shape": [3], "layers": [{"type": "Scale", "init": 3.0, "inti": 1}]}}
    assert [p.render() for p in validate_components(raw)] == [
        "model.layers[0].inti: Scale has no argument 'inti'. Did you mean 'init'?"
    ]
    loaded = make_config(
        model={"input_shape": [3], "layers": [{"type": "Scale", "init": 3.0}, {"type": "Dense", "units": 2}]}
    )
    model = build_model(loaded.config)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    before = model.predict_on_batch(x)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert type(again.layers[1]).__name__ == "Scale" and again.layers[1].init == 3.0
    np.testing.assert_allclose(again.predict_on_batch(x), before, rtol=1e-6)


def test_overwrites_are_refused(plugin: str) -> None:
    load_plugins([plugin], entry_points=False)

    class Other(keras.layers.Layer):
        pass

    with pytest.raises(ValueError, match=r"layer name 'Scale' is already registered by dlkit_test_plugin\.Scale"):
        register_layer(Other, name="Scale")
    with pytest.raises(ValueError, match="'Dense' is a built-in Keras layer"):
        register_layer(Other, name="Dense")
    with pytest.raises(ValueError, match="needs a keras.layers.Layer subclass"):
        register_layer(int)
    # Re-importing the same plugin is not an overwrite.
    sys.modules.pop(plugin)
    load_plugins([plugin], entry_points=False)


def test_missing_plugin_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        load_plugins(["no_such_dlkit_plugin"], entry_points=False)
    assert str(info.value) == (
        "--plugin no_such_dlkit_plugin: cannot import plugin module 'no_such_dlkit_plugin': "
        "No module named 'no_such_dlkit_plugin'"
    )
    assert info.value.exit_code == 2


def test_entry_point_plugins_are_loaded(plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    ep = importlib.metadata.EntryPoint(name="scale", value=plugin, group="dlkit.plugins")
    seen = []

    def fake_entry_points(group: str):
        seen.append(group)
        return [ep]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    assert load_plugins() == [plugin]
    assert seen == ["dlkit.plugins"]
    assert lookup("layers", "Scale") is not None
