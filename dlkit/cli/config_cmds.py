"""``dlkit config check|render|schema``.

TensorFlow is imported only when ``check`` builds the model (through ``dlkit.models``), never when this
module is imported, so ``dlkit --help`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dlkit.cli.render import handle_errors, info
from dlkit.errors import ConfigError, UsageError

_MODELS_MODULES = ("dlkit.models", "dlkit.models.validate", "dlkit.models.builder", "dlkit.models.registry")


def models_attr(name: str) -> Callable[..., Any] | None:
    """``dlkit.models.<name>`` (or from its submodules) when it exists; None while it is not written."""
    for module_name in _MODELS_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        attr = getattr(module, name, None)
        if callable(attr):
            return attr
    return None


def load_for_cli(configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...] = ()) -> Any:
    """Load plugins (``--plugin`` modules and ``dlkit.plugins`` entry points), then configs with overrides.

    Keras names and arguments are checked together with the schema when ``dlkit.models`` provides the checker.
    """
    from dlkit.config import load_config

    load_plugins = models_attr("load_plugins")
    if load_plugins is not None:
        load_plugins(list(plugins))
    elif plugins:
        raise UsageError("--plugin needs dlkit.models.load_plugins, which this install does not have")
    return load_config(list(configs), list(overrides), component_checker=models_attr("validate_components"))


_CONFIGS = click.argument("configs", nargs=-1, required=True, type=click.Path(dir_okay=False))
_SET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value (VALUE is YAML), e.g. --set training.epochs=5. Repeatable.",
)
_PLUGIN = click.option(
    "--plugin", "plugins", multiple=True, metavar="MODULE", help="Import MODULE to register custom layers. Repeatable."
)


@click.group()
def config() -> None:
    """Check, render or print the JSON Schema of configs."""


@config.command("check")
@_CONFIGS
@_SET
@_PLUGIN
@handle_errors
def check(configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...]) -> None:
    """Report every problem in CONFIG files at once (file:line, did-you-mean), then build the model."""
    loaded = load_for_cli(configs, overrides, plugins)
    build_model = models_attr("build_model")
    if build_model is None:
        info("ok: config is valid (model not built: dlkit.models.build_model is not available)")
        return
    kwargs = {"where": loaded.where} if "where" in inspect.signature(build_model).parameters else {}
    try:
        model = build_model(loaded.config, **kwargs)
    except (ValueError, TypeError) as error:
        # Keras' own shape/argument errors that the up-front checks could not foresee.
        raise ConfigError(
            problems=[loaded.problem(("model", "layers"), f"the model does not build: {error}")]
        ) from error
    info(f"ok: {model.count_params()} parameters")


@config.command("render")
@_CONFIGS
@_SET
@_PLUGIN
@handle_errors
def render(configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...]) -> None:
    """Print the fully resolved config (files merged, overrides applied, defaults filled) as YAML."""
    from dlkit.config import resolved, to_yaml

    loaded = load_for_cli(configs, overrides, plugins)
    out = resolved(loaded.config)
    canonicalize = models_attr("canonicalize")
    if canonicalize is not None:
        out = canonicalize(out)
    click.echo(to_yaml(out), nl=False)


@config.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@handle_errors
def schema(output: str | None) -> None:
    """Print the JSON Schema of dlkit configs, for editors (yaml-language-server)."""
    from dlkit.atomic import write_text
    from dlkit.config import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output:
        write_text(Path(output), text)
        info(f"wrote {output}")
    else:
        click.echo(text, nl=False)
