"""``traceview counts``: launches per step by category, for one trace or a directory of ranks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from traceview.analyses.summary import rank_disagreements, rank_names
from traceview.batch import BatchConfig, analyze_many, counts_frame, expand_paths
from traceview.cli.app import app
from traceview.cli.common import analyze_with_progress, engine_config
from traceview.cli.formats import FormatOpt, OutputFormat, output_format
from traceview.cli.options import (
    AddressOpt,
    ExecutorOpt,
    JobsOpt,
    NoCacheOpt,
    OutputOpt,
    QuietOpt,
    RulesOpt,
    SkipOpt,
    StepMarkerOpt,
    StrictOpt,
    TpBinOpt,
)
from traceview.cli.render import count_progress, emit, stderr, write_frame, write_output
from traceview.model.counts import LaunchCounts, counts_document


def _steps_table(counts: LaunchCounts, title: str) -> Table:
    per_step = counts.per_step()
    shown = [c for c in counts.categories if per_step[c].any()]
    table = Table(title=title, title_justify="left")
    for column in ["step", "name", "cpu ms", "gpu span ms", "gpu busy ms", "total", "graph", "direct", *shown]:
        table.add_column(column, justify="left" if column == "name" else "right")
    for row in counts.steps.itertuples(index=False):
        span_ms = "" if pd.isna(row.gpu_span_ns) else f"{int(row.gpu_span_ns) / 1e6:.3f}"
        table.add_row(str(row.step), str(row.name), f"{row.cpu_dur_ns / 1e6:.3f}", span_ms,
                      f"{row.gpu_busy_ns / 1e6:.3f}", str(row.launches),
                      str(row.graph_replayed), str(row.direct), *[str(per_step.at[row.step, c]) for c in shown])
    return table


def _summary_table(counts: LaunchCounts, skip: int) -> Table:
    summary = counts.summary(skip)
    steady = len(counts.steady_steps(skip))
    table = Table(title=f"per step over {steady} step(s){f' (skipped {skip})' if skip else ''}",
                  title_justify="left")
    for column in ("category", "mean", "median", "min", "max"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category, row in summary.iterrows():
        if row["max"] or category in ("total",):
            table.add_row(str(category), *(f"{row[k]:g}" for k in ("mean", "median", "min", "max")))
    return table


def _table_parts(label: str, counts: LaunchCounts, skip: int) -> list[RenderableType]:
    parts: list[RenderableType] = [
        Text.assemble((label, "bold"), f"  steps: {len(counts.steps)} ({counts.step_marker})"),
        _steps_table(counts, "launches per step"), _summary_table(counts, skip),
        Text("outside any step: " + ", ".join(f"{k}={v}" for k, v in counts.outside_steps().items()))]
    irregular = counts.irregular_steps(skip)
    if irregular:
        parts.append(Text(f"steps whose launch count differs from the most common one: {irregular}", style="yellow"))
    return parts


def _note_skipped(path: Path, reason: str) -> None:
    stderr.print(f"note: skipped {path}: {reason}", markup=False, highlight=False)


@app.command("counts")
def counts_command(
    traces: Annotated[list[Path], typer.Argument(
        help="Trace files, directories of per-rank traces, or globs; several are counted in parallel. "
             "Example: sample_traces/demo_eager_before.pt.trace.json.gz", metavar="TRACE...")],
    skip: SkipOpt = 0,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = "process",
    address: AddressOpt = None,
) -> None:
    """Count GPU launches per step and category (fill, cast, metadata, gemm, ...).

    Several traces (or a directory of per-rank traces) are counted in a pool of
    worker processes, each with its own trace processor, or on a Ray cluster.

    Examples:
      traceview counts sample_traces/demo_eager_before.pt.trace.json.gz --skip 1
      traceview counts traces/run42/ --format json -o counts.json
      traceview counts 'nightly/*/trace_tp*.json.gz' --jobs 8 --format csv -o all.csv
    """
    fmt = output_format(fmt, output, "counts")
    files = expand_paths(traces, on_skip=_note_skipped)
    labels = rank_names(files)  # e.g. rank0 of two runs: falls back to the paths
    if len(files) == 1:  # --jobs: the cores one trace's decoding and processors may use
        engine = replace(engine_config(tp_bin, strict), workers=jobs, shards=jobs)
        found = [analyze_with_progress(files[0], step_marker, rules, engine, quiet, no_cache)]
        labels = [str(files[0])]
    else:
        batch = BatchConfig(step_marker, rules, engine_config(tp_bin, strict), use_cache=not no_cache)
        with count_progress(quiet, "counting traces") as on_progress:
            found = list(analyze_many(files, jobs, executor, address, batch, on_progress).values())
    per_rank = dict(zip(labels, found))
    for counts in per_rank.values():
        counts.steady_steps(skip)  # raises when --skip leaves no step, before anything is printed
    one_run = len(traces) == 1 and traces[0].is_dir()
    notes = rank_disagreements(per_rank, skip) if one_run and len(per_rank) > 1 else []
    for counts in per_rank.values():
        for warning in counts.warnings:
            stderr.print(f"warning: {counts.path}: {warning}", markup=False, highlight=False)
    for note in notes:
        stderr.print(f"note: {note}", markup=False, highlight=False)
    if fmt is OutputFormat.json:
        docs = [counts_document(c, skip) for c in per_rank.values()]
        payload = docs[0] if len(docs) == 1 else {"schema": "traceview.counts-ranks/1",
                                                  "ranks": dict(zip(per_rank, docs)), "notes": notes}
        write_output(json.dumps(payload, indent=2), output)
    elif not write_frame(counts_frame(dict(zip(files, found))).drop(columns=["error"]), fmt, output):
        emit([part for label, counts in per_rank.items() for part in _table_parts(label, counts, skip)], output)
