"""Turn ``model.input_shape`` + ``model.layers`` into a ``keras.Model`` (sequential or graph).

Wiring rules:
- each layer takes the previous layer's output unless it names ``inputs:`` (``input`` is the model input
  after preprocessing; any earlier layer's ``name`` works); two or more inputs are passed as a list
  (``Add``, ``Concatenate`` ...);
- ``{block: NAME, repeat: N}`` inserts the layers of ``model.blocks.NAME`` N times; inside a block
  ``block_input`` is the block's input and layer names get the prefix ``NAME<k>_`` for the k-th use, so a
  residual block can be repeated;
- ``model.outputs`` names the outputs (default: the last layer). Under a mixed global precision policy
  each output gets a float32 ``Activation("linear")`` so losses and exports see float32.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any

from dlkit.errors import ConfigError, Problem
from dlkit.models import registry
from dlkit.models.components import build_layer, to_spec
from dlkit.models.validate import Path, Where, dotted

RESERVED_NAMES = ("input", "block_input")


def default_regularizer(regularization: Any) -> Callable[[], Any] | None:
    """A factory of the default kernel regularizer of ``model.regularization`` (None when unset or zero)."""
    if regularization is None:
        return None
    l1, l2 = float(getattr(regularization, "l1", 0.0) or 0.0), float(getattr(regularization, "l2", 0.0) or 0.0)
    if l1 == 0 and l2 == 0:
        return None

    def make() -> Any:
        import keras

        if l1 == 0:
            return keras.regularizers.L2(l2)
        if l2 == 0:
            return keras.regularizers.L1(l1)
        return keras.regularizers.L1L2(l1=l1, l2=l2)

    return make


class _Builder:
    def __init__(self, model_cfg: Any, where: Where | None) -> None:
        self.cfg = model_cfg
        self.where = where
        self.regularizer = default_regularizer(model_cfg.regularization)
        self.block_uses: dict[str, int] = {}
        self.keras_names: dict[str, str] = {}  # keras layer name -> config path, to refuse duplicates

    def fail(self, path: Path, message: str, suggestion: str | None = None) -> ConfigError:
        file, line = self.where(path) if self.where else (None, None)
        return ConfigError(
            problems=[Problem(file=file, line=line, path=dotted(path), message=message, suggestion=suggestion)]
        )

    def run(
        self, specs: list[Any], scope: Mapping[str, Any], current: Any, base: Path, prefix: str, stack: tuple
    ) -> Any:
        """Wire ``specs`` in order; returns the last output. ``scope`` maps visible names to tensors."""
        local: dict[str, Any] = {}
        view = ChainMap(local, dict(scope))
        declared = {s.name: i for i, s in enumerate(specs) if s.name}
        for i, spec in enumerate(specs):
            path = (*base, i)
            if spec.name is not None:
                if spec.name in RESERVED_NAMES:
                    raise self.fail((*path, "name"), f"'{spec.name}' is reserved; choose another layer name")
                if spec.name in local:
                    raise self.fail((*path, "name"), f"duplicate layer name '{spec.name}'")
            x_in = current if spec.inputs is None else self.resolve_inputs(spec.inputs, view, declared, i, path)
            if spec.block is not None:
                out = self.run_block(spec, x_in, view, path, prefix, stack)
            else:
                out = self.call_layer(spec, x_in, path, prefix)
            if spec.name is not None:
                local[spec.name] = out
            current = out
        self.last_scope = view
        return current

    def resolve_inputs(self, names: list[str], view: Mapping[str, Any], declared: dict, index: int, path: Path) -> Any:
        tensors = []
        for j, name in enumerate(names):
            if name in view:
                tensors.append(view[name])
                continue
            at = (*path, "inputs", j)
            if name in declared and declared[name] >= index:
                raise self.fail(
                    at,
                    f"layer '{name}' is not defined before this layer; inputs may name only earlier layers (no cycles)",
                )
            visible = [n for n in view if not n.startswith("\0")]
            raise self.fail(
                at,
                f"unknown input '{name}'; inputs may name 'input' or an earlier layer",
                registry.suggest(name, visible),
            )
        return tensors[0] if len(tensors) == 1 else tensors

    def call_layer(self, spec: Any, x_in: Any, path: Path, prefix: str) -> Any:
        raw = to_spec(spec)
        if prefix:
            raw = {"type": raw} if isinstance(raw, str) else dict(raw)
            entry = registry.lookup("layers", spec.type)
            local_name = raw.get("name") or f"{(entry.name if entry else spec.type).lower()}_{path[-1]}"
            raw["name"] = f"{prefix}{local_name}"
        layer = build_layer(raw, path, self.where, default_kernel_regularizer=self.regularizer)
        if layer.name in self.keras_names:
            raise self.fail(path, f"duplicate layer name '{layer.name}' (also at {self.keras_names[layer.name]})")
        self.keras_names[layer.name] = dotted(path)
        try:
            return layer(x_in)
        except ConfigError:
            raise
        except Exception as error:  # noqa: BLE001 - shape/dtype mismatches are config problems
            text = " ".join(str(error).split())
            raise self.fail(path, f"{type(layer).__name__}: {text[:500]}") from error

    def run_block(self, spec: Any, x_in: Any, view: Mapping[str, Any], path: Path, prefix: str, stack: tuple) -> Any:
        blocks = self.cfg.blocks or {}
        name = spec.block
        if name not in blocks:
            raise self.fail((*path, "block"), f"unknown block '{name}'", registry.suggest(name, list(map(str, blocks))))
        if name in stack:
            raise self.fail((*path, "block"), f"block '{name}' uses itself ({' -> '.join((*stack, name))})")
        if isinstance(x_in, list):
            raise self.fail((*path, "inputs"), "a block takes one input")
        out = x_in
        for _ in range(spec.repeat):
            self.block_uses[name] = self.block_uses.get(name, 0) + 1
            block_prefix = f"{prefix}{name}{self.block_uses[name]}_"
            scope = ChainMap({"block_input": out}, dict(view))
            out = self.run(blocks[name], scope, out, ("model", "blocks", name), block_prefix, (*stack, name))
        return out


def build_model(cfg: Any, preprocessing: list[Any] | None = None, *, where: Where | None = None) -> Any:
    """Build the config's Keras model (not compiled).

    Args:
        cfg: A validated :class:`dlkit.config.schema.Config`.
        preprocessing: Already adapted Keras layers from ``data.preprocessing``; they follow the input so the
            saved model takes raw input. Defaults to none.
        where: Locates a config path as ``(file, line)`` for error messages. Defaults to None.

    Returns:
        A functional ``keras.Model`` named after ``cfg.name``.

    Raises:
        ConfigError: Unknown layer/argument/input/block name, duplicate names, or Keras refused a layer.
    """
    import keras

    model_cfg = cfg.model
    builder = _Builder(model_cfg, where)
    try:
        inp = keras.Input(shape=tuple(model_cfg.input_shape), dtype=model_cfg.input_dtype or "float32", name="input")
    except Exception as error:  # noqa: BLE001
        raise builder.fail(("model", "input_shape"), f"cannot create the model input: {error}") from error
    x = inp
    for i, layer in enumerate(preprocessing or []):
        try:
            x = layer(x)
        except Exception as error:  # noqa: BLE001
            text = " ".join(str(error).split())[:500]
            raise builder.fail(("data", "preprocessing", i), f"{type(layer).__name__}: {text}") from error
    last = builder.run(list(model_cfg.layers), {"input": x}, x, ("model", "layers"), "", ())
    scope = builder.last_scope
    outputs = []
    if model_cfg.outputs:
        for j, name in enumerate(model_cfg.outputs):
            if name not in scope or name in RESERVED_NAMES:
                raise builder.fail(
                    ("model", "outputs", j),
                    f"unknown output '{name}'; name a layer of model.layers",
                    registry.suggest(name, [n for n in scope if n not in RESERVED_NAMES]),
                )
            outputs.append((name, scope[name]))
    else:
        outputs.append((None, last))
    if isinstance(last, list) and not model_cfg.outputs:
        raise builder.fail(("model", "layers", len(model_cfg.layers) - 1), "the last layer returns several tensors")
    if keras.mixed_precision.global_policy().name.startswith("mixed"):
        # Keep outputs float32 under mixed precision: stable losses, float32 exports.
        outputs = [
            (name, keras.layers.Activation("linear", dtype="float32", name=f"{name or 'output'}_float32")(t))
            for name, t in outputs
        ]
    tensors = [t for _, t in outputs]
    try:
        return keras.Model(inputs=inp, outputs=tensors[0] if len(tensors) == 1 else tensors, name=cfg.name)
    except Exception as error:  # noqa: BLE001
        raise builder.fail(("model",), f"cannot build the model: {' '.join(str(error).split())[:500]}") from error
