"""Plotly figures of launch counts. Every function returns a ``go.Figure`` and never shows it.

Single-trace figures take a ``LaunchCounts`` (or several, by label); the
before/after figures take the frames of ``analyses.diff.DiffResult``.
Kernel names are shortened for axis labels (``model.kernel_names.short_kernel_name``);
the full name stays in the hover text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from traceview.analyses.diff import DiffResult
from traceview.analyses.latency import METRIC_LABELS
from traceview.analyses.summary import AGGREGATE_ROWS
from traceview.model.counts import LaunchCounts
from traceview.model.kernel_names import hover_name, kernel_labels, short_kernel_name  # noqa: F401 (notebooks)

# One colour per category, the same in every figure: tableau-like, readable on white and in print.
_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
            "#9c755f", "#1f77b4", "#8cd17d", "#d37295", "#86bcb6", "#b6992d")
_OTHER_COLOR = "#bab0ac"
SIDE_COLORS = ("#4e79a7", "#f28e2b")  # before, after
REMOVED_COLOR, ADDED_COLOR = "#59a14f", "#e15759"

# Step time columns a figure can plot: label, and how to compute it in ns from the steps frame.
STEP_METRICS = {
    "cpu_dur_ns": "step wall time on the CPU (ms)",
    "gpu_span_ns": "GPU span of the step's launches (ms)",
    "gpu_busy_ns": "summed GPU event time (ms)",
}
_LAYOUT = dict(template="plotly_white", font=dict(size=12), margin=dict(l=60, r=30, t=60, b=50),
               legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0))


def category_colors(categories: list[str]) -> dict[str, str]:
    """Category -> hex colour, by position in ``categories`` (rule order); ``other`` is grey."""
    named = [c for c in categories if c != "other"]
    colors = {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(named)}
    colors["other"] = _OTHER_COLOR
    return colors


def _figure(title: str, **layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), **{**_LAYOUT, **layout})
    return fig


def launches_per_step(counts: LaunchCounts, skip: int = 0, label: str | None = None) -> go.Figure:
    """Stacked bars: launches per step (x: step index), one bar trace per category with any launch.

    Warm-up steps (the first ``skip``) are shaded. Bar values are ``counts.per_step()``. ``label`` names
    the trace in the title (default: its file name).
    """
    per_step = counts.per_step()
    colors = category_colors(counts.categories)
    names = counts.steps.set_index("step")["name"].reindex(per_step.index).astype(str).to_numpy()
    fig = _figure(f"Launches per step by category: {label or _display_path(counts.path)}", barmode="stack",
                  xaxis_title="step", yaxis_title="launches", bargap=0.15, legend_traceorder="normal")
    _step_ticks(fig, len(per_step))
    for category in counts.categories:
        values = per_step[category]
        if not values.any():
            continue
        fig.add_bar(x=per_step.index.to_numpy(), y=values.to_numpy(), name=category,
                    marker_color=colors[category], customdata=names,
                    hovertemplate=f"step %{{x}} (%{{customdata}})<br>{category}: %{{y}}<extra></extra>")
    if 0 < skip <= len(per_step):
        fig.add_vrect(x0=-0.5, x1=skip - 0.5, fillcolor="#999", opacity=0.15, line_width=0,
                      annotation_text="warm-up (skipped)", annotation_position="top left")
    return fig


def category_delta(categories: pd.DataFrame, title: str = "Change in launches per step, by category") -> go.Figure:
    """Horizontal bars of ``delta_mean`` (after - before launches per step) per category.

    ``categories``: ``DiffResult.categories`` (columns ``category``,
    ``before_mean``, ``after_mean``, ``delta_mean``). Categories with no launch on
    either side and the aggregate rows (total, graph_replayed, direct) are left
    out; negative = removed (green), positive = added (red), zero = grey.
    """
    frame = categories[~categories["category"].isin(AGGREGATE_ROWS)]
    frame = frame[(frame["before_mean"] != 0) | (frame["after_mean"] != 0)]
    names = frame["category"].astype(str).tolist()
    fig = _figure(title, xaxis_title="Δ launches per step (after − before)", barmode="overlay",
                  height=max(260, 90 + 30 * len(frame)))
    _delta_bars(fig, names, names, frame["before_mean"], frame["after_mean"], frame["delta_mean"])
    return fig


def kernel_delta(kernels: pd.DataFrame, top: int = 20,
                 title: str = "Top changed kernels (launches per step)") -> go.Figure:
    """Horizontal bars of ``delta`` for the ``top`` kernel rows with the largest absolute change.

    ``kernels``: ``DiffResult.kernels`` (columns ``category``, ``kernel``,
    ``before_per_step``, ``after_per_step``, ``delta``; ``src_dtype`` and
    ``dst_dtype`` are shown when present). Labels are short kernel names plus
    the category; hover shows the full name.
    """
    frame = kernels[kernels["delta"] != 0]
    frame = frame.loc[frame["delta"].abs().sort_values(ascending=False, kind="stable").index].head(top)
    labels = [f"{label} [{_kernel_tag(row)}]" for label, (_, row) in
              zip(kernel_labels(frame["kernel"].astype(str).tolist()), frame.iterrows())]
    fig = _figure(title, xaxis_title="Δ launches per step (after − before)", barmode="overlay",
                  height=max(260, 90 + 26 * len(frame)), margin=dict(l=20, r=40, t=60, b=50))
    _delta_bars(fig, labels, frame["kernel"].astype(str).tolist(), frame["before_per_step"],
                frame["after_per_step"], frame["delta"])
    fig.update_yaxes(automargin=True)
    return fig


def _kernel_tag(row: pd.Series) -> str:
    src, dst = row.get("src_dtype"), row.get("dst_dtype")
    if isinstance(src, str) and isinstance(dst, str) and src and dst:
        return f"{row['category']} {src}→{dst}"
    return str(row["category"])


def _delta_bars(fig: go.Figure, labels: list[str], hover_names: list[str], before: pd.Series, after: pd.Series,
                delta: pd.Series) -> None:
    """Adds 'removed', 'added' and 'unchanged' bar traces, so the legend explains the colours."""
    delta = delta.to_numpy(dtype="float64")
    custom = list(zip([hover_name(n) for n in hover_names], before.to_numpy(dtype="float64"),
                      after.to_numpy(dtype="float64")))
    for name, color, keep in (("removed", REMOVED_COLOR, delta < 0), ("added", ADDED_COLOR, delta > 0),
                              ("unchanged", "#999999", delta == 0)):
        if not keep.any():
            continue
        fig.add_bar(orientation="h", name=name, marker_color=color,
                    y=[lab for lab, k in zip(labels, keep) if k], x=delta[keep],
                    text=[f"{d:+.4g}" if d else "0" for d in delta[keep]], textposition="outside", cliponaxis=False,
                    customdata=[c for c, k in zip(custom, keep) if k],
                    hovertemplate="%{customdata[0]}<br>before %{customdata[1]:.4g}, after %{customdata[2]:.4g}, "
                                  "Δ %{x:+.4g}<extra></extra>")
    # Rows keep the frame's order top to bottom whatever trace they are in.
    fig.update_yaxes(categoryorder="array", categoryarray=labels, type="category", autorange="reversed")
    fig.add_vline(x=0, line_width=1, line_color="#444")


def step_times(counts: LaunchCounts) -> pd.DataFrame:
    """Per step: ``step``, ``name``, ``cpu_dur_ns``, ``gpu_span_ns`` (<NA> with no GPU event), ``gpu_busy_ns``."""
    return counts.steps[["step", "name", "cpu_dur_ns", "gpu_span_ns", "gpu_busy_ns"]]


def _durations_ms(counts: LaunchCounts, metric: str, skip: int) -> pd.DataFrame:
    if metric not in STEP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(STEP_METRICS)}, got {metric!r}")
    times = step_times(counts).iloc[skip:]
    times = times[times[metric].notna()]
    return pd.DataFrame({"step": times["step"].to_numpy(), "name": times["name"].astype(str).to_numpy(),
                         "ms": times[metric].astype("float64").to_numpy() / 1e6})


def step_durations(traces: Mapping[str, LaunchCounts], metric: str = "cpu_dur_ns", skip: int = 0,
                   title: str | None = None) -> go.Figure:
    """One line per trace (label -> counts): step duration in ms over the steps after ``skip``.

    ``metric``: one of STEP_METRICS (default: the step annotation's CPU wall time).
    """
    fig = _figure(title or f"Step durations: {STEP_METRICS.get(metric, metric)}",
                  xaxis_title="step", yaxis_title="ms", hovermode="x unified")
    for i, (label, counts) in enumerate(traces.items()):
        data = _durations_ms(counts, metric, skip)
        fig.add_scatter(x=data["step"], y=data["ms"], name=label, mode="lines+markers",
                        line_color=SIDE_COLORS[i % 2] if len(traces) <= 2 else None, customdata=data["name"],
                        hovertemplate=f"{label}: %{{y:.3f}} ms (%{{customdata}})<extra></extra>")
    fig.update_yaxes(rangemode="tozero")
    _step_ticks(fig, max((len(c.steps) for c in traces.values()), default=0))
    return fig


def _step_ticks(fig: go.Figure, steps: int) -> None:
    """Whole-number step ticks (plotly would put ticks at 1.5 for a few steps), at most ~20 of them."""
    fig.update_xaxes(tick0=0, dtick=max(1, math.ceil(steps / 20)))


def duration_histogram(traces: Mapping[str, LaunchCounts], metric: str = "cpu_dur_ns",
                       skip: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shared bin edges (ms, float64) and, per trace label, the number of steps in each bin (int64).

    Bins: max(5, ceil(sqrt(n))) equal bins over all traces' steps, at most 30; the last bin is closed.
    """
    values = {label: _durations_ms(counts, metric, skip)["ms"].to_numpy() for label, counts in traces.items()}
    everything = np.concatenate(list(values.values())) if values else np.array([], dtype="float64")
    if not len(everything):
        return np.array([], dtype="float64"), {label: np.array([], dtype="int64") for label in values}
    bins = min(30, max(5, math.ceil(math.sqrt(len(everything)))))
    edges = np.histogram_bin_edges(everything, bins=bins)
    return edges, {label: np.histogram(v, edges)[0].astype("int64") for label, v in values.items()}


def step_duration_histogram(traces: Mapping[str, LaunchCounts], metric: str = "cpu_dur_ns", skip: int = 0,
                            title: str | None = None) -> go.Figure:
    """Overlaid histograms (one bar trace per trace label) of step durations in ms after ``skip``.

    Bars sit at the centres of ``duration_histogram``'s shared bins; ``y`` is the number of steps.
    """
    fig = _figure(title or f"Step duration distribution: {STEP_METRICS.get(metric, metric)}",
                  xaxis_title="ms", yaxis_title="steps", barmode="overlay", bargap=0.02)
    edges, counts = duration_histogram(traces, metric, skip)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    ranges = [f"{lo:.3f}–{hi:.3f}" for lo, hi in pairwise(edges)]
    for i, (label, y) in enumerate(counts.items()):
        fig.add_bar(x=centers, y=y, width=widths, name=label, opacity=0.6, customdata=ranges,
                    marker_color=SIDE_COLORS[i % 2] if len(counts) <= 2 else None,
                    hovertemplate=f"{label}: %{{y}} steps in %{{customdata}} ms<extra></extra>")
    if len(counts) and max((int(c.max()) for c in counts.values() if len(c)), default=0) <= 10:
        fig.update_yaxes(dtick=1)
    return fig


def kernel_step_matrix(counts: LaunchCounts, top: int = 30) -> pd.DataFrame:
    """Kernels x steps launch counts (int64) for the ``top`` kernels by launches inside steps.

    Index: kernel (full name), ordered by total launches, descending; columns:
    every step index; a ``category`` column is not included (see kernels()).
    """
    inside = counts.in_steps()
    matrix = inside.pivot_table(index="kernel", columns="step", values="launches", aggfunc="sum", fill_value=0,
                                observed=True)
    matrix = matrix.reindex(columns=counts.steps["step"].to_numpy(), fill_value=0)
    order = matrix.sum(axis=1).sort_values(ascending=False, kind="stable").index[:top]
    return matrix.loc[order].astype("int64")


def kernel_step_heatmap(counts: LaunchCounts, top: int = 30, label: str | None = None) -> go.Figure:
    """Heatmap of launch counts, kernel (rows, top ``top`` by launches) x step (columns).

    Cells are ``kernel_step_matrix(counts, top)``; ``label`` names the trace in the title.
    """
    matrix = kernel_step_matrix(counts, top)
    names = matrix.index.astype(str).tolist()
    hover = [[hover_name(n, width=80, max_chars=300)] * matrix.shape[1] for n in names]
    fig = _figure(f"Launches per kernel and step, top {len(names)} kernels: {label or _display_path(counts.path)}",
                  xaxis_title="step", height=max(300, 120 + 22 * len(names)), margin=dict(l=20, r=30, t=60, b=50))
    # Zero is white, one launch is already visibly blue: a kernel missing from a step stands out.
    scale = [[0.0, "#ffffff"], [1e-9, "#dbe9f6"], [1.0, "#08306b"]]
    small = matrix.shape[1] <= 25
    fig.add_heatmap(z=matrix.to_numpy(), x=[str(s) for s in matrix.columns], y=kernel_labels(names),
                    customdata=hover, colorscale=scale, zmin=0, zmax=max(1, int(matrix.to_numpy().max(initial=0))),
                    colorbar=dict(title="launches"),
                    texttemplate="%{z}" if small else None, textfont=dict(size=10),
                    hovertemplate="%{customdata}<br>step %{x}: %{z} launches<extra></extra>", xgap=1, ygap=1)
    fig.update_yaxes(autorange="reversed", automargin=True, type="category")
    fig.update_xaxes(type="category")
    return fig


def _display_path(path: str) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


def latency_bootstrap(diff: DiffResult, metric: str | None = None, bins: int = 60) -> go.Figure:
    """The bootstrap distribution of the change of the median step latency (ms) behind ``diff``'s
    interval for ``metric`` (default: the leading one), with the 95 % interval and 0 marked."""
    verdict = (diff.latency_verdict if metric is None
               else next((v for v in diff.latencies if v.metric == metric), None))
    fig = _figure(f"Bootstrap distribution of the median change: {METRIC_LABELS[verdict.metric]}"
                  if verdict else "No step latencies to resample", xaxis_title="after − before (ms)",
                  yaxis_title="resamples", bargap=0.02)
    if verdict is None:
        return fig
    fig.add_histogram(x=verdict.changes, nbinsx=bins, marker_color=SIDE_COLORS[0], name="resampled change",
                      hovertemplate="%{x} ms: %{y} resamples<extra></extra>")
    for x, text in ((verdict.ci95_ms[0], "2.5 %"), (verdict.ci95_ms[1], "97.5 %")):
        fig.add_vline(x=x, line_dash="dash", line_color=REMOVED_COLOR, annotation_text=text)
    fig.add_vline(x=0, line_color="#444", annotation_text="0", annotation_position="bottom right")
    return fig
