"""Launch attribution: GPU events -> launch calls -> steps, as grouped rows.

All joins run in the trace processor (``sql/launches.sql``); pandas receives
one row per distinct (step, kernel, launch API, op, dtypes, annotation).
"""

from __future__ import annotations

import pandas as pd

from traceview.engine import ShardedTrace, Trace
from traceview.model.sql import on_shards, run_sql_file, shards_of
from traceview.model.steps import StepSelection

GROUP_COLUMNS = ["step", "outside", "kernel", "kind", "launch_api", "op", "op_type0", "op_type1", "annotation",
                 "launches", "gpu_dur_ns", "first_gpu_ts", "last_gpu_end"]
GRAPH_LAUNCH_APIS = ("cudaGraphLaunch", "hipGraphLaunch", "cuGraphLaunch")


def _create_step_table(trace: Trace, steps: pd.DataFrame, slice_ids: pd.Series) -> None:
    rows = ", ".join(
        f"({int(r.step)}, {'NULL' if pd.isna(slice_id) else int(slice_id)}, {int(r.cpu_start_ns)}, "
        f"{int(r.cpu_end_ns)})" for r, slice_id in zip(steps.itertuples(index=False), slice_ids))
    trace.query(f"""
        CREATE OR REPLACE PERFETTO TABLE tv_step AS
        WITH v(step, slice_id, cpu_start_ns, cpu_end_ns) AS (VALUES {rows})
        SELECT * FROM v ORDER BY step""")


def _correlated_share(trace: Trace) -> tuple[int, int, int]:
    """(GPU events, GPU events whose correlation id a launch call has, runtime/driver calls loaded)."""
    row = trace.query("""
        select (select count(*) from tv_gpu_event) as gpu,
               (select count(*) from tv_gpu_event g
                where +g.correlation in (select correlation from tv_launch_call)) as linked,
               (select count(*) from tv_launch_call) as calls""")
    return int(row.gpu.iloc[0]), int(row.linked.iloc[0]), int(row.calls.iloc[0])


def _prepare(trace: Trace, selection: StepSelection, shard: int) -> tuple[int, int, int]:
    run_sql_file(trace, "gpu_events.sql")
    _create_step_table(trace, selection.steps, selection.slice_ids(shard))
    return _correlated_share(trace)


def _grouped(trace: Trace, attribution: str) -> pd.DataFrame:
    run_sql_file(trace, attribution)
    run_sql_file(trace, "launch_annotations.sql")
    return run_sql_file(trace, "launch_groups.sql")


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One shard's groups, or the groups of all shards added up (a group can span shards)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in GROUP_COLUMNS})
    if len(frames) == 1:
        return frames[0]
    keys = GROUP_COLUMNS[:9]
    whole = pd.concat(frames, ignore_index=True)
    return whole.groupby(keys, dropna=False, sort=False).agg(
        launches=("launches", "sum"), gpu_dur_ns=("gpu_dur_ns", "sum"), first_gpu_ts=("first_gpu_ts", "min"),
        last_gpu_end=("last_gpu_end", "max")).reset_index()


def launch_groups(trace: Trace | ShardedTrace, selection: StepSelection) -> tuple[pd.DataFrame, list[str]]:
    """Grouped launches of ``trace`` attributed to ``selection``'s steps.

    Returns (frame, warnings). Columns: GROUP_COLUMNS plus ``graph_replayed``
    (bool). ``step`` is <NA> for launches outside every step; ``outside`` then
    says why: before_first_step, after_last_step, between_steps, no_launch.
    When no GPU event carries a correlation id that matches a launch call,
    GPU events are attributed by time to the GPU-side step annotations.
    With shards, each shard is attributed on its own, all at once, and the
    groups are added up: every shard holds all the steps and, with each GPU
    event, the call that launched it.
    """
    shards = shards_of(trace)
    shares = on_shards(lambda shard: _prepare(shard, selection, shards.index(shard)), shards)
    gpu, linked, calls = (sum(share[i] for share in shares) for i in (0, 1, 2))
    if trace.ledger is not None:  # a lean load does not feed calls without GPU work: the file's count
        calls = trace.ledger.launch_calls
    warnings: list[str] = []
    if calls and not gpu:
        warnings.append(f"GPU activity was not recorded: {calls} CUDA/HIP runtime or driver calls but no GPU events, "
                        "so every count is 0 (torch.profiler needs ProfilerActivity.CUDA; rocprofv3 --kernel-trace)")
    attribution = "launches.sql"
    if gpu and not linked:
        attribution = "fallback_gpu_time.sql"
        warnings.append(f"no launch call shares a correlation id with the {gpu} GPU events: attributed them by GPU "
                        "time to the GPU-side step annotations (gpu_user_annotation) instead")
    groups = _combine(on_shards(lambda shard: _grouped(shard, attribution), shards))
    groups = groups.astype({"step": "Int64", "launches": "int64", "gpu_dur_ns": "int64"})
    groups["graph_replayed"] = groups["launch_api"].isin(GRAPH_LAUNCH_APIS).astype(bool)
    return groups, warnings
