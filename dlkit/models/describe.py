"""Load a config and describe its model without data or training (``dlkit summary``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def summarize_config(
    paths: Sequence[str], overrides: Sequence[str] = (), plugins: Sequence[str] = ()
) -> dict[str, Any]:
    """Validate the config, build its model (preprocessing layers included, not adapted) and summarize it.

    Args:
        paths: Config files, merged left to right.
        overrides: ``KEY=VALUE`` overrides. Defaults to none.
        plugins: Plugin modules registering custom layers. Defaults to none.

    Returns:
        :func:`dlkit.models.summarize`'s dict plus ``name`` (the config's run name).

    Raises:
        ConfigError: Any config or Keras problem; UsageError: a plugin failed to import.
    """
    from dlkit.config.loader import load_config
    from dlkit.models.builder import build_model
    from dlkit.models.components import build_layer
    from dlkit.models.registry import load_plugins
    from dlkit.models.summary import summarize
    from dlkit.models.validate import validate_components

    load_plugins(plugins)
    loaded = load_config(list(paths), list(overrides), component_checker=validate_components)
    cfg = loaded.config
    # Preprocessing is part of the saved model; here it is built but not adapted (no data is read).
    preprocessing = [
        build_layer(spec, ("data", "preprocessing", i), loaded.where) for i, spec in enumerate(cfg.data.preprocessing)
    ]
    model = build_model(cfg, preprocessing, where=loaded.where)
    return {"name": cfg.name, **summarize(model)}
