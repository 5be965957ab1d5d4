"""``traceview info``: what a trace holds and which engine read it."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from traceview.cli.app import app
from traceview.cli.common import engine_config, load
from traceview.cli.options import OutputOpt, QuietOpt, StrictOpt, TpBinOpt, TraceArg
from traceview.cli.render import stdout, write_output
from traceview.model.describe import describe


@app.command("info")
def info_command(
    trace: TraceArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table|json")] = "table",
    output: OutputOpt = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Describe TRACE: format, size, engine, events, kernels, devices, time span, step markers.

    Examples:
      traceview info sample_traces/demo_eager_before.pt.trace.json.gz
      traceview info run.pftrace --format json
    """
    if fmt not in ("table", "json"):
        raise typer.BadParameter(f"unknown format {fmt!r}; use table or json", param_hint="--format")
    with load(trace, engine_config(tp_bin, strict), quiet) as loaded:
        facts = describe(loaded)
    if fmt == "json" or output is not None:
        write_output(json.dumps(facts, indent=2), output)
        return
    table = Table(show_header=False, box=None)
    for key, value in facts.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        table.add_row(f"[bold]{key}[/bold]", str(value))
    stdout.print(table)
