"""``traceview check``: assert per-step launch counts of runs (each a trace, or a directory of per-rank traces)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from traceview.analyses.budget import Limits
from traceview.analyses.check import RunCheck, check_runs, check_side
from traceview.analyses.expectations import Expectation, gather, known_names
from traceview.analyses.summary import Side, summarize_runs
from traceview.batch import BatchConfig, analyze_runs, expand_runs
from traceview.cli.app import app
from traceview.cli.common import analyze_run, engine_config
from traceview.cli.formats import REPORT_FORMATS, FormatOpt, output_format
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
from traceview.cli.output_formats import finish, finish_many, render_check, render_check_many
from traceview.cli.render import count_progress, emit, stderr
from traceview.engine import EngineConfig
from traceview.errors import TraceviewError
from traceview.model.categories import category_order, load_category_rules

# Options shared by `diff` and `check` only; the rest come from cli/options.py.
RUN_HELP_NO_EXAMPLE = "A trace file, or a directory of per-rank traces (counted per rank, then averaged)."
RUN_HELP = f"{RUN_HELP_NO_EXAMPLE} Example: sample_traces/demo_eager_after.pt.trace.json.gz"


def run_argument(metavar: str, help: str = RUN_HELP) -> typer.models.ArgumentInfo:
    return typer.Argument(metavar=metavar, show_default=False, help=help)


RunsArg = Annotated[list[Path], run_argument(
    "TRACE...", "Runs to check, each a trace file or a directory of per-rank traces (counted per rank, then "
                "averaged); a glob stands for every file or directory it matches, each one run. "
                "Example: 'nightly/*/trace.json.gz'")]
ExpectOpt = Annotated[Optional[list[str]], typer.Option(
    "--expect", "-e", help="CATEGORY OP NUMBER[±TOL], repeatable. OP: = <= >= < >. CATEGORY: a rules category, "
                           "total, graph_replayed, direct, step_ms, or (diff only) step_pct and latency: the "
                           "median step latency's bootstrap CI, e.g. 'latency<0', 'latency<=-2%'. "
                           "Example: --expect cast=-58 --expect 'metadata=-1+-0.5'", show_default=False)]
BudgetOpt = Annotated[Optional[Path], typer.Option(
    "--budget", help="TOML budget from traceview budget write: fail when an entry's launches per step grow "
                     "beyond --tolerance. Example: --budget launches.toml", show_default=False)]
ToleranceOpt = Annotated[Optional[str], typer.Option(
    "--tolerance", help="Growth a --budget entry may have: N launches per step, or P% of the entry. "
                        "Example: --tolerance 5%", show_default=False)]
ExpectFileOpt = Annotated[Optional[list[Path]], typer.Option(
    "--expect-file", help="TOML file of expect tables (docs/json-schema.md), or the name of a shipped one. "
                          "Example: --expect-file deepseek_v32_decode", show_default=False)]


def expectations(expect: list[str] | None, files: list[Path] | None, rules: Path | None,
                 field: str) -> list[Expectation]:
    """Parses --expect (read as ``field``) and --expect-file against the rules' categories, before any trace loads."""
    known = known_names(category_order(load_category_rules(rules)))
    return gather(expect or [], files or [], known, field)


def load_side(runs: list[Path], label: str | None, skip: int, step_marker: str | None, rules: Path | None,
              engine: EngineConfig, quiet: bool, no_cache: bool = False, shown_as: str | None = None,
              frames_from: list[str] | None = None) -> Side:
    """Counts each run (a trace, or each rank's trace in a directory) with a progress bar, then
    summarizes them as one side; ``shown_as`` is the path reports show (default: the one run's)."""
    counted = [analyze_run(run, step_marker, rules, engine, quiet, no_cache, frames_from) for run in runs]
    return summarize_runs(counted, skip, label, shown_as or str(runs[0]))


@app.command("check")
def check_command(
    traces: RunsArg,
    expect: ExpectOpt = None,
    expect_file: ExpectFileOpt = None,
    budget: BudgetOpt = None,
    tolerance: ToleranceOpt = None,
    skip: SkipOpt = 0,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    label: Annotated[Optional[str], typer.Option("--label", help="Name of the run in reports (default: file name; "
                                                                 "one run only). Example: --label nightly")] = None,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = "process",
    address: AddressOpt = None,
) -> int:
    """Check absolute launches per step of each TRACE against expectations; exit 1 if any fails.

    Each TRACE (after glob expansion) is one run: a trace file, or a directory of per-rank traces.
    Numbers are per-step means over the steps left after --skip (for a directory: averaged across ranks).
    Several runs are counted together in a pool of worker processes (or on Ray), then checked run by run.
    Exit codes: 0 every expectation holds in every run, 1 one failed (each failure is listed on stderr),
    2 bad input (any trace that cannot be read: nothing is written).

    Examples:
      traceview check sample_traces/demo_eager_after.pt.trace.json.gz --expect 'cast<=2' --expect fill=0 --skip 1
      traceview check after.pt.trace.json.gz --expect-file examples/launch-budget.toml --format junit -o check.xml
      traceview check 'nightly/*/' --expect 'total<=1030' --expect 'step_ms<=45' --skip 3 --jobs 8 --format markdown
    """
    fmt = output_format(fmt, output, "check", REPORT_FORMATS)
    wanted = expectations(expect, expect_file, rules, "value")
    limits = Limits.read(budget, tolerance, rules)  # before any trace loads: a bad budget exits 2 at once
    if not wanted and limits is None:
        raise TraceviewError(None, "check needs at least one --expect or --expect-file (or a --budget)")
    runs = expand_runs(traces)
    if len(runs) == 1:
        side = load_side(runs, label, skip, step_marker, rules, engine_config(tp_bin, strict), quiet, no_cache)
        result, notes = check_side(side, wanted), ()
        if limits is not None:  # the side keeps the counted traces of its one run
            result, notes = limits.apply(result, side.runs[0], skip)
        emit(render_check(side, result, fmt, skip), output)
        return finish(result, side.warnings + notes, quiet, stderr)
    if label is not None:
        raise typer.BadParameter(f"names one run, but {len(runs)} runs were given (each is named after its file)",
                                 param_hint="--label")
    batch = BatchConfig(step_marker, rules, engine_config(tp_bin, strict), use_cache=not no_cache)
    with count_progress(quiet, f"counting {len(runs)} runs") as on_progress:
        counted = analyze_runs(runs, jobs, executor, address, batch, on_progress)
    checks = check_runs(counted, wanted, skip)
    if limits is not None:
        applied = [limits.apply(run.result, counted[path], skip) for run, path in zip(checks, counted)]
        checks = [RunCheck(replace(run.side, warnings=run.side.warnings + notes), result)
                  for run, (result, notes) in zip(checks, applied)]
    emit(render_check_many(checks, fmt, skip), output)
    return finish_many(checks, quiet, stderr)
