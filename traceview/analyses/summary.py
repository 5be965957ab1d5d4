"""One side of a diff (or the subject of a check): one trace, or the mean over its ranks.

A side is what ``diff`` and ``check`` compare: per-step launch statistics per
category, step latency, GPU kernel time and per-kernel rates, each over the
steady steps (after dropping ``skip`` warm-up steps) and, for a directory of
per-rank traces, averaged across ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from traceview.errors import TraceviewError
from traceview.model.counts import LaunchCounts
from traceview.model.ranks import rank_label

AGGREGATE_ROWS = ("total", "graph_replayed", "direct")
KERNEL_KEYS = ["category", "kernel", "src_dtype", "dst_dtype"]
KERNEL_COLUMNS = KERNEL_KEYS + ["op", "annotation", "launch_api", "per_step", "gpu_ns_per_step"]
RANK_COLUMNS = ["rank", "path", "steps", "step_ms_mean", "step_ms_median", "gpu_busy_ms_mean", "total_mean"]
_STAT_COLUMNS = ["mean", "median", "min", "max"]
# Two ranks "agree" on a per-step mean when they differ by less than this.
_AGREE = 1e-9


@dataclass(frozen=True)
class Side:
    """Per-step statistics of one trace or of the ranks of one run.

    ``categories``: index ``category`` (every rule category, then ``total``,
    ``graph_replayed``, ``direct``); columns mean, median, min, max, launches per
    step (float64; for several ranks: mean of the rank means and medians, min of
    the mins, max of the maxes).
    ``kernels``: KERNEL_COLUMNS, one row per (category, kernel, src_dtype,
    dst_dtype); ``per_step`` launches per step (float64), ``gpu_ns_per_step``
    GPU time per step (float64, ns); op/annotation/launch_api are those of the
    launch group with the most launches.
    ``ranks``: RANK_COLUMNS, one row per trace file.
    Scalars: ``steps`` steady steps per rank (the fewest, if ranks differ),
    ``step_ms_mean`` / ``step_ms_median`` CPU step duration in ms,
    ``gpu_busy_ms_mean`` summed GPU event time per step in ms, ``gpu_events`` GPU
    events in the whole trace(s), in steps or not.
    """

    label: str
    path: str
    steps: int
    step_ms_mean: float
    step_ms_median: float
    gpu_busy_ms_mean: float
    categories: pd.DataFrame
    kernels: pd.DataFrame
    ranks: pd.DataFrame
    category_names: tuple[str, ...]
    step_marker: str
    warnings: tuple[str, ...]
    gpu_events: int = 0
    # The counted traces, run by run (each run: one trace, or its ranks): the latency bootstrap
    # resamples steps within runs, and source frames come from the launches themselves.
    runs: tuple[tuple[LaunchCounts, ...], ...] = ()
    skip: int = 0  # warm-up steps left out of every number above

    def value(self, name: str) -> float:
        """Per-step mean of a category or aggregate row, or ``step_ms``; NaN if unknown."""
        if name == "step_ms":
            return self.step_ms_mean
        if name in self.categories.index:
            return float(self.categories.at[name, "mean"])
        return float("nan")


def default_label(path: str) -> str:
    """File or directory name without trace suffixes: ``run/demo_before.pt.trace.json.gz`` -> ``demo_before``."""
    name = str(path).rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".json", ".trace", ".pt", ".pftrace", ".perfetto-trace", ".pb"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _rank_row(rank: int, counts: LaunchCounts, skip: int, total_mean: float) -> dict:
    steady = counts.steady_steps(skip)
    return {"rank": rank, "path": counts.path, "steps": len(steady),
            "step_ms_mean": float(steady["cpu_dur_ns"].mean()) / 1e6,
            "step_ms_median": float(steady["cpu_dur_ns"].median()) / 1e6,
            "gpu_busy_ms_mean": float(steady["gpu_busy_ns"].mean()) / 1e6, "total_mean": total_mean}


def _rank_kernels(counts: LaunchCounts, skip: int) -> pd.DataFrame:
    rows = counts.kernels(skip)
    steps = max(len(counts.steady_steps(skip)), 1)
    rows = rows.assign(gpu_ns_per_step=rows["gpu_dur_ns"] / steps)
    for column in ("src_dtype", "dst_dtype", "op", "annotation", "launch_api"):
        # "" stands for "none" so the keys join and group; surfaces show it as "-".
        rows[column] = rows[column].astype("string").fillna("")
    return rows


def _merge_kernels(per_rank: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean per-step rate across ranks for each kernel key; labels from the biggest launch group."""
    n = len(per_rank)
    rows = pd.concat(per_rank, ignore_index=True)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="string" if c not in ("per_step", "gpu_ns_per_step") else "float64")
                             for c in KERNEL_COLUMNS})
    rates = rows.groupby(KERNEL_KEYS, observed=True, sort=False)[["per_step", "gpu_ns_per_step"]].sum() / n
    top = rows.sort_values("launches", ascending=False, kind="stable").drop_duplicates(KERNEL_KEYS)
    labels = top.set_index(KERNEL_KEYS)[["op", "annotation", "launch_api"]]
    out = rates.join(labels).reset_index()[KERNEL_COLUMNS]
    return out.astype({c: "string" for c in KERNEL_COLUMNS[:7]})


def rank_names(paths: Sequence[str | Path]) -> list[str]:
    """One name per trace of one run, in the order given: ``rank3`` (or ``dp1_pp0_tp3``, or the file
    name when it has no rank; ``model.ranks.rank_label``), or the paths as given when two traces would
    get the same name (e.g. rank0 of two runs)."""
    names = [rank_label(Path(p)) for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def rank_disagreements(per_rank: Mapping[str, LaunchCounts], skip: int = 0) -> list[str]:
    """Notes on where the ranks of one run differ in launches per step (mean over the steady steps).

    ``per_rank`` maps a rank's name (``rank_names``) to its counts. One note per category or
    aggregate row whose means differ by more than 1e-9 across ranks, in category order:
    ``ranks disagree on fill launches per step: rank0=1, rank1=3``. Fewer than two ranks: no
    notes. Raises TraceviewError when ``skip`` leaves a rank no step.
    """
    if len(per_rank) < 2:
        return []
    notes: list[str] = []
    means = {name: counts.summary(skip)["mean"] for name, counts in per_rank.items()}
    # Ranks share the rules, so their categories match; a category absent from one rank is 0 launches there.
    table = pd.DataFrame(means).fillna(0.0)
    spread = table.max(axis=1) - table.min(axis=1)
    for category in spread.index[spread > _AGREE]:
        values = ", ".join(f"{name}={value:g}" for name, value in table.loc[category].items())
        notes.append(f"ranks disagree on {category} launches per step: {values}")
    return notes


def _step_count_note(names: list[str], steps: list[int]) -> list[str]:
    if len(set(steps)) <= 1:
        return []
    values = ", ".join(f"{name}={n}" for name, n in zip(names, steps))
    return [f"ranks have different numbers of steady steps: {values}"]


def _run_warnings(ranked: list[LaunchCounts], skip: int) -> list[str]:
    """What a reader of one run's numbers should know: ranks that disagree or differ in steps, and
    each trace's own warnings (prefixed by its rank when there are several)."""
    rank_ids = rank_names([one.path for one in ranked])
    steps = [len(one.steady_steps(skip)) for one in ranked]
    warnings = rank_disagreements(dict(zip(rank_ids, ranked)), skip) + _step_count_note(rank_ids, steps)
    for rank_id, one in zip(rank_ids, ranked):
        prefix = f"{rank_id}: " if len(ranked) > 1 else ""
        warnings += [prefix + w for w in one.warnings]
    return warnings


def summarize(counts: LaunchCounts | Sequence[LaunchCounts], skip: int = 0, label: str | None = None,
              path: str | None = None) -> Side:
    """Summarizes one trace, or the per-rank traces of one run (mean across ranks).

    ``skip`` drops the first steps of every rank (warm-up). Raises
    TraceviewError if a rank has no step left after ``skip``.
    """
    ranked = [counts] if isinstance(counts, LaunchCounts) else list(counts)
    if not ranked:
        raise TraceviewError(path, "no traces to summarize")
    per_rank = []
    rank_rows = []
    for i, one in enumerate(ranked):
        stats = one.summary(skip).reindex(list(one.categories) + list(AGGREGATE_ROWS)).fillna(0.0)
        per_rank.append(stats)
        rank_rows.append(_rank_row(i, one, skip, float(stats.at["total", "mean"])))
    ranks = pd.DataFrame(rank_rows, columns=RANK_COLUMNS)
    stacked = pd.concat(per_rank, keys=range(len(per_rank)), names=["rank", "category"])
    grouped = stacked.groupby(level="category", sort=False)
    categories = pd.DataFrame({"mean": grouped["mean"].mean(), "median": grouped["median"].mean(),
                               "min": grouped["min"].min(), "max": grouped["max"].max()}).astype("float64")
    names = list(dict.fromkeys(c for one in ranked for c in one.categories))
    categories = categories.reindex(names + list(AGGREGATE_ROWS)).fillna(0.0)
    categories.index.name = "category"
    where = path if path is not None else ranked[0].path
    return Side(runs=(tuple(ranked),), skip=skip, label=label or default_label(where), path=str(where),
                steps=int(ranks["steps"].min()), step_ms_mean=float(ranks["step_ms_mean"].mean()),
                step_ms_median=float(ranks["step_ms_median"].mean()),
                gpu_busy_ms_mean=float(ranks["gpu_busy_ms_mean"].mean()), categories=categories,
                kernels=_merge_kernels([_rank_kernels(one, skip) for one in ranked]), ranks=ranks,
                category_names=tuple(names), step_marker=ranked[0].step_marker,
                warnings=tuple(_run_warnings(ranked, skip)),
                gpu_events=sum(one.total_gpu_events for one in ranked))


def summarize_runs(runs: Sequence[Sequence[LaunchCounts]], skip: int = 0, label: str | None = None,
                   path: str | None = None) -> Side:
    """One side made of several runs (each a trace, or the per-rank traces of one run): launches per
    step are the mean over every trace, as ``summarize`` takes ranks; notes on ranks that disagree
    compare the ranks of one run, never two runs."""
    if len(runs) == 1:
        return summarize(runs[0], skip, label, path)
    pooled = summarize([one for run in runs for one in run], skip, label, path)
    warnings = tuple(f"run {i + 1}: {w}" for i, run in enumerate(runs) for w in _run_warnings(list(run), skip))
    return replace(pooled, warnings=warnings, runs=tuple(tuple(run) for run in runs))


def nan_to_none(value: float) -> float | None:
    """JSON has no NaN: a missing number is null."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
