"""Per-step launch counts: the result every report, diff and check is built from."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from traceview.engine.config import EngineConfig
from traceview.engine.formats import ProgressFn, default_cache_dir
from traceview.errors import TraceviewError
from traceview.model.categories import CategoryRule, categorize, category_order, load_category_rules
from traceview.model.columns import typed
from traceview.model.launches import GROUP_DTYPES, frame_warnings, launch_groups
from traceview.model.steps import CANDIDATE_DTYPES, empty_candidates, find_steps, marker_names_pattern

if TYPE_CHECKING:  # imported at run time only where a trace is loaded: not for a cached result
    from traceview.engine import ShardedTrace, Trace

OUTSIDE_REASONS = ("before_first_step", "after_last_step", "between_steps", "no_launch")
# The dtypes of LaunchCounts' frames: fixed here, whichever way the counts were made (counted,
# read back from the result cache, or sent back by a worker process).
LAUNCH_DTYPES = {**GROUP_DTYPES, "graph_replayed": "bool", "src_dtype": "string", "dst_dtype": "string",
                 "dtype_change": "string", "category": "string", "rule": "string"}
STEP_DTYPES = {"step": "int64", "name": "string", "cpu_start_ns": "int64", "cpu_end_ns": "int64",
               "cpu_dur_ns": "int64", "gpu_start_ns": "Int64", "gpu_end_ns": "Int64", "gpu_span_ns": "Int64",
               "gpu_busy_ns": "int64", "launches": "int64", "graph_replayed": "int64", "direct": "int64"}
FRAME_DTYPES = {"category": "string", "frame": "string", "launches": "int64", "per_step": "float64"}
KERNEL_DTYPES = {"category": "string", "rule": "string", "kernel": "string", "src_dtype": "string",
                 "dst_dtype": "string", "op": "string", "annotation": "string", "launch_api": "string",
                 "launches": "int64", "gpu_dur_ns": "int64", "per_step": "float64"}


def _rows_where(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """``frame[mask]``, as a slice when the selected rows are one block.

    Launches come ordered by step (NULLs first, model/launches.py), so the rows of a run of steps are one
    block: a slice shares the columns, where a mask copies every string (~50 ms for a 1 GB trace's names).
    """
    rows = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        return frame.iloc[rows[0]:rows[-1] + 1]
    return frame.iloc[rows]


@dataclass(frozen=True)
class LaunchCounts:
    """Launch counts of one trace.

    ``launches``: one row per distinct (step, kernel, launch_api, op, dtypes,
    annotation, frame) with ``launches`` (int64), ``gpu_dur_ns`` (int64), ``category``,
    ``graph_replayed``; ``step`` is <NA> outside every step (``outside`` says why);
    ``frame`` is the source frame (see ``by_frame``).
    ``steps``: one row per step (see ``steps_table``).
    Dtypes are LAUNCH_DTYPES and STEP_DTYPES; text that is absent (no op, no
    annotation, no dtypes) is <NA>.
    """

    path: str
    steps: pd.DataFrame
    launches: pd.DataFrame
    categories: list[str]
    step_marker: str
    step_regex: str
    warnings: list[str] = field(default_factory=list)
    # Every step-marker family that matched (model/steps.py CANDIDATE_COLUMNS), the chosen one flagged.
    step_candidates: pd.DataFrame = field(default_factory=empty_candidates)
    # python_function slices (with_stack) in the trace: 0 means no launch can have a source frame.
    python_frames: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", typed(self.steps, STEP_DTYPES))
        object.__setattr__(self, "launches", typed(self.launches, LAUNCH_DTYPES))
        object.__setattr__(self, "step_candidates", typed(self.step_candidates, CANDIDATE_DTYPES))

    # The launches in steps and the pivot behind per_step() are made once per result (not fields, which
    # the result cache stores), as one command asks for them several times (a diff: 6 and 2 times);
    # callers get copies, cheap as a copy shares the strings (Arrow or Python objects).
    @functools.cached_property
    def _in_steps(self) -> pd.DataFrame:
        return _rows_where(self.launches, self.launches["step"].notna())

    def in_steps(self) -> pd.DataFrame:
        """The rows of ``launches`` attributed to a step."""
        return self._in_steps.copy()

    def per_step(self) -> pd.DataFrame:
        """Steps x categories: launches per step (int64), index ``step``; every category is a column."""
        return self._per_step.copy()

    @functools.cached_property
    def _per_step(self) -> pd.DataFrame:
        inside = self._in_steps
        # groupby + unstack: the same table as pivot_table, in a quarter of the time.
        table = inside.groupby(["step", "category"], observed=True)["launches"].sum().unstack(fill_value=0)
        table = table.reindex(index=self.steps["step"].to_numpy(), columns=self.categories, fill_value=0)
        table.index.name = "step"
        table.columns.name = None
        return table.astype("int64")

    def outside_steps(self) -> dict[str, int]:
        """GPU events attributed to no step, by reason (every reason present, zeros included)."""
        outside = self.launches[self.launches["step"].isna()]
        sums = outside.groupby("outside")["launches"].sum()
        return {reason: int(sums.get(reason, 0)) for reason in OUTSIDE_REASONS}

    @property
    def total_gpu_events(self) -> int:
        return int(self.launches["launches"].sum())

    def steady_steps(self, skip: int = 0) -> pd.DataFrame:
        """Steps after dropping the first ``skip`` (warm-up).

        Raises TraceviewError when ``skip`` leaves no step: a summary of no steps would read 0.
        """
        if skip and skip >= len(self.steps):
            raise TraceviewError(self.path, f"--skip {skip} leaves no steps: the trace has {len(self.steps)} "
                                            f"step(s) ({self.step_marker})")
        return self.steps.iloc[skip:]

    def summary(self, skip: int = 0) -> pd.DataFrame:
        """Per category over steady-state steps: mean, median, min, max launches per step.

        Index: category (plus ``total``, ``graph_replayed``, ``direct``). Columns float64.
        """
        steady = self.steady_steps(skip)["step"].to_numpy()
        table = self.per_step().loc[steady]
        table["total"] = table.sum(axis=1)
        extra = self.steps.set_index("step").loc[steady, ["graph_replayed", "direct"]]
        table = pd.concat([table, extra], axis=1)
        if table.empty:
            return pd.DataFrame(columns=["mean", "median", "min", "max"], dtype="float64")
        return pd.DataFrame({"mean": table.mean(), "median": table.median(), "min": table.min(),
                             "max": table.max()}).astype("float64")

    def steady_launches(self, skip: int = 0) -> tuple[pd.DataFrame, int]:
        """The launch groups of the steady steps (``skip`` dropped) and how many steady steps there are."""
        steady = self.steady_steps(skip)["step"]
        rows = self.in_steps()
        return (rows if not skip else _rows_where(rows, rows["step"].isin(steady))), len(steady)

    def kernels(self, skip: int = 0) -> pd.DataFrame:
        """Per kernel name (and dtype pair) over steady steps: launches per step, category, launching op.

        Columns (KERNEL_DTYPES): category, rule (the id of the category rule that matched, "" =
        none), kernel, src_dtype, dst_dtype, op, annotation, launch_api (string, <NA> = none),
        launches (total, int64), gpu_dur_ns (int64), per_step (float64 mean over steady steps).
        """
        rows, steps = self.steady_launches(skip)
        keys = ["category", "rule", "kernel", "src_dtype", "dst_dtype", "op", "annotation", "launch_api"]
        grouped = rows.groupby(keys, dropna=False, observed=True).agg(
            launches=("launches", "sum"), gpu_dur_ns=("gpu_dur_ns", "sum")).reset_index()
        grouped["per_step"] = grouped["launches"] / max(steps, 1)
        grouped = grouped.sort_values(["category", "launches"], ascending=[True, False], ignore_index=True)
        return typed(grouped, KERNEL_DTYPES)[list(KERNEL_DTYPES)]

    def by_frame(self, skip: int = 0) -> pd.DataFrame:
        """Launches per steady step by category and source frame (the launch call's innermost user-code
        Python frame, ``FILE(LINE): FUNCTION``; <NA>: none, e.g. no with_stack or a graph replay).

        Columns (FRAME_DTYPES): category, frame (string), launches (total over steady steps, int64),
        per_step (float64 mean over steady steps). Categories in rule order, then most launches first.
        """
        rows, steps = self.steady_launches(skip)
        grouped = rows.groupby(["category", "frame"], dropna=False, observed=True)["launches"].sum().reset_index()
        grouped["per_step"] = grouped["launches"] / max(steps, 1)
        rank = {name: i for i, name in enumerate(self.categories)}
        grouped["order"] = grouped["category"].map(rank).fillna(len(rank))
        grouped = grouped.sort_values(["order", "launches", "frame"], ascending=[True, False, True], ignore_index=True)
        return typed(grouped, FRAME_DTYPES)[list(FRAME_DTYPES)]

    def frame_warnings(self) -> list[str]:
        """Why launches lack a source ``frame``: no Python frames recorded, or graph replays (see by_frame)."""
        return frame_warnings(self.launches, self.python_frames)

    def irregular_steps(self, skip: int = 0) -> list[int]:
        """Steady steps whose total launch count differs from the most common one."""
        steady = self.steady_steps(skip)
        if steady.empty:
            return []
        mode = steady["launches"].mode().iloc[0]
        return steady.loc[steady["launches"] != mode, "step"].astype(int).tolist()


def steps_table(steps: pd.DataFrame, launches: pd.DataFrame) -> pd.DataFrame:
    """Steps with GPU extent and launch totals.

    Columns (STEP_DTYPES): step, name, cpu_start_ns, cpu_end_ns, cpu_dur_ns, gpu_start_ns,
    gpu_end_ns (first GPU event launched in the step starts, last one ends; Int64, <NA> if
    none), gpu_span_ns (gpu_end_ns - gpu_start_ns: the step's GPU time span, gaps included;
    <NA> if none), gpu_busy_ns (summed duration of the step's GPU events: GPU busy time;
    events that overlap count twice), launches, graph_replayed, direct (int64).
    """
    inside = launches[launches["step"].notna()]
    by_step = inside.groupby("step").agg(gpu_start_ns=("first_gpu_ts", "min"), gpu_end_ns=("last_gpu_end", "max"),
                                         gpu_busy_ns=("gpu_dur_ns", "sum"), launches=("launches", "sum"))
    graph = inside[inside["graph_replayed"]].groupby("step")["launches"].sum()
    out = steps.drop(columns=["slice_id"], errors="ignore").set_index("step").join(by_step)
    out["graph_replayed"] = graph.reindex(out.index).fillna(0).astype("int64")
    out["launches"] = out["launches"].fillna(0).astype("int64")
    out["direct"] = out["launches"] - out["graph_replayed"]
    out["gpu_busy_ns"] = out["gpu_busy_ns"].fillna(0).astype("int64")
    out["gpu_start_ns"] = out["gpu_start_ns"].astype("Int64")
    out["gpu_end_ns"] = out["gpu_end_ns"].astype("Int64")
    out["gpu_span_ns"] = out["gpu_end_ns"] - out["gpu_start_ns"]
    return typed(out.reset_index(), STEP_DTYPES)[list(STEP_DTYPES)]


def count_launches(trace: Trace | ShardedTrace, step_marker: str | None = None,
                   rules: tuple[CategoryRule, ...] | None = None, *,
                   frames_from: Sequence[str] | None = None) -> LaunchCounts:
    """Finds steps, attributes every GPU event to a step and categorizes it.

    ``step_marker`` is a regex overriding the packaged step markers; ``rules``
    replace the packaged category rules; ``frames_from`` (path prefixes, e.g.
    ``["vllm/"]``) replaces rules/frames.toml in deciding which Python frames
    are user code (the ``frame`` column).
    """
    rules = rules or load_category_rules()
    selection = find_steps(trace, step_marker)
    groups, warnings, python_frames = launch_groups(trace, selection, frames_from)
    launches = categorize(groups, rules)
    warnings = selection.warnings + warnings + _load_warnings(trace)
    steps = steps_table(selection.steps, launches)
    counts = LaunchCounts(str(trace.path), steps, launches, category_order(rules), selection.marker,
                          selection.regex, warnings, selection.candidates, python_frames)
    outside = counts.outside_steps()
    if outside["no_launch"]:
        warnings.append(f"{outside['no_launch']} GPU events have no launch call in the trace (counted outside steps)")
    return counts


def _load_warnings(trace: Trace | ShardedTrace) -> list[str]:
    """What the load lost (conservation), then what it had to do to keep everything."""
    if trace.ledger is not None:
        return list(trace.load_problems) + list(trace.ledger.notes)
    lost = [s for s in trace.load_stats if s.name.startswith(("slice_drop", "json_", "misplaced"))]
    if not lost:
        return []
    return ["the trace processor dropped or misplaced events while loading: " + ", ".join(map(str, lost))]


def analyze(path: str | Path, step_marker: str | None = None, rules_path: Path | None = None,
            config: EngineConfig | None = None, on_progress: ProgressFn | None = None, *,
            frames_from: Sequence[str] | None = None) -> LaunchCounts:
    """Opens ``path``, counts its launches and closes it: the one call notebooks and the CLI use.

    ``frames_from``: see ``count_launches``."""
    from traceview.engine.api import open_sharded  # the loaders: imported only once a trace is opened

    rules = load_category_rules(rules_path)
    config = replace(config or EngineConfig(cache_dir=default_cache_dir() / "wasm"), lean=True,
                     keep_names=marker_names_pattern(step_marker))
    with open_sharded(path, config, on_progress) as trace:
        return count_launches(trace, step_marker, rules, frames_from=frames_from)



COUNTS_SCHEMA = "traceview.counts/2"


def counts_document(counts: LaunchCounts, skip: int = 0) -> dict:
    """The ``traceview.counts/2`` JSON document (see docs/json-schema.md)."""
    per_step = counts.per_step().to_dict("index")  # step -> {category: launches}, in category order
    steps = []
    for row in counts.steps.itertuples(index=False):
        span_ms = None if pd.isna(row.gpu_span_ns) else round(int(row.gpu_span_ns) / 1e6, 6)
        steps.append({
            "index": int(row.step), "name": str(row.name), "cpu_ms": round(int(row.cpu_dur_ns) / 1e6, 6),
            "gpu_span_ms": span_ms, "gpu_busy_ms": round(int(row.gpu_busy_ns) / 1e6, 6),
            "total": int(row.launches), "graph_replayed": int(row.graph_replayed),
            "direct": int(row.direct),
            "categories": {c: int(n) for c, n in per_step[row.step].items()},
        })
    summary = counts.summary(skip)
    outside = counts.outside_steps()
    return {
        "schema": COUNTS_SCHEMA,
        "trace": counts.path,
        "step_marker": counts.step_regex or counts.step_marker,
        "skip": skip,
        "steps": steps,
        "summary": {name: {k: float(v) for k, v in row.items()} for name, row in summary.iterrows()},
        "outside_steps": sum(outside.values()),
        "outside_steps_by_reason": outside,
        "warnings": list(counts.warnings),
    }
