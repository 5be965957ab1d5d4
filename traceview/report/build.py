"""The HTML report: one self-contained page of tables and plotly figures.

``diff_report`` renders a before/after diff, ``trace_report`` one trace. Both
return the page as a string (plotly.js inlined once, no network access); the
CLI writes it. Numbers come from the same functions the other commands and a
notebook use (``diff_counts``, ``summarize``, ``plots``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

import traceview
from traceview import plots
from traceview.analyses.diff import DiffResult
from traceview.analyses.latency import METRIC_LABELS
from traceview.analyses.sources import frame_kernel_deltas
from traceview.analyses.summary import AGGREGATE_ROWS, Side
from traceview.model.counts import LaunchCounts
from traceview.report.tables import Column, card, html_table, meta_table, number
from traceview.report.template import CSS, PAGE, RESIZE_JS

_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


@dataclass(frozen=True)
class ReportOptions:
    """What the page shows. ``skip``: warm-up steps dropped (shaded in per-step figures);
    ``top_kernels``: rows of the kernel tables and bars of the kernel figure;
    ``heatmap_rows``: kernels in each kernel x step heatmap; ``rules``: shown in the header."""

    skip: int = 0
    top_kernels: int = 25
    heatmap_rows: int = 30
    rules: str = "packaged categories.toml"
    title: str | None = None


@dataclass(frozen=True)
class Section:
    anchor: str
    heading: str
    html: str


def figure_html(fig: go.Figure, div_id: str) -> str:
    """One figure as a ``<div class="figure">`` without plotly.js (the page carries it once)."""
    height = fig.layout.height or 420
    return ('<div class="figure">' + fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                                 config=_PLOT_CONFIG, default_height=f"{height}px")
            + "</div>")


def _page(title: str, subtitle: str, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.heading)}</a>' for s in sections)
    body = "\n".join(f'<section id="{s.anchor}"><h2>{escape(s.heading)}</h2>{s.html}</section>' for s in sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return PAGE.substitute(title=escape(title), subtitle=subtitle, nav=nav, body=body, css=CSS,
                           plotlyjs=get_plotlyjs(), resize_js=RESIZE_JS, version=traceview.__version__,
                           generated=generated)


def expectations_section(findings: pd.DataFrame) -> Section:
    """Verdict banner and one row per expectation (FINDING_COLUMNS of analyses.expectations)."""
    failed = int((~findings["ok"]).sum())
    skipped = int(findings["skipped"].sum())
    checked = len(findings) - skipped
    if failed:
        verdict = f'<div class="verdict bad">{failed} of {checked} expectation(s) failed</div>'
    else:
        verdict = f'<div class="verdict ok">All {checked} expectation(s) hold</div>'
    if skipped:
        verdict += f'<p class="note">{skipped} expectation(s) do not apply here and were skipped.</p>'
    rows = findings.assign(
        result=[('<span class="badge skip">skipped</span>' if s else
                 '<span class="badge ok">pass</span>' if ok else '<span class="badge bad">FAIL</span>')
                for ok, s in zip(findings["ok"], findings["skipped"])],
        expectation=[f"{c} {op} {number(e, 4)}" + (f" ± {number(t, 4)}" if t else "")
                     for c, op, e, t in zip(findings["category"], findings["op"], findings["expected"],
                                            findings["tolerance"])])
    columns = [Column("result", "result", "badge"), Column("expectation", "expectation"),
               Column("field", "on"), Column("actual", "actual", "num", 4), Column("why", "why"),
               Column("expression", "from")]
    return Section("expectations", "Expectations", verdict + html_table(rows, columns))


def _change(before: float, after: float, digits: int = 2, unit: str = "") -> str:
    """``+12.5 ms (+3.1%)`` coloured by sign (HTML from numbers only)."""
    delta = after - before
    pct = f" ({number(delta / before * 100, 1, sign=True)}%)" if before else ""
    tone = "neg" if delta < 0 else "pos" if delta > 0 else "muted"
    return f'<span class="{tone}">{number(delta, digits, sign=True)}{unit}{pct}</span>'


def _expectation_card(findings: pd.DataFrame | None) -> str:
    if findings is None or not len(findings):
        return ""
    checked = int((~findings["skipped"]).sum())
    failed = int((~findings["ok"]).sum())
    if failed:
        return card("expectations", f"{failed} of {checked} failed", '<a href="#expectations">details</a>', "bad")
    return card("expectations", f"all {checked} hold", '<a href="#expectations">details</a>', "ok")


def _diff_cards(diff: DiffResult, findings: pd.DataFrame | None) -> str:
    total = diff.categories.set_index("category").loc["total"]
    lat = diff.latency.set_index("metric")
    step, gpu = lat.loc["step_ms_mean"], lat.loc["gpu_busy_ms_mean"]
    cards = [card("launches per step", f"{number(total['before_mean'])} → {number(total['after_mean'])}",
                  _change(total["before_mean"], total["after_mean"])),
             _latency_card(diff) or card("step time, mean (CPU)",
                                         f"{number(step['before'], 3)} → {number(step['after'], 3)} ms",
                                         _change(step["before"], step["after"], 3, " ms")),
             card("GPU busy time per step", f"{number(gpu['before'], 3)} → {number(gpu['after'], 3)} ms",
                  _change(gpu["before"], gpu["after"], 3, " ms")),
             _expectation_card(findings)]
    return f'<div class="cards">{"".join(cards)}</div>'


def _latency_card(diff: DiffResult) -> str:
    """The leading metric's median change and verdict; "" when no step latencies were kept."""
    verdict = diff.latency_verdict
    if verdict is None:
        return ""
    tone = {"faster": "ok", "slower": "bad"}.get(verdict.verdict, "")
    lo, hi = verdict.ci95_ms
    return card(f"step latency, median ({METRIC_LABELS[verdict.metric]})",
                f"{number(verdict.before.median_ms, 3)} → {number(verdict.after.median_ms, 3)} ms",
                f'{escape(verdict.verdict)}: 95 % CI [{number(lo, 3, True)}, {number(hi, 3, True)}] ms '
                f'<a href="#latency">details</a>', tone)


def _aggregate_row(row: pd.Series) -> str:
    return "aggregate" if row["category"] in AGGREGATE_ROWS else ""


def _shown_categories(frame: pd.DataFrame, value_columns: list[str]) -> pd.DataFrame:
    """Categories with any launch on any side, then ``total`` (and graph/direct when graphs were replayed)."""
    values = frame[value_columns].abs().sum(axis=1)
    used = frame[(values > 0) & ~frame["category"].isin(AGGREGATE_ROWS)]
    aggregates = frame[frame["category"] == "total"]
    graph = frame[frame["category"] == "graph_replayed"]
    if len(graph) and float(graph[value_columns].abs().to_numpy().sum()) > 0:
        aggregates = frame[frame["category"].isin(AGGREGATE_ROWS)]
    return pd.concat([used, aggregates])


def _warnings_section(warnings: Sequence[str]) -> Section | None:
    if not warnings:
        return None
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return Section("warnings", "Warnings", f'<ul class="warnings">{items}</ul>')


def _side_meta(label: str, side: Side, counts: Sequence[LaunchCounts]) -> tuple[str, str]:
    total = len(counts[0].steps)
    ranks = f", {len(counts)} ranks (figures show rank 0)" if len(counts) > 1 else ""
    return label, (f"{side.path}: {side.steps} steady step(s) of {total}, marker {counts[0].step_marker} "
                   f"({counts[0].step_regex or 'whole trace'}){ranks}")


def _per_trace_figures(label: str, counts: LaunchCounts, options: ReportOptions, key: str) -> list[str]:
    per_step = plots.launches_per_step(counts, options.skip, label)
    heat = plots.kernel_step_heatmap(counts, options.heatmap_rows, label)
    return [figure_html(per_step, f"fig-per-step-{key}"), figure_html(heat, f"fig-heatmap-{key}")]


def _diff_category_table(diff: DiffResult) -> str:
    frame = _shown_categories(diff.categories, ["before_mean", "after_mean", "before_median", "after_median"])
    b, a = escape(diff.before.label), escape(diff.after.label)
    columns = [Column("category", "category"), Column("before_mean", f"{b} mean", "num"),
               Column("after_mean", f"{a} mean", "num"), Column("delta_mean", "Δ mean", "delta"),
               Column("before_median", f"{b} median", "num"), Column("after_median", f"{a} median", "num"),
               Column("delta_median", "Δ median", "delta")]
    return html_table(frame, columns, row_class=_aggregate_row)


def _latency_table(latency: pd.DataFrame, before: str, after: str) -> str:
    names = {"step_ms_mean": "step time, mean (ms, CPU)", "step_ms_median": "step time, median (ms, CPU)",
             "gpu_busy_ms_mean": "GPU busy time per step, mean (ms)"}
    frame = latency.assign(metric=latency["metric"].map(lambda m: names.get(m, m)))
    columns = [Column("metric", "metric"), Column("before", before, "num", 3), Column("after", after, "num", 3),
               Column("delta", "Δ", "delta", 3), Column("delta_pct", "Δ %", "pct", 1)]
    return html_table(frame, columns)


def _verdict_table(diff: DiffResult) -> str:
    """The median change with its bootstrap 95 % interval and verdict, per metric (as the CLI shows it)."""
    if not diff.latencies:
        return ""
    rows = pd.DataFrame([{"metric": METRIC_LABELS[v.metric] + (" (leads)" if v.metric == diff.leading else ""),
                          "before": v.before.median_ms, "after": v.after.median_ms, "delta": v.delta_ms,
                          "delta_pct": v.delta_pct, "lo": v.ci95_ms[0], "hi": v.ci95_ms[1], "lo_pct": v.ci95_pct[0],
                          "hi_pct": v.ci95_pct[1], "verdict": v.verdict}
                         for v in diff.latencies])
    columns = [Column("metric", "median per step"), Column("before", diff.before.label, "num", 3),
               Column("after", diff.after.label, "num", 3), Column("delta", "Δ ms", "delta", 3),
               Column("delta_pct", "Δ %", "pct", 1), Column("lo", "95 % CI low", "delta", 3),
               Column("hi", "95 % CI high", "delta", 3), Column("lo_pct", "CI low %", "pct", 1),
               Column("hi_pct", "CI high %", "pct", 1), Column("verdict", "verdict")]
    first = diff.latencies[0]
    note = (f'<p class="note">Bootstrap 95 % confidence interval of the change of the median: {first.resamples:,} '
            f'resamples, seed {first.seed}, steps resampled within resampled runs ({first.before.runs} before, '
            f'{first.after.runs} after). "faster"/"slower" only when the whole interval is below/above 0.</p>')
    return note + html_table(rows, columns)


NO_FRAME = "(no frame: graph replay or not recorded)"


def _frame_cell(frame: str | None, kernels: pd.DataFrame) -> str:
    """A frame that unfolds into the kernels it launched, each with its change (HTML)."""
    name = f"<code>{escape(frame if frame is not None else NO_FRAME)}</code>"
    if kernels.empty:
        return name
    columns = [Column("kernel", "kernel", "kernel"), Column("before_per_step", "before", "num"),
               Column("after_per_step", "after", "num"), Column("delta", "Δ per step", "delta")]
    count = f"{len(kernels)} kernel{'s' if len(kernels) != 1 else ''}"
    return (f'<details class="frame"><summary>{name} <span class="muted">· {count}</span></summary>'
            f"{html_table(kernels, columns, 'inner')}</details>")


def _sources_table(diff: DiffResult, before: Sequence[LaunchCounts], after: Sequence[LaunchCounts],
                   skip: int) -> str:
    """Each changed category's delta by the Python frame that launched it; each frame unfolds into the
    kernels behind its change."""
    kernels = frame_kernel_deltas(before, after, skip)
    key = kernels["frame"].fillna(NO_FRAME)
    cells = [_frame_cell(None if pd.isna(f) else str(f),
                         kernels[(kernels["category"] == c) & (key == (NO_FRAME if pd.isna(f) else f))])
             for c, f in zip(diff.sources["category"], diff.sources["frame"])]
    frame = diff.sources.assign(frame_html=cells)
    columns = [Column("category", "category"),
               Column("frame_html", "Python frame (file(first line): function)", "badge"),
               Column("before_per_step", diff.before.label, "num"), Column("after_per_step", diff.after.label, "num"),
               Column("delta", "Δ per step", "delta")]
    return ('<p class="note">The innermost user-code Python frame of each launch call (recorded with_stack), '
            'largest change first, covering at least 95 % of each category\'s change. Click a frame for the '
            'kernels whose launches it changed; all changed kernels are under '
            '<a href="#kernels">Changed kernels</a>.</p>' + html_table(frame, columns))


def _dtypes(kernels: pd.DataFrame) -> list[str]:
    """``bfloat16 → float32`` per kernel row ("" where the launching op recorded no dtypes)."""
    return [f"{s} → {d}" if s or d else "" for s, d in
            zip(kernels["src_dtype"].fillna(""), kernels["dst_dtype"].fillna(""))]


def _diff_kernel_table(diff: DiffResult, top: int) -> str:
    changed = diff.changed_kernels(top)
    if changed.empty:
        return '<p class="note">No kernel changed its launches per step.</p>'
    frame = changed.assign(dtypes=_dtypes(changed))
    columns = [Column("change", "change"), Column("category", "category"), Column("kernel", "kernel", "kernel"),
               Column("dtypes", "dtypes", "nowrap"), Column("op", "op"),
               Column("before_per_step", diff.before.label, "num"), Column("after_per_step", diff.after.label, "num"),
               Column("delta", "Δ per step", "delta")]
    total = int((diff.kernels["change"] != "same").sum())
    note = f'<p class="note">{len(frame)} of {total} changed kernel rows, largest change first.</p>'
    return note + html_table(frame, columns)


def diff_report(diff: DiffResult, before: Sequence[LaunchCounts], after: Sequence[LaunchCounts],
                findings: pd.DataFrame | None = None, options: ReportOptions = ReportOptions()) -> str:
    """The before/after page: expectations, per-category and latency tables, figures, changed kernels."""
    b, a = diff.before.label, diff.after.label
    sides = {b: before[0], a: after[0]}
    sections = [Section("summary", "Summary", _diff_cards(diff, findings)
                        + meta_table([_side_meta(b, diff.before, before), _side_meta(a, diff.after, after),
                                      ("skip", f"{options.skip} warm-up step(s)"), ("rules", options.rules)]))]
    if findings is not None and len(findings):
        sections.append(expectations_section(findings))
    sections.append(Section("categories", "Launches per step by category",
                            '<p class="note">Mean and median over steady steps; Δ = after − before '
                            '(negative: launches removed).</p>' + _diff_category_table(diff)
                            + figure_html(plots.category_delta(diff.categories), "fig-category-delta")))
    sections.append(Section("latency", "Step latency", _verdict_table(diff) + _latency_table(diff.latency, b, a)
                            + figure_html(plots.step_durations(sides, skip=options.skip), "fig-step-durations")
                            + figure_html(plots.step_duration_histogram(sides, skip=options.skip),
                                          "fig-step-histogram")
                            + figure_html(plots.latency_bootstrap(diff), "fig-latency-bootstrap")))
    if not diff.sources.empty and diff.sources["frame"].notna().any():
        sections.append(Section("sources", "Where the changes come from",
                                _sources_table(diff, before, after, options.skip)))
    sections.append(Section("kernels", "Changed kernels",
                            figure_html(plots.kernel_delta(diff.kernels, options.top_kernels), "fig-kernel-delta")
                            + _diff_kernel_table(diff, options.top_kernels)))
    per_step = _per_trace_figures(b, before[0], options, "before") + _per_trace_figures(a, after[0], options,
                                                                                         "after")
    sections.append(Section("steps", "Per step", "".join(per_step)))
    warn = _warnings_section(diff.warnings)
    sections += [warn] if warn else []
    title = options.title or f"traceview: {b} → {a}"
    return _page(title, f"Kernel launches per step, {escape(b)} vs {escape(a)}", sections)


def _trace_category_table(side: Side) -> str:
    frame = _shown_categories(side.categories.reset_index(), ["mean", "max"])
    columns = [Column("category", "category"), Column("mean", "mean", "num"), Column("median", "median", "num"),
               Column("min", "min", "num"), Column("max", "max", "num")]
    return html_table(frame, columns, row_class=_aggregate_row)


def _trace_kernel_table(side: Side, top: int) -> str:
    kernels = side.kernels.sort_values("per_step", ascending=False, kind="stable").head(top)
    frame = kernels.assign(dtypes=_dtypes(kernels), gpu_us=kernels["gpu_ns_per_step"] / 1e3)
    columns = [Column("category", "category"), Column("kernel", "kernel", "kernel"),
               Column("dtypes", "dtypes", "nowrap"), Column("op", "op"), Column("per_step", "launches per step", "num"),
               Column("gpu_us", "GPU µs per step", "num", 1)]
    note = f'<p class="note">Top {len(frame)} of {len(side.kernels)} kernel rows by launches per step.</p>'
    return note + html_table(frame, columns)


def trace_report(side: Side, counts: Sequence[LaunchCounts], findings: pd.DataFrame | None = None,
                 options: ReportOptions = ReportOptions()) -> str:
    """The one-trace page: expectations, per-category statistics, step times, kernels, figures."""
    one = counts[0]
    label = side.label
    total = side.categories.at["total", "mean"] if "total" in side.categories.index else float("nan")
    cards = [card("launches per step", number(total), f"{side.steps} steady step(s)"),
             card("step time, mean (CPU)", f"{number(side.step_ms_mean, 3)} ms",
                  f"median {number(side.step_ms_median, 3)} ms"),
             card("GPU time per step", f"{number(side.gpu_busy_ms_mean, 3)} ms", "summed GPU event time"),
             _expectation_card(findings)]
    sections = [Section("summary", "Summary", f'<div class="cards">{"".join(cards)}</div>'
                        + meta_table([_side_meta(label, side, counts), ("skip", f"{options.skip} warm-up step(s)"),
                                      ("rules", options.rules)]))]
    if findings is not None and len(findings):
        sections.append(expectations_section(findings))
    sides = {label: one}
    per_step = plots.launches_per_step(one, options.skip, label)
    heatmap = plots.kernel_step_heatmap(one, options.heatmap_rows, label)
    sections.append(Section("categories", "Launches per step by category", _trace_category_table(side)
                            + figure_html(per_step, "fig-per-step")))
    sections.append(Section("latency", "Step latency",
                            figure_html(plots.step_durations(sides, skip=options.skip), "fig-step-durations")
                            + figure_html(plots.step_duration_histogram(sides, skip=options.skip),
                                          "fig-step-histogram")))
    sections.append(Section("kernels", "Kernels", _trace_kernel_table(side, options.top_kernels)
                            + figure_html(heatmap, "fig-heatmap")))
    warn = _warnings_section(side.warnings)
    sections += [warn] if warn else []
    return _page(options.title or f"traceview: {label}", "Kernel launches per step", sections)
