"""``traceview report``: one self-contained HTML page of a diff (BEFORE AFTER) or of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from traceview.analyses.check import CheckResult, check_diff, check_side
from traceview.analyses.diff import diff_sides
from traceview.analyses.summary import summarize
from traceview.cli.app import app
from traceview.cli.check import ExpectFileOpt, ExpectOpt, expectations
from traceview.cli.common import analyze_run, engine_config
from traceview.cli.options import NoCacheOpt, QuietOpt, RulesOpt, SkipOpt, StepMarkerOpt, StrictOpt, TpBinOpt
from traceview.cli.output_formats import finish
from traceview.cli.render import stderr, write_output
from traceview.errors import TraceviewError
from traceview.report import ReportOptions, diff_report, trace_report

RunsArg = Annotated[list[Path], typer.Argument(
    help="BEFORE AFTER for a diff, or one run for its counts; each a trace file or a directory of per-rank traces. "
         "Example: sample_traces/demo_eager_before.pt.trace.json.gz sample_traces/demo_eager_after.pt.trace.json.gz",
    show_default=False, metavar="TRACE")]
HtmlOutOpt = Annotated[Path, typer.Option("--output", "-o", help="HTML file to write (atomically). "
                                                                 "Example: -o report.html", show_default=False)]


def _label(flag: str, what: str) -> object:
    return typer.Option(flag, help=f"Name of {what} in the report (default: file name). Example: {flag} eager",
                        show_default=False)


def _check_output(output: Path) -> None:
    # Fail before minutes of trace loading, not after.
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise TraceviewError(output, "output directory does not exist")
    if output.is_dir():
        raise TraceviewError(output, "is a directory; give a file name, e.g. -o report.html")
    if output.suffix.lower() not in (".html", ".htm"):  # the one -o rule: the name says what is in the file
        raise typer.BadParameter(f"report writes one HTML page: name it .html, not {output.name!r} (JSON, CSV, "
                                 "Markdown and JUnit come from traceview diff and check)", param_hint="--output")


@app.command("report")
def report_command(
    runs: RunsArg,
    output: HtmlOutOpt,
    expect: ExpectOpt = None,
    expect_file: ExpectFileOpt = None,
    skip: SkipOpt = 0,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    label: Annotated[Optional[str], _label("--label", "the run (one-run form)")] = None,
    label_before: Annotated[Optional[str], _label("--label-before", "BEFORE")] = None,
    label_after: Annotated[Optional[str], _label("--label-after", "AFTER")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Kernels listed and plotted. Example: --top 40")] = 25,
    tp_bin: TpBinOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
) -> int:
    """Write one self-contained HTML page (tables, expectations, plotly figures) of BEFORE vs AFTER, or of one run.

    With two runs, --expect numbers are deltas per step (after - before), as in `traceview diff`; with one run
    they are values, as in `traceview check`. The report is written even when an expectation fails.
    Exit codes: 0 written and every expectation holds, 1 written and one failed, 2 bad input (nothing written).

    Examples:
      traceview report sample_traces/demo_eager_before.pt.trace.json.gz sample_traces/demo_eager_after.pt.trace.json.gz -o report.html
      traceview report before.json.gz after.json.gz --expect cast=-58 --expect 'fill<=-50' --skip 3 -o pr.html
      traceview report sample_traces/demo_eager_after.pt.trace.json.gz -o after.html
    """
    if len(runs) not in (1, 2):
        raise typer.BadParameter(f"give one run or BEFORE AFTER, got {len(runs)} paths", param_hint="RUNS")
    if len(runs) == 1 and (label_before or label_after):
        raise typer.BadParameter("--label-before/--label-after need BEFORE AFTER; use --label", param_hint="--label")
    if len(runs) == 2 and label:
        raise typer.BadParameter("--label names a single run; use --label-before/--label-after", param_hint="--label")
    _check_output(output)
    options = ReportOptions(skip=skip, top_kernels=top, rules=str(rules) if rules else "packaged categories.toml")
    if len(runs) == 1:
        wanted = expectations(expect, expect_file, rules, "value")
        counts = analyze_run(runs[0], step_marker, rules, engine_config(tp_bin, strict), quiet, no_cache)
        side = summarize(counts, skip, label, str(runs[0]))
        result = check_side(side, wanted)
        html, warnings = trace_report(side, counts, result.findings, options), side.warnings
    else:
        wanted = expectations(expect, expect_file, rules, "delta")
        before, after = (analyze_run(p, step_marker, rules, engine_config(tp_bin, strict), quiet, no_cache) for p in runs)
        diff = diff_sides(summarize(before, skip, label_before, str(runs[0])),
                          summarize(after, skip, label_after, str(runs[1])))
        result = check_diff(diff, wanted)
        html, warnings = diff_report(diff, before, after, result.findings, options), diff.warnings
    write_output(html, output)
    return _done(result, warnings, output, quiet)


def _done(result: CheckResult, warnings: tuple[str, ...], output: Path, quiet: bool) -> int:
    code = finish(result, warnings, quiet, stderr)
    if not quiet:
        stderr.print(f"wrote {output}", markup=False, highlight=False)
    return code
