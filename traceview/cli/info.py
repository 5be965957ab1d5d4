"""``traceview info``: what a trace holds and which engine read it."""

from __future__ import annotations

import json

import pandas as pd
from rich.table import Table
from rich.text import Text

from traceview.cli.app import app
from traceview.cli.common import engine_config, load
from traceview.cli.formats import FormatOpt, OutputFormat, output_format
from traceview.cli.options import OutputOpt, QuietOpt, StrictOpt, TpBinOpt, TraceArg
from traceview.cli.render import emit, write_frame, write_output
from traceview.model.describe import describe


@app.command("info")
def info_command(
    trace: TraceArg,
    fmt: FormatOpt = None,
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
    fmt = output_format(fmt, output, "info")
    with load(trace, engine_config(tp_bin, strict), quiet) as loaded:
        facts = describe(loaded)
    if fmt is OutputFormat.json:
        write_output(json.dumps(facts, indent=2), output)
        return
    shown = {key: ", ".join(str(v) for v in value) or "-" if isinstance(value, list) else str(value)
             for key, value in facts.items()}
    if write_frame(pd.DataFrame({"fact": list(shown), "value": list(shown.values())}), fmt, output):
        return
    table = Table(show_header=False, box=None)
    for key, value in shown.items():
        table.add_row(Text(key, style="bold"), Text(value))
    emit([table], output)
