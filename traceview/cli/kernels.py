"""``traceview kernels``: launches per step of each kernel name, with category and launching op."""

from __future__ import annotations

from typing import Annotated, Optional

import pandas as pd
import typer
from rich.table import Table

from traceview.cli.app import app
from traceview.cli.common import analyze_with_progress, engine_config
from traceview.cli.formats import FormatOpt, output_format
from traceview.cli.options import (
    FramesFromOpt,
    NoCacheOpt,
    OutputOpt,
    QuietOpt,
    RulesOpt,
    SkipOpt,
    StepMarkerOpt,
    StrictOpt,
    TpBinOpt,
    TraceArg,
)
from traceview.cli.render import cell_text, emit, stderr, write_frame


@app.command("kernels")
def kernels_command(
    trace: TraceArg,
    skip: SkipOpt = 0,
    category: Annotated[Optional[str], typer.Option("--category", "-c", help="Only this category. Example: -c cast")] = None,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
    frames_from: FramesFromOpt = None,
    by: Annotated[str, typer.Option("--by", help="kernel (name and dtype pair) or frame (the Python function that "
                                                 "launched them; traces recorded with_stack). Example: --by frame",
                                    callback=_known_grouping)] = "kernel",
) -> None:
    """Per kernel name (and dtype pair): launches per steady step, category, launching CPU op and API.

    Examples:
      traceview kernels sample_traces/demo_eager_before.pt.trace.json.gz -c cast
      traceview kernels trace.json.gz --skip 2 --format csv -o kernels.csv
      traceview kernels sample_traces/demo_stack_eager_before.pt.trace.json.gz --by frame --skip 1
    """
    fmt = output_format(fmt, output, "kernels")
    counts = analyze_with_progress(trace, step_marker, rules, engine_config(tp_bin, strict), quiet, no_cache,
                                   frames_from)
    kernels = counts.kernels(skip) if by == "kernel" else counts.by_frame(skip)  # raise when --skip leaves no step
    if by == "frame":
        notes = counts.frame_warnings()
        if frames_from and counts.python_frames and kernels["frame"].isna().all():
            notes.append(f"no Python frame is under --frames-from {' '.join(frames_from)}: frames look like "
                         "'vllm/model_executor/models/llama.py(120): forward' (the path as the profiler wrote it)")
        for note in notes:
            stderr.print(f"note: {counts.path}: {note}", markup=False, highlight=False)
    if category is not None:
        if category not in counts.categories:
            raise typer.BadParameter(f"unknown category {category!r}; one of {', '.join(counts.categories)}",
                                     param_hint="--category")
        kernels = kernels[kernels["category"] == category]
    if write_frame(kernels, fmt, output):
        return
    if by == "frame":
        emit([_frames_table(kernels, len(counts.steady_steps(skip)))], output)
        return
    table = Table(title=f"kernels per step over {len(counts.steady_steps(skip))} step(s)", title_justify="left")
    for column in ("category", "rule", "per step", "kernel", "dtypes", "launched by", "api"):
        table.add_column(column, justify="right" if column == "per step" else "left", overflow="fold")
    for r in kernels.itertuples(index=False):
        dtypes = f"{r.src_dtype}→{r.dst_dtype}" if cell_text(r.src_dtype) else ""
        launched_by = " under ".join(cell_text(v) for v in (r.op, r.annotation) if cell_text(v))
        table.add_row(str(r.category), cell_text(r.rule) or "-", f"{r.per_step:g}", str(r.kernel), dtypes, launched_by,
                      cell_text(r.launch_api))
    emit([table], output)


def _known_grouping(value: str) -> str:
    if value not in ("kernel", "frame"):
        raise typer.BadParameter(f"{value!r} is not one of kernel, frame")
    return value


def _frames_table(frames: pd.DataFrame, steps: int) -> Table:
    table = Table(title=f"launches per step by source frame over {steps} step(s)", title_justify="left")
    for column in ("category", "per step", "frame"):
        table.add_column(column, justify="right" if column == "per step" else "left", overflow="fold")
    for r in frames.itertuples(index=False):
        table.add_row(str(r.category), f"{r.per_step:g}", cell_text(r.frame) or "(none: graph replay or not recorded)")
    return table

