"""``traceview sql``: run PerfettoSQL on a trace."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from traceview.cli.app import app
from traceview.cli.common import engine_config, load
from traceview.cli.formats import FormatOpt, output_format
from traceview.cli.options import OutputOpt, QuietOpt, StrictOpt, TpBinOpt, TraceArg
from traceview.cli.render import cell_text, emit, write_frame


@app.command("sql")
def sql_command(
    trace: TraceArg,
    query: Annotated[str, typer.Argument(help="PerfettoSQL, e.g. \"select name, count(*) from slice group by 1\"")],
    fmt: FormatOpt = None,
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
    fmt = output_format(fmt, output, "sql")
    with load(trace, engine_config(tp_bin, strict), quiet) as loaded:
        frame = loaded.query(query)
    if not write_frame(frame, fmt, output):
        table = Table(*[str(c) for c in frame.columns], show_lines=False)
        for row in frame.itertuples(index=False):
            table.add_row(*[Text(cell_text(v)) for v in row])
        emit([table], output)
