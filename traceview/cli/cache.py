"""``traceview cache info|clear``: the per-trace counts cache (see traceview/cache.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from traceview.cache import cache_info, clear_cache, counts_dir
from traceview.cli.app import app
from traceview.cli.render import stdout, write_output

cache_app = typer.Typer(name="cache", no_args_is_help=True,
                        help="Inspect or empty the cache of per-trace counts "
                             "($TRACEVIEW_CACHE_DIR, else $XDG_CACHE_HOME/traceview).")
app.add_typer(cache_app, name="cache")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cache_app.command("info")
def info_command(fmt: Annotated[str, typer.Option("--format", "-f", help="table|json")] = "table") -> None:
    """Show where the cache is, how many traces it holds and its size on disk.

    Examples:
      traceview cache info
      traceview cache info --format json
    """
    if fmt not in ("table", "json"):
        raise typer.BadParameter(f"unknown format {fmt!r}; use table or json", param_hint="--format")
    info = cache_info()
    if fmt == "json":
        write_output(json.dumps(info.__dict__, indent=2), None)
        return
    table = Table(show_header=False, box=None)
    table.add_row("[bold]location[/bold]", info.location)
    table.add_row("[bold]entries[/bold]", f"{info.entries} counted trace(s) in {counts_dir()}")
    table.add_row("[bold]size[/bold]", _size(info.size_bytes))
    table.add_row("[bold]compiled wasm[/bold]", f"{info.wasm_modules} module(s), {_size(info.wasm_size_bytes)}")
    stdout.print(table)


@cache_app.command("clear")
def clear_command(
    all_: Annotated[bool, typer.Option("--all", help="Also delete the compiled wasm trace processor "
                                                     "(recompiled on next use, a few seconds).")] = False,
) -> None:
    """Delete every cached count (the next counts/diff/check reads the traces again).

    Examples:
      traceview cache clear
      traceview cache clear --all
    """
    freed = clear_cache(include_wasm=all_)
    stdout.print(f"freed {_size(freed)}", highlight=False)
