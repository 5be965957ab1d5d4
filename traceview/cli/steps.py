"""``traceview steps``: the decode steps found in a trace."""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from traceview.cli.app import app
from traceview.cli.common import analyze_with_progress, engine_config
from traceview.cli.formats import FormatOpt, output_format
from traceview.cli.options import (
    NoCacheOpt,
    OutputOpt,
    QuietOpt,
    RulesOpt,
    StepMarkerOpt,
    StrictOpt,
    TpBinOpt,
    TraceArg,
)
from traceview.cli.render import emit, stderr, write_frame


@app.command("steps")
def steps_command(
    trace: TraceArg,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """List the steps: name, CPU start/end/duration, GPU start/end, launches (graph-replayed and direct),
    and every step-marker family found (count, median duration, which one was chosen).

    Examples:
      traceview steps sample_traces/demo_vllm_eager_before.pt.trace.json.gz
      traceview steps trace.json.gz --step-marker '^step\\\\[DECODE' --format csv -o steps.csv
    """
    fmt = output_format(fmt, output, "steps")
    counts = analyze_with_progress(trace, step_marker, rules, engine_config(tp_bin, strict), quiet, no_cache)
    for warning in counts.warnings:
        stderr.print(f"warning: {counts.path}: {warning}", markup=False, highlight=False)
    steps = counts.steps
    if write_frame(steps, fmt, output):
        return
    table = Table(title=Text(f"{len(steps)} step(s) by marker {counts.step_marker} {counts.step_regex}"),
                  title_justify="left")
    for column in ("step", "name", "cpu start ms", "cpu ms", "gpu start ms", "gpu span ms", "gpu busy ms", "launches", "graph", "direct"):
        table.add_column(column, justify="left" if column == "name" else "right")
    origin = int(steps["cpu_start_ns"].min()) if len(steps) else 0
    for r in steps.itertuples(index=False):
        no_gpu = pd.isna(r.gpu_start_ns)
        table.add_row(str(r.step), Text(str(r.name)), f"{(r.cpu_start_ns - origin) / 1e6:.3f}", f"{r.cpu_dur_ns / 1e6:.3f}",
                      "" if no_gpu else f"{(int(r.gpu_start_ns) - origin) / 1e6:.3f}",
                      "" if no_gpu else f"{int(r.gpu_span_ns) / 1e6:.3f}", f"{r.gpu_busy_ns / 1e6:.3f}",
                      str(r.launches), str(r.graph_replayed), str(r.direct))
    emit([table, _markers_table(counts.step_candidates)], output)


def _markers_table(candidates: pd.DataFrame) -> Table:
    """Every step-marker family that matched: a user picks another with --step-marker."""
    table = Table(title="step markers found (the most steps wins, then the shortest)", title_justify="left")
    for column in ("", "marker", "steps", "median ms", "regex"):
        table.add_column(column, justify="right" if column in ("steps", "median ms") else "left")
    for r in candidates.itertuples(index=False):
        table.add_row("chosen" if r.chosen else "", Text(str(r.marker)), str(r.steps), f"{r.median_ms:.3f}",
                      Text(str(r.regex)))  # Text: a regex's [ ] are not rich markup
    return table
