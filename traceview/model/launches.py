"""Launch attribution: GPU events -> launch calls -> steps, as grouped rows.

All joins run in the trace processor (``sql/launches.sql``); pandas receives
one row per distinct (step, kernel, launch API, op, dtypes, annotation).
"""

from __future__ import annotations

import pandas as pd

from traceview.engine import Trace
from traceview.model.sql import prepare, run_sql_file, sql_text
from traceview.model.steps import StepSelection

GROUP_COLUMNS = ["step", "outside", "kernel", "kind", "launch_api", "op", "op_type0", "op_type1", "annotation",
                 "launches", "gpu_dur_ns", "first_gpu_ts", "last_gpu_end"]
GRAPH_LAUNCH_APIS = ("cudaGraphLaunch", "hipGraphLaunch", "cuGraphLaunch")


def _create_step_table(trace: Trace, steps: pd.DataFrame) -> None:
    rows = ", ".join(
        f"({int(r.step)}, {'NULL' if pd.isna(r.slice_id) else int(r.slice_id)}, {int(r.cpu_start_ns)}, "
        f"{int(r.cpu_end_ns)})" for r in steps.itertuples(index=False))
    trace.query(f"""
        CREATE OR REPLACE PERFETTO TABLE tv_step AS
        WITH v(step, slice_id, cpu_start_ns, cpu_end_ns) AS (VALUES {rows})
        SELECT * FROM v ORDER BY step""")


def _correlated_share(trace: Trace) -> tuple[int, int]:
    row = trace.query("""
        select (select count(*) from tv_gpu_event) as gpu,
               (select count(*) from tv_gpu_event g
                where +g.correlation in (select correlation from tv_launch_call)) as linked""")
    return int(row.gpu.iloc[0]), int(row.linked.iloc[0])


def launch_groups(trace: Trace, selection: StepSelection) -> tuple[pd.DataFrame, list[str]]:
    """Grouped launches of ``trace`` attributed to ``selection``'s steps.

    Returns (frame, warnings). Columns: GROUP_COLUMNS plus ``graph_replayed``
    (bool). ``step`` is <NA> for launches outside every step; ``outside`` then
    says why: before_first_step, after_last_step, between_steps, no_launch.
    When no GPU event carries a correlation id that matches a launch call,
    GPU events are attributed by time to the GPU-side step annotations.
    """
    prepare(trace, "gpu_events.sql")
    _create_step_table(trace, selection.steps)
    warnings: list[str] = []
    gpu, linked = _correlated_share(trace)
    if gpu and not linked:
        trace.query(sql_text("fallback_gpu_time.sql"))
        warnings.append(f"no launch call shares a correlation id with the {gpu} GPU events: attributed them by GPU "
                        "time to the GPU-side step annotations (gpu_user_annotation) instead")
    else:
        trace.query(sql_text("launches.sql"))
    trace.query(sql_text("launch_annotations.sql"))
    groups = run_sql_file(trace, "launch_groups.sql")
    if groups.empty:
        groups = pd.DataFrame({c: pd.Series(dtype="object") for c in GROUP_COLUMNS})
    groups = groups.astype({"step": "Int64", "launches": "int64", "gpu_dur_ns": "int64"})
    groups["graph_replayed"] = groups["launch_api"].isin(GRAPH_LAUNCH_APIS).astype(bool)
    return groups, warnings
