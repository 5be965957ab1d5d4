"""``traceview sql``: run PerfettoSQL on a trace."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from traceview.cli.app import app
from traceview.cli.common import engine_config, load
from traceview.cli.options import OutputOpt, QuietOpt, StrictOpt, TpBinOpt, TraceArg
from traceview.cli.render import stdout, write_frame, write_output


@app.command("sql")
def sql_command(
    trace: TraceArg,
    query: Annotated[str, typer.Argument(help="PerfettoSQL, e.g. \"select name, count(*) from slice group by 1\"")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table|csv|json")] = "table",
    output: OutputOpt = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a PerfettoSQL query on TRACE and print the rows.

    Examples:
      traceview sql trace.json.gz "select name, count(*) n from slice group by 1 order by n desc limit 10"
      traceview sql trace.json.gz "select * from stats where value > 0" --format csv -o stats.csv
    """
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter(f"unknown format {fmt!r}; use table, csv or json", param_hint="--format")
    with load(trace, engine_config(tp_bin, strict), quiet) as loaded:
        frame = loaded.query(query)
    if output is not None and fmt == "table":
        write_output(frame.to_string(index=False), output)
    elif not write_frame(frame, fmt, output):
        table = Table(*[str(c) for c in frame.columns], show_lines=False)
        for row in frame.itertuples(index=False):
            table.add_row(*["" if v is None or v is __import__("pandas").NA else str(v) for v in row])
        stdout.print(table)
