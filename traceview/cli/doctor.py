"""``traceview doctor``: one line per check of each trace (PASS / WARN / FAIL), then a verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.text import Text

from traceview.analyses.doctor import FAIL, PASS, WARN, Finding, Verdict, examine, verdict
from traceview.batch import expand_runs
from traceview.cli import exit_codes
from traceview.cli.app import app
from traceview.cli.common import engine_config
from traceview.cli.formats import FormatOpt, OutputFormat, output_format
from traceview.cli.options import OutputOpt, QuietOpt, RulesOpt, SkipOpt, StepMarkerOpt, TpBinOpt
from traceview.cli.output_formats import xml_text
from traceview.cli.render import emit, load_progress, md_cell

DOCTOR_SCHEMA = "traceview.doctor/1"
FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.markdown, OutputFormat.junit)
_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red"}
_ICON = {PASS: "\u2705", WARN: "\u26a0\ufe0f", FAIL: "\u274c"}


def _by_trace(findings: list[Finding]) -> dict[str, list[Finding]]:
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.trace, []).append(finding)
    return groups


def _line(finding: Finding) -> str:
    fix = f" \u2014 fix: {finding.fix}" if finding.fix and finding.status != PASS else ""
    return f"{finding.status} {finding.check}: {finding.summary}{fix}"


def document(findings: list[Finding], result: Verdict, skip: int) -> dict:
    """The ``traceview.doctor/1`` JSON document (docs/json-schema.md)."""
    return {"schema": DOCTOR_SCHEMA, "skip": skip,
            "findings": [{"trace": f.trace, "check": f.check, "status": f.status, "summary": f.summary,
                          "fix": f.fix or None, "numbers": f.numbers} for f in findings],
            "verdict": {"status": result.status, "summary": result.summary}, "ok": result.status != FAIL}


def _junit(findings: list[Finding], result: Verdict) -> str:
    """One <testsuite> per trace, one <testcase> per check: FAIL is a <failure>; WARN passes, said in <system-out>."""
    failures = sum(f.status == FAIL for f in findings)
    root = ET.Element("testsuites", name="traceview.doctor", tests=str(len(findings)), failures=str(failures))
    for trace, group in _by_trace(findings).items():
        suite = ET.SubElement(root, "testsuite", name=f"traceview.doctor: {trace}", tests=str(len(group)),
                              failures=str(sum(f.status == FAIL for f in group)), errors="0", skipped="0")
        for finding in group:
            case = ET.SubElement(suite, "testcase", classname=f"traceview.doctor.{finding.check}", name=finding.check)
            if finding.status == FAIL:
                ET.SubElement(case, "failure", type="DoctorFailed", message=finding.summary).text = finding.fix
            else:
                fix = f"\nfix: {finding.fix}" if finding.fix else ""
                ET.SubElement(case, "system-out").text = f"{finding.status}: {finding.summary}{fix}"
    return xml_text(root)


def _markdown(findings: list[Finding], result: Verdict) -> str:
    lines = ["### traceview doctor", ""]
    for trace, group in _by_trace(findings).items():
        lines += [f"**{trace}**", "", "| | check | finding | fix |", "|---|---|---|---|"]
        for f in group:
            cells = [_ICON[f.status] + " " + f.status, f.check, f.summary, f.fix if f.status != PASS else ""]
            lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines + [f"{_ICON[result.status]} **{result.status}**: {result.summary}"]) + "\n"


def render(findings: list[Finding], result: Verdict, fmt: OutputFormat, skip: int) -> str | list[RenderableType]:
    """The findings in ``fmt``: rich renderables for ``table``, text otherwise."""
    if fmt is OutputFormat.json:
        return json.dumps(document(findings, result, skip), indent=2)
    if fmt is OutputFormat.junit:
        return _junit(findings, result)
    if fmt is OutputFormat.markdown:
        return _markdown(findings, result)
    if fmt is OutputFormat.csv:
        import pandas as pd

        rows = [{"trace": f.trace, "check": f.check, "status": f.status, "summary": f.summary, "fix": f.fix}
                for f in findings]
        return pd.DataFrame(rows, columns=["trace", "check", "status", "summary", "fix"]).to_csv(index=False)
    out: list[RenderableType] = []
    for trace, group in _by_trace(findings).items():
        out.append(Text(trace, style="bold"))
        out += [Text("  " + _line(f), style=_STYLE[f.status]) for f in group]
    return out + [Text(f"verdict: {result.status}: {result.summary}", style=_STYLE[result.status])]


@app.command("doctor")
def doctor_command(
    traces: Annotated[list[Path], typer.Argument(
        metavar="TRACE|DIR...", show_default=False,
        help="Traces to examine: files, directories of per-rank traces, or globs. "
             "Example: sample_traces/demo_eager_before.pt.trace.json.gz")],
    skip: SkipOpt = 0,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    tp_bin: TpBinOpt = None,
    quiet: QuietOpt = False,
) -> int:
    """Check that each trace is fit for counting launches per step, and say how to fix what is not.

    One line per check (events imported, GPU activity, launch calls and GPU events paired, copy dtypes,
    Python frames, graph replays, step markers, irregular steps, timestamps, profiler window; ranks of a
    directory), PASS, WARN or FAIL, then a verdict. Exit codes: 0 fit (warnings allowed), 1 a FAIL makes
    the counts unreliable, 2 bad input (nothing is written).

    Examples:
      traceview doctor sample_traces/demo_eager_before.pt.trace.json.gz
      traceview doctor traces/ --skip 1 --format junit -o doctor.xml
      traceview doctor 'nightly/*.pt.trace.json.gz' --format markdown
    """
    fmt = output_format(fmt, output, "doctor", FORMATS)
    engine = engine_config(tp_bin)
    findings: list[Finding] = []
    for run in expand_runs(traces):
        findings += examine(run, skip, step_marker, rules, engine,
                            lambda file: load_progress(quiet, f"loading {file.name}"))
    result = verdict(findings)
    emit(render(findings, result, fmt, skip), output)
    return exit_codes.EXPECTATION_FAILED if result.status == FAIL else exit_codes.OK

