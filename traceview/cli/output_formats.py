"""Renders diff and check results as a rich table, markdown (for a PR), JUnit XML (for CI), JSON or CSV.

Each result is first laid out as titled sections of rows (plain strings), so
the terminal table and the markdown show the same numbers; JSON comes from
``traceview.analyses.serialize``, CSV is a frame of the Python API (a diff's
per-category delta, a check's findings), and JUnit has one <testcase> per expectation.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pandas as pd
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from traceview.analyses.check import CheckResult, RunCheck, all_passed
from traceview.analyses.diff import DiffResult
from traceview.analyses.expectations import LATENCY_CI
from traceview.analyses.latency import METRIC_LABELS
from traceview.analyses.serialize import check_many_to_dict, check_to_dict, diff_to_dict
from traceview.analyses.summary import AGGREGATE_ROWS, Side
from traceview.cli import exit_codes
from traceview.cli.formats import OutputFormat
from traceview.cli.render import cell_text, md_cell


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)  # right-aligned columns
    # Long columns (kernel names): cut with … to fit a terminal, whole in a pipe, a file or markdown.
    long: set[int] = field(default_factory=set)


def num(value: float, signed: bool = False, digits: int = 2) -> str:
    """``58``, ``-1.5``, ``+2``; ``-`` for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("+0", "-0") else text


def _blank(value: object) -> str:
    text = cell_text(value)
    return "" if text == "nan" else text


def launched_by(row) -> str:
    """``aten::copy_ under <annotation>``, ``cudaGraphLaunch`` for a graph replay: the CPU side of a kernel row."""
    if not _blank(row.op):
        return _blank(row.launch_api) or "-"
    text = str(row.op)
    if _blank(row.annotation):
        text += f" under {row.annotation}"
    if _blank(row.launch_api) and row.launch_api not in ("cudaLaunchKernel", "hipLaunchKernel"):
        text += f" via {row.launch_api}"
    return text


def _kernel_section(diff: DiffResult, top: int) -> Section:
    section = Section("Kernels whose count per step changed most",
                      ["delta", diff.before.label, diff.after.label, "category", "kernel", "launched by"],
                      numeric={0, 1, 2}, long={4})
    for row in diff.changed_kernels(top).itertuples(index=False):
        dtypes = f"{row.src_dtype}->{row.dst_dtype} " if _blank(row.src_dtype) else ""
        section.rows.append([num(row.delta, signed=True), num(row.before_per_step), num(row.after_per_step),
                             str(row.category), dtypes + str(row.kernel).removeprefix("void "), launched_by(row)])
    return section


def _bound(row) -> str:
    """``<= -2%``, ``< 0 ms``, ``= -58 ± 0.5``: an expectation's operator, number, unit and tolerance."""
    unit = _blank(row.unit)
    unit = unit if unit == "%" else (f" {unit}" if unit else "")
    tol = f" \u00b1 {num(row.tolerance)}{unit}" if row.tolerance else ""
    return f"{row.op} {num(row.expected)}{unit}{tol}"


def _got(row) -> str:
    """The actual number of a finding; for latency, which end of the 95 % interval it is (or why none)."""
    if row.category != LATENCY_CI:
        return num(row.actual)
    if row.actual != row.actual:  # NaN: the verdict is "too few steps"
        return "no interval (too few steps for a verdict)"
    unit = "%" if row.unit == "%" else " ms"
    end = "upper" if row.op in ("<", "<=") else ("lower" if row.op in (">", ">=") else "farther")
    return f"{num(row.actual, signed=True, digits=3)}{unit}, the {end} end of the 95 % CI"


def _expectation_section(check: CheckResult, why: bool) -> Section | None:
    if check.findings.empty:
        return None
    section = Section("Expectations", ["", "expectation", "per step", "actual", "source"] + (["why"] if why else []),
                      numeric={3})
    for row in check.findings.itertuples(index=False):
        status = "skip" if row.skipped else ("ok" if row.ok else "FAIL")
        section.rows.append([status, f"{row.category} {_bound(row)}", str(row.field),
                             num(row.actual), str(row.expression)] + ([_blank(row.why)] if why else []))
    return section


def _side_rows(sides: list[Side]) -> Section:
    section = Section("Runs", ["", "path", "traces", "steps", "step ms (mean)", "step ms (median)", "GPU busy ms/step"],
                      numeric={2, 3, 4, 5, 6})
    for side in sides:
        section.rows.append([side.label, side.path, str(len(side.ranks)), str(side.steps),
                             num(side.step_ms_mean, digits=3), num(side.step_ms_median, digits=3),
                             num(side.gpu_busy_ms_mean, digits=3)])
    return section


def _latency_section(diff: DiffResult) -> Section:
    """Medians with the bootstrap 95 % interval of their change and the verdict; GPU busy time (summed
    kernel time, no interval) under them."""
    section = Section("Latency per step (median, bootstrap 95 % CI of the change)",
                      ["metric", diff.before.label, diff.after.label, "delta ms", "delta %", "95 % CI ms", "95 % CI %",
                       "verdict"],
                      numeric={1, 2, 3, 4})
    for v in diff.latencies:
        lead = " (leads)" if v.metric == diff.leading and len(diff.latencies) > 1 else ""
        section.rows.append([METRIC_LABELS[v.metric] + lead, num(v.before.median_ms, digits=3),
                             num(v.after.median_ms, digits=3), num(v.delta_ms, signed=True, digits=3),
                             num(v.delta_pct, signed=True),
                             f"[{num(v.ci95_ms[0], True, 3)}, {num(v.ci95_ms[1], True, 3)}]",
                             f"[{num(v.ci95_pct[0], True)}, {num(v.ci95_pct[1], True)}]", v.verdict])
    busy = diff.latency.set_index("metric").loc["gpu_busy_ms_mean"]
    section.rows.append(["GPU busy (mean)", num(busy["before"], digits=3), num(busy["after"], digits=3),
                         num(busy["delta"], signed=True, digits=3), num(busy["delta_pct"], signed=True), "", "", ""])
    return section


def _source_section(diff: DiffResult, per_category: int = 3) -> Section:
    """The frames behind each changed category, largest |delta| first (``per_category`` of them)."""
    section = Section("Where the changes come from (Python frame of the launch call)",
                      ["category", "frame", diff.before.label, diff.after.label, "delta"], numeric={2, 3, 4}, long={1})
    if diff.sources["frame"].isna().all():
        return section  # no frame anywhere: the warnings say why
    for row in diff.sources.groupby("category", sort=False, observed=True).head(per_category).itertuples(index=False):
        section.rows.append([str(row.category), _blank(row.frame) or "(no frame: graph replay or not recorded)",
                             num(row.before_per_step), num(row.after_per_step), num(row.delta, signed=True)])
    return section


def diff_sections(diff: DiffResult, check: CheckResult, top: int = 10, wide: bool = False) -> list[Section]:
    """Runs, launches per step by category, latency, biggest kernel changes, expectations.

    ``wide`` (markdown, JUnit): with the expectations' ``why``.
    """
    cats = Section("Launches per step", ["category", diff.before.label, diff.after.label, "delta"], numeric={1, 2, 3})
    for row in diff.categories.itertuples(index=False):
        if row.category in AGGREGATE_ROWS or row.before_mean or row.after_mean:
            cats.rows.append([str(row.category), num(row.before_mean), num(row.after_mean),
                              num(row.delta_mean, signed=True)])
    kern = _kernel_section(diff, top)
    sources = _source_section(diff)
    sections = [_side_rows([diff.before, diff.after]), cats, _latency_section(diff)] + \
        ([sources] if sources.rows else []) + ([kern] if kern.rows else [])
    expectations = _expectation_section(check, wide)
    return sections + ([expectations] if expectations else [])


def check_sections(side: Side, check: CheckResult, wide: bool = False) -> list[Section]:
    """Run, launches per step by category (mean, median, min, max), expectations."""
    cats = Section("Launches per step", ["category", "mean", "median", "min", "max"], numeric={1, 2, 3, 4})
    for name, row in side.categories.iterrows():
        if name in AGGREGATE_ROWS or row["max"]:
            cats.rows.append([str(name), num(row["mean"]), num(row["median"]), num(row["min"]), num(row["max"])])
    expectations = _expectation_section(check, wide)
    return [_side_rows([side]), cats] + ([expectations] if expectations else [])


def _verdict(check: CheckResult) -> str:
    if check.findings.empty:
        return "no expectations given"
    applied = check.findings[~check.findings["skipped"]]
    failed = int((~applied["ok"]).sum())
    return f"{len(applied) - failed}/{len(applied)} expectations hold" + (f", {failed} FAILED" if failed else "")


def render_table(title: str, sections: list[Section], check: CheckResult) -> list[RenderableType]:
    """Rich tables (one per section) between a title and the verdict."""
    out: list[RenderableType] = [Text(title, style="bold")]
    for section in sections:
        table = Table(*section.headers, title=section.title, title_justify="left", show_lines=False)
        for i in section.numeric:
            table.columns[i].justify = "right"
        for i in section.long:
            table.columns[i].overflow, table.columns[i].no_wrap = "ellipsis", True
        for row in section.rows:
            style = "red" if row and row[0] == "FAIL" else ("green" if row and row[0] == "ok" else None)
            table.add_row(*row, style=style)
        out.append(table)
    out.append(Text(_verdict(check), style="green" if check.passed else "bold red"))
    return out


def render_markdown(title: str, sections: list[Section], check: CheckResult, warnings: tuple[str, ...]) -> str:
    """GitHub-flavoured markdown, to paste into a PR."""
    icon = {"ok": "\u2705", "FAIL": "\u274c", "skip": "\u23ed"}
    lines = [f"### {title}", ""]
    for section in sections:
        lines += [f"**{section.title}**", "", "| " + " | ".join(md_cell(h) for h in section.headers) + " |",
                  "|" + "|".join("---:" if i in section.numeric else "---" for i in range(len(section.headers))) + "|"]
        for row in section.rows:
            cells = [icon.get(row[0], row[0]) if section.title == "Expectations" and i == 0 else md_cell(c)
                     for i, c in enumerate(row)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(("\u2705 " if check.passed else "\u274c ") + _verdict(check))
    if warnings:
        lines += ["", "<details><summary>Warnings</summary>", ""] + [f"- {md_cell(w)}" for w in warnings]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _junit_counts(findings: pd.DataFrame) -> dict[str, str]:
    failures = int((~findings["ok"]).sum())
    skipped = int(findings["skipped"].sum())
    return {"tests": str(len(findings)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}


def _junit_suite(root: ET.Element, suite: str, check: CheckResult, properties: dict[str, str], summary: str) -> None:
    """Appends one <testsuite> to ``root``: a <testcase> per expectation, <failure> or <skipped> as it went."""
    node = ET.SubElement(root, "testsuite", name=suite, **_junit_counts(check.findings))
    props = ET.SubElement(node, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=key, value=value)
    for row in check.findings.itertuples(index=False):
        name = f"{row.category} {_bound(row)} ({row.field} per step)"
        case = ET.SubElement(node, "testcase", classname=f"{suite.split(':')[0]}.{row.category}", name=name)
        if row.skipped:
            ET.SubElement(case, "skipped", message=f"{row.field} expectations need two traces (traceview diff)")
        elif not row.ok:
            failure = ET.SubElement(case, "failure", type="ExpectationFailed",
                                    message=f"{row.category}: expected {row.field} {_bound(row)}"
                                            f" per step, got {_got(row)}")
            failure.text = f"{row.expression}" + (f"\n{row.why}" if _blank(row.why) else "")
    ET.SubElement(node, "system-out").text = summary


def xml_text(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_junit(suite: str, check: CheckResult, properties: dict[str, str], summary: str) -> str:
    """JUnit XML: one <testcase> per expectation, a <failure> when it fails, <skipped> when it does not apply."""
    root = ET.Element("testsuites", name="traceview", **_junit_counts(check.findings))
    _junit_suite(root, suite, check, properties, summary)
    return xml_text(root)


def render_junit_suites(suites: list[tuple[str, CheckResult, dict[str, str], str]]) -> str:
    """JUnit XML with one <testsuite> per (name, check, properties, summary); <testsuites> holds the totals."""
    findings = pd.concat([check.findings for _, check, _, _ in suites], ignore_index=True)
    root = ET.Element("testsuites", name="traceview", **_junit_counts(findings))
    for suite, check, properties, summary in suites:
        _junit_suite(root, suite, check, properties, summary)
    return xml_text(root)


def failure_lines(check: CheckResult) -> list[str]:
    """One line per failed expectation, naming the category (for stderr)."""
    out = []
    for row in check.failures.itertuples(index=False):
        out.append(f"FAILED {row.category}: expected {row.field} {_bound(row)} per step, "
                   f"got {_got(row)} ({row.expression})")
    return out


def render_diff(diff: DiffResult, check: CheckResult, fmt: OutputFormat, skip: int,
                top: int = 10) -> str | list[RenderableType]:
    """The diff in ``fmt``: rich renderables for ``table``, text otherwise."""
    title = f"traceview diff: {diff.before.label} \u2192 {diff.after.label}"
    if fmt is OutputFormat.json:
        return json.dumps(diff_to_dict(diff, check, skip), indent=2)
    if fmt is OutputFormat.csv:  # DiffResult.categories, as a notebook sees it
        return diff.categories.to_csv(index=False)
    sections = diff_sections(diff, check, top, wide=fmt is not OutputFormat.table)
    if fmt is OutputFormat.markdown:
        return render_markdown(title, sections, check, diff.warnings)
    if fmt is OutputFormat.junit:
        props = {"before": diff.before.path, "after": diff.after.path, "skip": str(skip)}
        summary = render_markdown(title, sections, check, diff.warnings)
        return render_junit(f"traceview.diff: {diff.before.label} -> {diff.after.label}", check, props, summary)
    return render_table(title, sections, check)


def render_check(side: Side, check: CheckResult, fmt: OutputFormat, skip: int) -> str | list[RenderableType]:
    """The check in ``fmt``: rich renderables for ``table``, text otherwise."""
    title = f"traceview check: {side.label}"
    if fmt is OutputFormat.json:
        return json.dumps(check_to_dict(side, check, skip), indent=2)
    if fmt is OutputFormat.csv:
        return _findings_frame([(side, check)]).to_csv(index=False)
    sections = check_sections(side, check, wide=fmt is not OutputFormat.table)
    if fmt is OutputFormat.markdown:
        return render_markdown(title, sections, check, side.warnings)
    if fmt is OutputFormat.junit:
        summary = render_markdown(title, sections, check, side.warnings)
        return render_junit(f"traceview.check: {side.label}", check, {"trace": side.path, "skip": str(skip)},
                            summary)
    return render_table(title, sections, check)


def _findings_frame(checked: list[tuple[Side, CheckResult]]) -> pd.DataFrame:
    """What check decided, one row per (run, expectation or budget entry): CheckResult.findings with
    the run's label first, so a CSV holds the verdict and not only the counts."""
    frames = [check.findings.assign(run=side.label) for side, check in checked]
    out = pd.concat(frames, ignore_index=True)
    return out[["run", *[c for c in out.columns if c != "run"]]]


def _runs_verdict(checks: list[RunCheck]) -> str:
    failed = [run.side.label for run in checks if not run.result.passed]
    if not failed:
        return f"{len(checks)} runs: every expectation holds in every run"
    return f"{len(checks)} runs: {len(checks) - len(failed)} passed, {len(failed)} FAILED ({', '.join(failed)})"


def render_check_many(checks: list[RunCheck], fmt: OutputFormat, skip: int) -> str | list[RenderableType]:
    """Several checked runs in ``fmt``: each run as ``render_check`` lays it out, then one overall verdict.

    JSON is ``traceview.check-many/2``; JUnit has one <testsuite> per run.
    """
    if fmt is OutputFormat.json:
        return json.dumps(check_many_to_dict(checks, skip), indent=2)
    if fmt is OutputFormat.csv:
        return _findings_frame([(run.side, run.result) for run in checks]).to_csv(index=False)
    if fmt is OutputFormat.junit:
        return render_junit_suites([(f"traceview.check: {run.side.label}", run.result,
                                     {"trace": run.side.path, "skip": str(skip)},
                                     render_check(run.side, run.result, OutputFormat.markdown, skip))
                                    for run in checks])
    verdict = _runs_verdict(checks)
    if fmt is OutputFormat.markdown:
        icon = "\u2705 " if all_passed(checks) else "\u274c "
        parts = [f"## traceview check: {len(checks)} runs", "", icon + verdict, ""]
        return "\n".join(parts + [render_check(run.side, run.result, fmt, skip) for run in checks])
    out: list[RenderableType] = []
    for run in checks:
        out += render_check(run.side, run.result, fmt, skip) + [Text("")]
    return out + [Text(verdict, style="green" if all_passed(checks) else "bold red")]


def finish(check: CheckResult, warnings: tuple[str, ...], quiet: bool, err: Console) -> int:
    """Warnings and failed expectations on stderr; returns the exit code (0 passed, 1 failed)."""
    if not quiet:
        for warning in warnings:
            err.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)
    for line in failure_lines(check):
        err.print(line, style="red", markup=False, highlight=False)
    return exit_codes.OK if check.passed else exit_codes.EXPECTATION_FAILED


def finish_many(checks: list[RunCheck], quiet: bool, err: Console) -> int:
    """``finish`` for several runs: each warning and failure line starts with its run's label."""
    for run in checks:
        if not quiet:
            for warning in run.side.warnings:
                err.print(f"warning: {run.side.label}: {warning}", style="yellow", markup=False, highlight=False)
        for line in failure_lines(run.result):
            err.print(f"{run.side.label}: {line}", style="red", markup=False, highlight=False)
    return exit_codes.OK if all_passed(checks) else exit_codes.EXPECTATION_FAILED
