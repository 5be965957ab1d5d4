"""Decode steps: slices matching a step marker, one row per step.

A marker may match slices of any CPU-side category: annotations, ops, and Python
frames (vLLM V1 serving traces mark a step only by the ``execute_model`` frame).
When several marker families match, one is chosen by a stated rule (``choose``)
and the others are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from traceview.engine.parallel import on_shards
from traceview.model.columns import empty
from traceview.model.rules import StepMarker, compile_regex, load_step_markers
from traceview.model.sql import shards_of, sql_literal

if TYPE_CHECKING:
    from traceview.engine import ShardedTrace, Trace

# Markers are searched among every slice but the GPU's: GPU work, and the GPU-side copy of an
# annotation (gpu_user_annotation), so that ProfilerStep#N, written on both sides, counts once.
GPU_SIDE_CATEGORIES = ("gpu_user_annotation", "kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset",
                       "kernel_dispatch", "memory_copy")
_NOT_GPU_SQL = "(category is null or category not in ({}))".format(
    ", ".join(sql_literal(c) for c in GPU_SIDE_CATEGORIES))
CANDIDATE_DTYPES = {"marker": "string", "regex": "string", "steps": "int64", "median_ms": "float64", "chosen": "bool"}
CANDIDATE_COLUMNS = list(CANDIDATE_DTYPES)

STEP_COLUMNS = ["step", "name", "slice_id", "cpu_start_ns", "cpu_end_ns", "cpu_dur_ns"]


@dataclass(frozen=True)
class StepSelection:
    """The steps found in a trace and how they were found."""

    steps: pd.DataFrame  # STEP_COLUMNS; `step` is 0..n-1 in time order
    marker: str  # name of the marker used ("custom" for --step-marker, "whole-trace" if none)
    regex: str  # the regex that matched ("" for whole-trace)
    warnings: list[str] = field(default_factory=list)
    # Every marker family that matched: CANDIDATE_COLUMNS (steps int64, median_ms float64, chosen bool).
    candidates: pd.DataFrame = field(default_factory=lambda: empty_candidates())
    # With shards: each shard's slice id of each step's marker (step -> id; absent where the shard
    # does not hold it). Without, the slice_id column of ``steps``.
    shard_slice_ids: list[dict[int, int]] | None = None

    def slice_ids(self, shard: int) -> pd.Series:
        """Slice id (Int64, <NA> where absent) of each step's marker in ``shard``, aligned with ``steps``."""
        if self.shard_slice_ids is None:
            return self.steps["slice_id"]
        ids = self.shard_slice_ids[shard]
        return pd.array([ids.get(int(s)) for s in self.steps["step"]], dtype="Int64")


def _annotation_names(trace) -> pd.DataFrame:
    def names(shard: Trace) -> pd.DataFrame:
        return shard.query(f"""
            select name, count(*) as n from slice
            where {_NOT_GPU_SQL} and name is not null
            group by name""")
    frames = on_shards(names, shards_of(trace))
    if len(frames) == 1:
        return frames[0]
    # A marker that spans a shard bound is in both shards: count it once (the largest count).
    return pd.concat(frames).groupby("name", as_index=False)["n"].max()


def marker_names_pattern(step_marker: str | None = None) -> str:
    """One regex matching every packaged step marker and ``step_marker``: a lean
    load keeps the events it matches (kineto/pipeline.py)."""
    patterns = [m.regex.pattern for m in load_step_markers()]
    if step_marker is not None:
        patterns.append(compile_regex(step_marker, "--step-marker", "step marker").pattern)
    return "|".join(f"(?:{p})" for p in patterns)


def find_step_markers(trace: Trace, markers: tuple[StepMarker, ...] | None = None) -> list[str]:
    """Which packaged markers match, as ``"name: N annotations"`` strings (for ``info``)."""
    names = _annotation_names(trace)
    found = []
    for marker in markers or load_step_markers():
        hits = int(names.n[names.name.map(lambda s: bool(marker.regex.search(s)))].sum()) if len(names) else 0
        if hits:
            found.append(f"{marker.name}: {hits}")
    return found


def _trace_span(trace) -> tuple[int, int]:
    rows = on_shards(lambda shard: shard.query(
        "select min(ts) as lo, max(ts + dur) as hi from slice where dur >= 0"), shards_of(trace))
    frame = pd.concat(rows)
    lo, hi = frame["lo"].dropna(), frame["hi"].dropna()
    return (int(lo.min()) if len(lo) else 0), (int(hi.max()) if len(hi) else 0)


def empty_candidates() -> pd.DataFrame:
    return empty(CANDIDATE_DTYPES)


def choose(found: list[tuple[StepMarker, pd.DataFrame]]) -> int:
    """Which of several matching marker families defines the steps: the one with the most steps
    (a family that repeats per decode step beats one around a whole run), then the one whose
    steps are shortest (the innermost: SGLang's ``step[EXTEND …]`` inside vLLM's ``execute_…``),
    then the first in the rules' order."""
    def key(item: tuple[int, tuple[StepMarker, pd.DataFrame]]) -> tuple:
        index, (_, steps) = item
        return (-len(steps), float(steps["cpu_dur_ns"].median()), index)
    return min(enumerate(found), key=key)[0]


def find_steps(trace: Trace | ShardedTrace, step_marker: str | None = None,
               markers: tuple[StepMarker, ...] | None = None) -> StepSelection:
    """Finds the steps of ``trace``.

    ``step_marker`` (a regex) overrides the packaged markers. Every packaged marker
    that matches finished slices is a candidate family; ``choose`` picks one, and a
    warning names the others (``StepSelection.candidates`` lists them all). With
    none, the whole trace is one step and a warning lists the markers tried.
    Returns a StepSelection whose frame has STEP_COLUMNS (times in ns, int64).
    """
    names = _annotation_names(trace)
    if step_marker is not None:
        candidates = (StepMarker("custom", compile_regex(step_marker, "--step-marker", "step marker")),)
    else:
        candidates = markers or load_step_markers()
    found = []
    for marker in candidates:
        matched = [n for n in names.name.tolist() if marker.regex.search(n)] if len(names) else []
        steps = _steps_named(trace, matched) if matched else None
        if steps is not None and not steps[0].empty:  # unfinished annotations (no end) are no steps
            found.append((marker, steps))
    if not found:
        return _whole_trace(trace, candidates)
    best = choose([(marker, steps) for marker, (steps, _) in found])
    table = pd.DataFrame({
        "marker": pd.array([m.name for m, _ in found], dtype="string"),
        "regex": pd.array([m.regex.pattern for m, _ in found], dtype="string"),
        "steps": pd.array([len(f[0]) for _, f in found], dtype="int64"),
        "median_ms": pd.array([float(f[0]["cpu_dur_ns"].median()) / 1e6 for _, f in found], dtype="float64"),
        "chosen": pd.array([i == best for i in range(len(found))], dtype="bool")})
    marker, (steps, slice_ids) = found[best]
    warnings = []
    if len(found) > 1:
        others = "; ".join(f"{r.marker} ({_steps(r.steps)}, median {r.median_ms:.3f} ms)"
                           for r in table.itertuples(index=False) if not r.chosen)
        warnings.append(f"steps from marker {marker.name} ({_steps(len(steps))}, median "
                        f"{float(steps['cpu_dur_ns'].median()) / 1e6:.3f} ms): the most steps, then the shortest; "
                        f"also found: {others}. Choose another with --step-marker")
    return StepSelection(steps, marker.name, marker.regex.pattern, warnings, table, slice_ids)


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _whole_trace(trace, tried: tuple[StepMarker, ...]) -> StepSelection:
    lo, hi = _trace_span(trace)
    whole = pd.DataFrame({"step": [0], "name": ["whole trace"], "slice_id": pd.array([None], dtype="Int64"),
                          "cpu_start_ns": [lo], "cpu_end_ns": [hi], "cpu_dur_ns": [hi - lo]}).astype(_STEP_DTYPES)
    names = ", ".join(f"{m.name} ({m.regex.pattern})" for m in tried)
    return StepSelection(whole, "whole-trace", "",
                         [f"no step marker found; counted the whole trace as one step (tried: {names})"])


def _steps_named(trace, names: list[str]) -> tuple[pd.DataFrame, list[dict[int, int]] | None]:
    """The slices named ``names``, one step each in time order; with shards, also each shard's slice ids."""
    # `+name`: keeps the IN list in SQLite, which looks each row up in a b-tree;
    # handed to the processor as a constraint it cost one scan per name (1.4 s
    # for 1,004 steps in a 1 GB trace).
    name_list = ", ".join(sql_literal(n) for n in names)
    shards = shards_of(trace)
    frames = on_shards(lambda shard: shard.query(f"""
        select name, id as slice_id, ts as cpu_start_ns, ts + dur as cpu_end_ns, dur as cpu_dur_ns
        from slice
        where {_NOT_GPU_SQL} and +name in ({name_list}) and dur >= 0
        order by ts, id"""), shards)
    if len(frames) == 1:
        frame = frames[0]
        frame.insert(0, "step", range(len(frame)))
        return frame.astype(_STEP_DTYPES), None
    # A marker that spans a shard bound is in each of those shards: the same step. Markers that are
    # identical in one shard (duplicate events) stay apart, numbered within their shard.
    key = ["name", "cpu_start_ns", "cpu_end_ns", "copy"]
    for index, frame in enumerate(frames):
        frame["copy"] = frame.groupby(key[:3]).cumcount()
        frame["shard"] = index
    every = pd.concat(frames, ignore_index=True)
    steps = every.drop_duplicates(key).sort_values(["cpu_start_ns", "cpu_end_ns", "copy"], ignore_index=True)
    steps.insert(0, "step", range(len(steps)))
    every = every.merge(steps[["step", *key]], on=key)
    slice_ids: list[dict[int, int]] = [{} for _ in frames]
    for shard, part in every.groupby("shard"):
        slice_ids[int(shard)] = dict(zip(part["step"].tolist(), part["slice_id"].tolist()))
    steps = steps.assign(slice_id=pd.array([None] * len(steps), dtype="Int64"))[STEP_COLUMNS]
    return steps.astype(_STEP_DTYPES), slice_ids


_STEP_DTYPES = {"step": "int64", "name": "string", "slice_id": "Int64", "cpu_start_ns": "int64",
                "cpu_end_ns": "int64", "cpu_dur_ns": "int64"}
