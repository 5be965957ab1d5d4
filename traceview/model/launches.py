"""Launch attribution: GPU events -> launch calls -> steps, as grouped rows.

All joins run in the trace processor (``sql/launches.sql``); pandas receives
one row per distinct (step, kernel, launch API, op, dtypes, annotation).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from traceview.engine.parallel import on_shards
from traceview.errors import RulesError
from traceview.model.columns import empty, typed
from traceview.model.rules import compile_regex, read_toml
from traceview.model.sql import run_sql_file, shards_of, sql_literal
from traceview.model.steps import StepSelection

if TYPE_CHECKING:
    from traceview.engine import ShardedTrace, Trace

# Columns of the grouped launches and their dtypes (<NA>: none, e.g. no op above the launch call;
# ``frame``: no user-code Python frame above it, see frame_filter).
GROUP_DTYPES = {"step": "Int64", "outside": "string", "kernel": "string", "kind": "string", "launch_api": "string",
                "op": "string", "op_type0": "string", "op_type1": "string", "annotation": "string",
                "frame": "string", "launches": "int64", "gpu_dur_ns": "int64", "first_gpu_ts": "Int64",
                "last_gpu_end": "Int64"}
GROUP_COLUMNS = list(GROUP_DTYPES)
GROUP_KEYS = GROUP_COLUMNS[:GROUP_COLUMNS.index("launches")]
GRAPH_LAUNCH_APIS = ("cudaGraphLaunch", "hipGraphLaunch", "cuGraphLaunch")
# Events with Python frames over events without them: 1.18x in the demo pair, 8.6x in
# ../shared/traces/public/vllm-prefilldecode-piecewise-mi300x (17,038 of 19,289 events are frames).
NO_FRAMES_WARNING = ("no Python frames: record with with_stack=True (traceview collect ... --with-stack; traces "
                     "grow about 1.2x to 9x in events) to see which function launched each kernel")
_FRAME_FILE = re.compile(r"^(?P<file>.*)\(\d+\): ")


@dataclass(frozen=True)
class FrameFilter:
    """Which Python frames are user code (rules/frames.toml, or ``frames_from`` prefixes)."""

    exclude: tuple[re.Pattern, ...] = ()
    stdlib: bool = False
    prefixes: tuple[str, ...] | None = None  # given: a frame counts only if its file starts with one

    def is_user(self, frame: str) -> bool:
        """Whether ``frame`` (``FILE(LINE): FUNCTION``) is user code; a name without a file is not."""
        match = _FRAME_FILE.match(frame)
        if match is None:
            return False
        file = match["file"]
        if self.prefixes is not None:
            return file.startswith(self.prefixes)
        if self.stdlib and re.split(r"[/.]", file, maxsplit=1)[0] in sys.stdlib_module_names:
            return False
        return not any(p.search(file) for p in self.exclude)


@lru_cache(maxsize=8)
def frame_filter(frames_from: tuple[str, ...] | None = None) -> FrameFilter:
    """The packaged filter (rules/frames.toml), or only ``frames_from``'s path prefixes when given."""
    if frames_from is not None:
        if not frames_from or not all(isinstance(p, str) and p for p in frames_from):
            raise RulesError(None, f"frames_from: expected non-empty path prefixes, got {list(frames_from)!r}")
        return FrameFilter(prefixes=tuple(frames_from))
    data, source = read_toml(None, "frames.toml")
    patterns = data.get("exclude")
    if not isinstance(patterns, list):
        raise RulesError(source, "needs exclude = [regex, ...]")
    exclude = tuple(compile_regex(p, source, f"exclude #{i + 1}") for i, p in enumerate(patterns))
    return FrameFilter(exclude, bool(data.get("stdlib", False)))


def _create_user_frame_table(trace: Trace, frames: FrameFilter) -> int:
    """Creates tv_user_frame_name (the distinct Python frame names that are user code); returns how
    many Python frames the trace holds."""
    names = trace.query("select name, count(*) as n from slice where category = 'python_function' "
                        "and name is not null group by name")
    users = [n for n in names["name"].tolist() if frames.is_user(n)]
    rows = (f"WITH v(name) AS (VALUES {', '.join(f'({sql_literal(n)})' for n in users)}) SELECT name FROM v"
            if users else "SELECT NULL AS name WHERE 0")
    trace.query(f"CREATE OR REPLACE PERFETTO TABLE tv_user_frame_name AS {rows}")
    return int(names["n"].sum())


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


def _grouped(trace: Trace, attribution: str, frames: FrameFilter) -> tuple[pd.DataFrame, int]:
    """The shard's launch groups, and how many Python frames it holds."""
    run_sql_file(trace, attribution)
    run_sql_file(trace, "launch_annotations.sql")
    python_frames = _create_user_frame_table(trace, frames)
    run_sql_file(trace, "launch_frames.sql")
    return typed(run_sql_file(trace, "launch_groups.sql"), GROUP_DTYPES), python_frames


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One shard's groups, or the groups of all shards added up (a group can span shards)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty(GROUP_DTYPES)
    if len(frames) == 1:
        return frames[0]
    whole = pd.concat(frames, ignore_index=True)
    return whole.groupby(GROUP_KEYS, dropna=False, sort=False).agg(
        launches=("launches", "sum"), gpu_dur_ns=("gpu_dur_ns", "sum"), first_gpu_ts=("first_gpu_ts", "min"),
        last_gpu_end=("last_gpu_end", "max")).reset_index()


def _fallback_warning(shards: list[Trace], gpu: int, steps: int) -> str:
    """Says where GPU events without a launch call went: it depends on the GPU-side annotations there are."""
    annotated = sum(on_shards(lambda shard: int(shard.query("select count(*) as n from tv_gpu_step").n.iloc[0]),
                              shards))
    lead = f"no launch call shares a correlation id with the {gpu} GPU events: "
    if annotated:
        return lead + "attributed them by GPU time to the GPU-side step annotations (gpu_user_annotation) instead"
    if steps == 1:
        return lead + "all are counted in the one step, as the trace has no GPU-side step annotation to divide them"
    return lead + "none is in a step, as no step has a GPU-side annotation (gpu_user_annotation) to place them by time"


def launch_groups(trace: Trace | ShardedTrace, selection: StepSelection,
                  frames_from: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str], int]:
    """Grouped launches of ``trace`` attributed to ``selection``'s steps.

    Returns (frame, warnings, Python frames in the trace). Columns: GROUP_COLUMNS plus ``graph_replayed``
    (bool). ``step`` is <NA> for launches outside every step; ``outside`` then
    says why: before_first_step, after_last_step, between_steps, no_launch.
    ``frame`` is the launch call's innermost user-code Python frame
    (``FILE(LINE): FUNCTION``, see ``frame_filter``; ``frames_from``: path
    prefixes that alone decide), <NA> when there is none, and always <NA> for a
    graph replay, whose launch call is the replay, not the code that captured it.
    When no GPU event carries a correlation id that matches a launch call,
    GPU events are attributed by time to the GPU-side step annotations.
    With shards, each shard is attributed on its own, all at once, and the
    groups are added up: every shard holds all the steps and, with each GPU
    event, the call that launched it.
    """
    frames = frame_filter(None if frames_from is None else tuple(frames_from))
    shards = shards_of(trace)
    shares = on_shards(lambda shard: _prepare(shard, selection, shards.index(shard)), shards)
    gpu, linked, calls = (sum(share[i] for share in shares) for i in (0, 1, 2))
    if trace.ledger is not None:  # a lean load does not feed calls without GPU work: the file's count
        calls = trace.ledger.launch_calls
    warnings: list[str] = []
    if calls and not gpu:
        warnings.append(f"GPU activity was not recorded: {calls} CUDA/HIP runtime or driver calls but no GPU events, "
                        "so every count is 0 (torch.profiler needs ProfilerActivity.CUDA; rocprofv3 --kernel-trace)")
    attribution = "fallback_gpu_time.sql" if gpu and not linked else "launches.sql"
    results = on_shards(lambda shard: _grouped(shard, attribution, frames), shards)
    groups = _combine([r[0] for r in results])
    if attribution != "launches.sql":
        warnings.append(_fallback_warning(shards, gpu, len(selection.steps)))
    groups = typed(groups, GROUP_DTYPES)
    groups["graph_replayed"] = groups["launch_api"].isin(GRAPH_LAUNCH_APIS).fillna(False).astype(bool)
    return groups, warnings, sum(r[1] for r in results)


def frame_warnings(groups: pd.DataFrame, python_frames: int) -> list[str]:
    """Why launches have no source frame: the trace has no Python frames, or they are graph replays.

    ``groups``: launch groups (``graph_replayed``, ``launches``); ``python_frames``: how many
    python_function slices the trace holds. Said only where source frames are asked for: most
    traces are recorded without with_stack, and their counts need no such note.
    """
    if groups.empty:
        return []
    if not python_frames:
        return [NO_FRAMES_WARNING]
    count = int(groups.loc[groups["graph_replayed"], "launches"].sum())
    if not count:
        return []
    return [f"{count} GPU events are graph replays, which have no frames at replay time: their source frame would be "
            "the replay call, not the code that captured them, so they have none"]
