"""``dlkit summary`` and ``dlkit list``: inspect a model and the components a config may name."""

from __future__ import annotations

from typing import Any

import click

from dlkit.cli.render import emit_json, err_console, handle_errors
from dlkit.errors import UsageError
from dlkit.models.registry import KINDS

# The registry's kinds plus the data sources, in the contract's order (`dlkit list layers|...|schedules|datasets`).
_SPLIT = KINDS.index("schedules") + 1
LIST_KINDS = (*KINDS[:_SPLIT], "datasets", *KINDS[_SPLIT:])


@click.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (YAML).")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="Import a module that registers layers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@handle_errors
def summary(configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...], as_json: bool) -> None:
    """Model table, parameters, FLOPs per sample and weight memory, without training or data."""
    from dlkit.models.describe import summarize_config

    info = summarize_config(list(configs), list(overrides), list(plugins))
    if as_json:
        emit_json(info)
    else:
        _print_summary(info)


def _fmt_shape(shape: Any) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _print_summary(info: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Model: {info.get('name', '')}", title_justify="left")
    for column, justify in (("Layer", "left"), ("Type", "left"), ("Output shape", "left"), ("Params", "right")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("FLOPs", justify="right")
    for row in info["layers"]:
        table.add_row(
            row["name"], row["type"], _fmt_shape(row["output_shape"]), f"{row['params']:,}", f"{row['flops']:,}"
        )
    console = err_console()
    console.print(table)
    params = info["params"]
    console.print(
        f"Total params: {params['total']:,}  trainable: {params['trainable']:,}  "
        f"non-trainable: {params['non_trainable']:,}",
        markup=False,
    )
    console.print(
        f"FLOPs per sample: {info['flops']:,} ({info['macs']:,} multiply-adds, counted analytically)", markup=False
    )
    console.print(f"Weight memory: {_human_bytes(info['weight_bytes'])} ({info['weight_bytes']:,} bytes)", markup=False)
    if info.get("flops_uncounted"):
        console.print("FLOPs not modelled for: " + ", ".join(info["flops_uncounted"]), markup=False)


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


@click.command("list")
@click.argument("kind", metavar="KIND")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="Import a module that registers layers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@handle_errors
def list_components(kind: str, plugins: tuple[str, ...], as_json: bool) -> None:
    """List the Keras components (or data sources) a config may name, one per line on stdout.

    KIND is one of layers, optimizers, losses, metrics, callbacks, schedules, datasets, activations,
    initializers, regularizers, constraints.
    """
    if kind not in LIST_KINDS:
        from dlkit.config.suggest import did_you_mean

        close = did_you_mean(kind, LIST_KINDS)
        raise UsageError(
            f"unknown kind '{kind}'; choose one of {', '.join(LIST_KINDS)}."
            + (f" Did you mean '{close}'?" if close else "")
        )
    if kind == "datasets":
        from dlkit.data.sources import list_datasets

        rows = list_datasets()
        if as_json:
            emit_json({"kind": kind, "datasets": rows})
            return
        for row in rows:
            prefix = row["source"].split(":")[0]
            values = [f"{prefix}:{n.strip()}" for n in row["names"].split(",")] if row["names"] else [row["source"]]
            for value in values:
                click.echo(f"{value:<24} {row['help']}")
        return
    from dlkit.models import load_plugins, names

    load_plugins(plugins)
    found = names(kind)
    if as_json:
        emit_json({"kind": kind, "names": found})
    else:
        click.echo("\n".join(found))
