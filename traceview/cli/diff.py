"""``traceview diff``: launches per step, latency and kernels of two runs, with optional expectations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from traceview.analyses.check import check_diff
from traceview.analyses.diff import diff_sides
from traceview.analyses.latency import DEFAULT_RESAMPLES, DEFAULT_SEED
from traceview.batch import expand_runs
from traceview.cli.app import app
from traceview.cli.check import RUN_HELP_NO_EXAMPLE, ExpectFileOpt, ExpectOpt, expectations, load_side, run_argument
from traceview.cli.common import engine_config
from traceview.cli.formats import REPORT_FORMATS, FormatOpt, output_format
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
)
from traceview.cli.output_formats import finish, render_diff
from traceview.cli.render import emit, stderr

RUN_HELP_BEFORE = f"{RUN_HELP_NO_EXAMPLE} Example: sample_traces/demo_eager_before.pt.trace.json.gz"
RUN_HELP_AFTER = f"{RUN_HELP_NO_EXAMPLE} Example: sample_traces/demo_eager_after.pt.trace.json.gz"


def _runs_option(flag: str, example: str) -> object:
    return typer.Option(flag, show_default=False,
                        help="More runs for this side, repeatable: a trace, a rank directory or a glob (each match "
                             f"one run). Steps are resampled within runs for the latency CI. Example: {flag} {example}")


def _side_runs(first: Path | None, more: list[str] | None, name: str) -> tuple[list[Path], str]:
    """The runs of one side and how reports name it: the paths and globs given, in order."""
    given = ([str(first)] if first is not None else []) + list(more or [])
    if not given:
        raise typer.BadParameter(f"give {name} as an argument or with --{name.lower()}", param_hint=name)
    return expand_runs(given), ", ".join(given)


def _label(flag: str, example: str) -> object:
    return typer.Option(flag, help=f"Name of this side in reports (default: file name). Example: {flag} {example}")


@app.command("diff")
def diff_command(
    before: Annotated[Optional[Path], run_argument("BEFORE", RUN_HELP_BEFORE)] = None,
    after: Annotated[Optional[Path], run_argument("AFTER", RUN_HELP_AFTER)] = None,
    more_before: Annotated[Optional[list[str]], _runs_option("--before", "base/run*/")] = None,
    more_after: Annotated[Optional[list[str]], _runs_option("--after", "'new/*.json.gz'")] = None,
    expect: ExpectOpt = None,
    expect_file: ExpectFileOpt = None,
    skip: SkipOpt = 0,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    label_before: Annotated[Optional[str], _label("--label-before", "main")] = None,
    label_after: Annotated[Optional[str], _label("--label-after", "bf16-gate")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Kernels to list whose count per step changed most. "
                                                          "Example: --top 20")] = 10,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples for the latency "
                                                                   "confidence interval. Example: --resamples 20000")]
    = DEFAULT_RESAMPLES,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap: the same traces and seed give the same "
                                                     "interval. Example: --seed 1")] = DEFAULT_SEED,
    frames_from: FramesFromOpt = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
) -> int:
    """Diff launches per step (by category and kernel), step latency and GPU time of BEFORE and AFTER.

    --expect numbers are deltas per step (after - before); an --expect-file may also hold values for the
    after side. Exit codes: 0 every expectation holds (or none given), 1 one failed, 2 bad input.

    Examples:
      traceview diff sample_traces/demo_eager_before.pt.trace.json.gz sample_traces/demo_eager_after.pt.trace.json.gz
      traceview diff before.json.gz after.json.gz --expect cast=-58 --expect fill=-54 --expect 'metadata=-1±0.5'
      traceview diff before_tp4/ after_tp4/ --expect-file deepseek_v32_decode --skip 3 --format junit -o diff.xml
      traceview diff 'base/*.json.gz' 'new/*.json.gz' --expect 'latency<0'   (several runs per side)
    """
    fmt = output_format(fmt, output, "diff", REPORT_FORMATS)
    wanted = expectations(expect, expect_file, rules, "delta")
    sides = []
    for (runs, shown), label, name in ((_side_runs(before, more_before, "BEFORE"), label_before, "before"),
                                       (_side_runs(after, more_after, "AFTER"), label_after, "after")):
        label = label or (name if len(runs) > 1 else None)  # several runs: no one file name fits
        sides.append(load_side(runs, label, skip, step_marker, rules, engine_config(tp_bin, strict), quiet, no_cache,
                               shown, frames_from))
    diff = diff_sides(*sides, resamples=resamples, seed=seed)
    result = check_diff(diff, wanted)
    emit(render_diff(diff, result, fmt, skip, top), output)
    if not quiet:
        for note in diff.source_notes:
            stderr.print(f"note: {note}", markup=False, highlight=False)
    return finish(result, diff.warnings, quiet, stderr)
