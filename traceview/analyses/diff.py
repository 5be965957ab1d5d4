"""Diff of two runs: launches per step by category and by kernel, step latency, GPU time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from traceview.analyses.latency import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    LatencyVerdict,
    bootstrap_latency,
    leading_metric,
    step_latencies,
)
from traceview.analyses.sources import SOURCE_DTYPES, frame_deltas
from traceview.analyses.summary import KERNEL_KEYS, Side, summarize
from traceview.model.columns import empty
from traceview.model.counts import LaunchCounts

CATEGORY_COLUMNS = ["category", "before_mean", "after_mean", "delta_mean", "before_median", "after_median",
                    "delta_median"]
LATENCY_COLUMNS = ["metric", "before", "after", "delta", "delta_pct"]
LATENCY_METRICS = ("step_ms_mean", "step_ms_median", "gpu_busy_ms_mean")
KERNEL_DIFF_COLUMNS = KERNEL_KEYS + ["op", "annotation", "launch_api", "before_per_step", "after_per_step",
                                     "delta", "change"]
# Per-step rates are means of integers over hundreds of steps: treat float noise as no change.
_SAME = 1e-9


@dataclass(frozen=True)
class DiffResult:
    """``after`` minus ``before``, every number per step over steady steps.

    ``categories``: CATEGORY_COLUMNS, one row per category (rule order), then
    ``total``, ``graph_replayed``, ``direct``; launches per step (float64).
    ``latency``: LATENCY_COLUMNS, one row per metric: ``step_ms_mean`` and
    ``step_ms_median`` (CPU step duration), ``gpu_busy_ms_mean`` (summed GPU event
    time per step); before/after/delta in ms, ``delta_pct`` in percent of before.
    ``kernels``: KERNEL_DIFF_COLUMNS, one row per (category, kernel, src_dtype,
    dst_dtype) seen on either side, largest ``abs(delta)`` first; rates in
    launches per step; ``change`` is added|removed|changed|same; op, annotation
    and launch_api ("" for none) come from the side with more launches.
    ``warnings``: each side's warnings, prefixed by its label.
    ``latencies``: the bootstrapped change of the median step latency, one verdict per metric
    (``cpu_step_ms``, and ``gpu_span_ms`` when both sides' steps launched GPU work); ``leading``
    names the metric that bounds the step (the larger median), whose verdict ``latency`` is.
    """

    before: Side
    after: Side
    categories: pd.DataFrame
    latency: pd.DataFrame
    kernels: pd.DataFrame
    warnings: tuple[str, ...]
    latencies: tuple[LatencyVerdict, ...] = ()
    leading: str = "cpu_step_ms"
    # analyses/sources.SOURCE_COLUMNS: each category's delta by the Python frame that launched it.
    sources: pd.DataFrame = field(default_factory=lambda: empty(SOURCE_DTYPES))
    # Why changed launches have no frame (no with_stack, graph replays): notes, not counting problems.
    source_notes: tuple[str, ...] = ()

    @property
    def latency_verdict(self) -> LatencyVerdict | None:
        """The verdict on the leading latency metric (None when there is none, e.g. no runs kept)."""
        found = [v for v in self.latencies if v.metric == self.leading]
        return found[0] if found else None

    def actual(self, name: str) -> float:
        """The number an expectation on ``name`` is checked against: a category's per-step
        mean delta, ``step_ms`` (mean step latency delta, ms) or ``step_pct`` (its percent)."""
        if name in ("step_ms", "step_pct"):
            row = self.latency.set_index("metric").loc["step_ms_mean"]
            return float(row["delta"] if name == "step_ms" else row["delta_pct"])
        found = self.categories.loc[self.categories["category"] == name, "delta_mean"]
        return float(found.iloc[0]) if len(found) else float("nan")

    def changed_kernels(self, limit: int | None = 10) -> pd.DataFrame:
        """The ``limit`` kernel rows whose per-step count changed most (all with ``None``)."""
        changed = self.kernels[self.kernels["change"] != "same"]
        return changed if limit is None else changed.head(limit)


def _category_frame(before: Side, after: Side) -> pd.DataFrame:
    names = list(dict.fromkeys(list(before.categories.index) + list(after.categories.index)))
    b = before.categories.reindex(names).fillna(0.0)
    a = after.categories.reindex(names).fillna(0.0)
    frame = pd.DataFrame({"category": pd.array(names, dtype="string"),
                          "before_mean": b["mean"].to_numpy(), "after_mean": a["mean"].to_numpy(),
                          "before_median": b["median"].to_numpy(), "after_median": a["median"].to_numpy()})
    frame["delta_mean"] = frame["after_mean"] - frame["before_mean"]
    frame["delta_median"] = frame["after_median"] - frame["before_median"]
    return frame[CATEGORY_COLUMNS]


def _pct(delta: float, base: float) -> float:
    return float(delta / base * 100.0) if base else float("nan")


def _latency_frame(before: Side, after: Side) -> pd.DataFrame:
    rows = []
    for metric in LATENCY_METRICS:
        b, a = float(getattr(before, metric)), float(getattr(after, metric))
        rows.append({"metric": metric, "before": b, "after": a, "delta": a - b, "delta_pct": _pct(a - b, b)})
    frame = pd.DataFrame(rows, columns=LATENCY_COLUMNS)
    return frame.astype({"metric": "string"})


def _kernel_frame(before: Side, after: Side) -> pd.DataFrame:
    b = before.kernels.set_index(KERNEL_KEYS)
    a = after.kernels.set_index(KERNEL_KEYS)
    keys = b.index.union(a.index, sort=False) if len(b) or len(a) else b.index
    b, a = b.reindex(keys), a.reindex(keys)
    before_rate = b["per_step"].fillna(0.0).astype("float64")
    after_rate = a["per_step"].fillna(0.0).astype("float64")
    delta = after_rate - before_rate
    # Label each kernel with the op that launched it where it is most frequent.
    use_after = after_rate >= before_rate
    labels = pd.DataFrame({c: a[c].where(use_after, b[c]) for c in ("op", "annotation", "launch_api")})
    change = np.select([before_rate.to_numpy() <= _SAME, after_rate.to_numpy() <= _SAME,
                        np.abs(delta.to_numpy()) > _SAME], ["added", "removed", "changed"], "same")
    out = pd.DataFrame({"before_per_step": before_rate, "after_per_step": after_rate, "delta": delta,
                        "change": pd.array(change, dtype="string")}, index=keys).join(labels)
    out = out.reset_index()
    out["order"] = -out["delta"].abs()
    out = out.sort_values(["order", "category", "kernel"], kind="stable", ignore_index=True)
    return out[KERNEL_DIFF_COLUMNS].astype({c: "string" for c in KERNEL_KEYS + ["op", "annotation", "launch_api"]})


def _run_latencies(side: Side, metric: str) -> list[np.ndarray]:
    """Per-step ``metric`` (ms) of each run of ``side``; a run's ranks pool their steps (one run, one clock)."""
    return [np.concatenate(step_latencies(run, metric, side.skip)) for run in side.runs]


def _latencies(before: Side, after: Side, resamples: int, seed: int) -> tuple[tuple[LatencyVerdict, ...], str]:
    if not before.runs or not after.runs:
        return (), "cpu_step_ms"
    verdicts = []
    series = {}
    for metric in ("cpu_step_ms", "gpu_span_ms"):
        b, a = _run_latencies(before, metric), _run_latencies(after, metric)
        if all(len(run) for run in b + a):  # a run whose steps launched no GPU work has no GPU span
            series[metric] = b + a
            verdicts.append(bootstrap_latency(b, a, metric, resamples, seed))
    leading = leading_metric(series["cpu_step_ms"], series["gpu_span_ms"]) if "gpu_span_ms" in series \
        else "cpu_step_ms"
    return tuple(verdicts), leading


def diff_sides(before: Side, after: Side, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> DiffResult:
    """Diffs two summarized sides (see ``summarize``); the latency CIs take ``resamples`` bootstrap
    resamples drawn with ``seed`` (the same inputs and seed give the same interval)."""
    warnings = tuple(f"{side.label}: {w}" for side in (before, after) for w in side.warnings)
    if before.step_marker != after.step_marker:
        note = (f"the sides were split into steps by different markers ({before.label}: {before.step_marker}, "
                f"{after.label}: {after.step_marker}): per-step numbers may not be comparable")
        warnings += (note,)
    latencies, leading = _latencies(before, after, resamples, seed)
    categories = _category_frame(before, after)
    sources, notes = _sources(before, after, categories)
    return DiffResult(before, after, categories, _latency_frame(before, after),
                      _kernel_frame(before, after), warnings, latencies, leading, sources, notes)


def _sources(before: Side, after: Side, categories: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Source frames of each side (the mean over its traces, as its category counts are), with the
    notes that say why launches have none."""
    if not before.runs or not after.runs:
        return empty(SOURCE_DTYPES), ()
    traces_before = [t for run in before.runs for t in run]
    traces_after = [t for run in after.runs for t in run]
    sources = frame_deltas(traces_before, traces_after, before.skip)
    # Frames only explain a category whose launches per step changed: where one side has frames and
    # the other none, every unchanged category would otherwise show as moved between frames.
    changed = set(categories.loc[categories["delta_mean"].abs() > _SAME, "category"])
    sources = sources[sources["category"].isin(changed)].reset_index(drop=True)
    if not len(sources):
        return sources, ()
    notes = dict.fromkeys(w for t in traces_before + traces_after for w in t.frame_warnings())
    framed = {name: sum(bool(t.python_frames) for t in traces) for name, traces in
              (("before", traces_before), ("after", traces_after))}
    if bool(framed["before"]) != bool(framed["after"]):
        notes[f"only the {'before' if framed['before'] else 'after'} side has Python frames: a "
              "category's change shows as launches moving between a frame and none"] = None
    partly = [f"{name} ({n} of {len(traces)} traces)" for (name, n), traces in
              zip(framed.items(), (traces_before, traces_after)) if 0 < n < len(traces)]
    if partly:
        notes[f"only some traces have Python frames: {', '.join(partly)}; the others count as no frame"] = None
    return sources, tuple(notes)


def diff_counts(before: LaunchCounts | Sequence[LaunchCounts], after: LaunchCounts | Sequence[LaunchCounts],
                skip: int = 0, labels: tuple[str | None, str | None] = (None, None),
                paths: tuple[str | None, str | None] = (None, None)) -> DiffResult:
    """Diffs two runs, each one trace or a sequence of per-rank traces (averaged across ranks).

    ``skip`` drops each trace's first steps (warm-up); ``labels`` name the sides
    (default: file or directory name without suffixes); ``paths`` are what the
    user gave (a directory for ranks). See DiffResult for the frames' columns.
    """
    return diff_sides(summarize(before, skip, labels[0], paths[0]), summarize(after, skip, labels[1], paths[1]))
