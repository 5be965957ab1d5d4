"""``traceview doctor``: is a trace fit for counting launches per step, and if not, what to change.

``collect`` loads a trace once (every event: a launch call without GPU work
is only in a full load), counts it as ``analyze`` does and reads a few facts
from the same processor (``TraceFacts``). ``diagnose`` turns counts and facts
into one ``Finding`` per check, each PASS, WARN or FAIL with its numbers and a
one-line fix; ``rank_finding`` compares the ranks of a directory; ``verdict``
sums them up. FAIL means the counts themselves are unreliable; WARN means they
hold, but something a reader should know (or can improve) was found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from traceview.analyses.summary import rank_disagreements, rank_names
from traceview.engine import EngineConfig, Trace, open_trace
from traceview.engine.formats import ProgressFn, default_cache_dir
from traceview.engine.kineto.ledger import COUNTED_KINDS, kind_label
from traceview.model.categories import load_category_rules
from traceview.model.counts import LaunchCounts, count_launches
from traceview.model.launches import GRAPH_LAUNCH_APIS, NO_FRAMES_WARNING
from traceview.model.ranks import trace_files
from traceview.model.sql import sql_literal
from traceview.model.steps import GPU_SIDE_CATEGORIES

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
STATUSES = (PASS, WARN, FAIL)
# Runtime/driver calls that enqueue GPU work, as GLOB patterns on the call's name: a call matching none
# (cudaStreamSynchronize, cudaEventRecord, cudaLaunchHostFunc, ...) never has a GPU event of its own.
LAUNCH_API_GLOBS = ("*LaunchKernel*", "*LaunchCooperativeKernel*", "*GraphLaunch*", "*Memcpy*", "*Memset*")
# Timestamps coarser than this cannot order a launch call against a step boundary reliably.
FINE_RESOLUTION_NS = 1000
# A step is irregular when its launches differ from the steady median by more than this many robust
# standard deviations (1.4826 x the median absolute deviation) of the steady steps.
SPREAD_SIGMAS = 3.0
_CPU_SIDE = "(category is null or category not in ({}))".format(", ".join(map(sql_literal, GPU_SIDE_CATEGORIES)))


@dataclass(frozen=True)
class Finding:
    """One check on one trace (or on the ranks of a directory): ``status`` PASS/WARN/FAIL, a one-line
    ``summary`` with the numbers, a one-line ``fix`` ("" when nothing needs fixing), and ``numbers``
    (JSON-ready: ints, floats, strings, lists and dicts of them)."""

    trace: str
    check: str
    status: str
    summary: str
    fix: str = ""
    numbers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    status: str  # the worst status of the findings
    summary: str


@dataclass(frozen=True)
class TraceFacts:
    """What the counts do not say about a trace, read from its full load. Times in ns."""

    path: str
    format: str
    file_events: dict[str, int] | None  # kernels, memcpys, memsets, launch calls in the file (None: not counted)
    not_imported: dict[str, int]  # of those, not in the processor, by kind
    on_lanes: dict[str, int]  # kept, but moved to an overlap lane, by kind
    load_notes: tuple[str, ...]  # the engine's own lines on what the load lost or had to do
    launch_calls: int  # runtime/driver calls with a correlation id
    gpu_events: int
    orphan_calls: dict[str, int]  # launch calls (LAUNCH_API_GLOBS) no GPU event carries: by API name
    orphan_calls_in_steps: int
    unlaunched_gpu: int  # GPU events whose correlation id no launch call in the trace carries
    unlaunched_gpu_before_window: int  # of those, the ones that start before the CPU window
    cpu_window: tuple[int, int] | None  # first CPU-side event starts, last one ends (None: no CPU side)
    gpu_before_window: int
    gpu_after_window: int  # GPU events that end after the CPU window
    replay_kernels: tuple[int, ...]  # GPU events of each graph launch, one number per replay
    resolution_ns: int  # the largest of 1, 10, 100, 1000, 1e6 ns that divides every slice timestamp
    first_ts_ns: int | None  # absolute (time_base_ns added back)
    time_base_ns: int


def _one(trace: Trace, sql: str) -> dict:
    return trace.query(sql).iloc[0].to_dict()


def _kind_counts(counter) -> dict[str, int]:
    return {kind_label(k, 2): int(counter[k]) for k in COUNTED_KINDS if counter[k]}


def _conservation(trace: Trace) -> tuple[dict | None, dict, dict, tuple[str, ...]]:
    """(file totals, not imported, on lanes, notes) by kind, from the engine's ledger (kineto/ledger.py)."""
    ledger = trace.ledger
    if ledger is None:  # fed to the processor as it is: only its own loss counters speak
        lost = tuple(f"{s} ({s.description})" for s in trace.load_stats if s.name.startswith(("slice_drop", "json_")))
        return None, {}, {}, lost
    missing = ledger.missing(trace.dropped_by_kind)  # the engine compared the processors with the ledger
    totals = {kind_label(k, 2): ledger.file_total(k) for k in COUNTED_KINDS}
    return totals, _kind_counts(missing), _kind_counts(ledger.on_lanes), \
        tuple(trace.load_problems) + tuple(ledger.notes)


def _cpu_window(trace: Trace) -> tuple[int, int] | None:
    """[first start, last end] of the CPU-side slices, in the processor's time (None: no CPU side)."""
    row = _one(trace, f"select min(ts) as lo, max(ts + dur) as hi from slice where dur >= 0 and {_CPU_SIDE}")
    return None if pd.isna(row["lo"]) else (int(row["lo"]), int(row["hi"]))


def _pairing(trace: Trace, cpu: tuple[int, int] | None) -> tuple[dict[str, int], int, int, int]:
    """Launch calls without GPU events (by name; how many inside a step) and GPU events without a launch call
    that start before the CPU window. Needs the tv_* tables count_launches made."""
    globs = " or ".join(f"l.name glob {sql_literal(g)}" for g in LAUNCH_API_GLOBS)
    orphans = f"""select l.name, l.ts from tv_launch_call l where ({globs})
                  and l.correlation not in (select correlation from tv_gpu_event where correlation is not null)"""
    names = trace.query(f"select name, count(*) as n from ({orphans}) group by name order by n desc, name")
    inside = _one(trace, f"""select count(*) as n from ({orphans}) o where exists
        (select 1 from tv_step s where o.ts >= s.cpu_start_ns and o.ts < s.cpu_end_ns)""")
    early_sql = "0" if cpu is None else f"sum(g.ts < {cpu[0]})"
    alone = _one(trace, f"""select count(*) as n, {early_sql} as early from tv_gpu_event g
        where g.correlation is null or g.correlation not in (select correlation from tv_launch_call)""")
    early = 0 if pd.isna(alone["early"]) else int(alone["early"])
    return dict(zip(names["name"].astype(str), names["n"].astype(int))), int(inside["n"]), int(alone["n"]), early


def _window(trace: Trace, cpu: tuple[int, int] | None) -> tuple[tuple[int, int] | None, int, int]:
    if cpu is None:
        return None, 0, 0
    lo, hi = cpu
    out = _one(trace, f"""select (select count(*) from tv_gpu_event where ts < {lo}) as before,
                                 (select count(*) from tv_gpu_event where ts + dur > {hi}) as after""")
    return (lo + trace.time_base_ns, hi + trace.time_base_ns), int(out["before"]), int(out["after"])


def _resolution(trace: Trace) -> tuple[int, int | None]:
    # The time base is a whole number of seconds, so rebasing keeps every divisor below 1 s.
    steps = (1_000_000, 1000, 100, 10)
    cols = ", ".join(f"sum(ts % {s} != 0) as r{s}" for s in steps)
    row = _one(trace, f"select min(ts) as lo, {cols} from slice")
    first = None if pd.isna(row["lo"]) else int(row["lo"]) + trace.time_base_ns
    return next((s for s in steps if first is not None and int(row[f"r{s}"]) == 0), 1), first


def read_facts(trace: Trace) -> TraceFacts:
    """Facts of a trace that ``count_launches`` has already counted (its tv_* tables are queried)."""
    totals, missing, lanes, notes = _conservation(trace)
    calls = _one(trace, "select (select count(*) from tv_launch_call) as calls, "
                        "(select count(*) from tv_gpu_event) as gpu")
    cpu = _cpu_window(trace)
    orphans, inside, alone, early = _pairing(trace, cpu)
    window, before, after = _window(trace, cpu)
    apis = ", ".join(map(sql_literal, GRAPH_LAUNCH_APIS))
    replays = trace.query(f"""select count(g.id) as k from tv_launch_call l join tv_gpu_event g using (correlation)
                              where l.name in ({apis}) group by l.id order by l.ts""")
    resolution, first = _resolution(trace)
    return TraceFacts(str(trace.path), trace.file.format, totals, missing, lanes, notes, int(calls["calls"]),
                      int(calls["gpu"]), orphans, inside, alone, early, window, before, after,
                      tuple(int(k) for k in replays["k"]), resolution, first, trace.time_base_ns)


def collect(path: str | Path, step_marker: str | None = None, rules_path: Path | None = None,
            config: EngineConfig | None = None,
            on_progress: ProgressFn | None = None) -> tuple[LaunchCounts, TraceFacts]:
    """Loads ``path`` once (every event, one processor), counts its launches and reads its facts."""
    rules = load_category_rules(rules_path)
    config = replace(config or EngineConfig(cache_dir=default_cache_dir() / "wasm"), lean=False, shards=1)
    with open_trace(path, config, on_progress) as trace:
        counts = count_launches(trace, step_marker, rules)
        return counts, read_facts(trace)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _listing(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {name}" for name, n in counts.items())


def check_conservation(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    """Events of the file that did not reach the processor (FAIL), or were moved to overlap lanes (kept)."""
    numbers = {"file": facts.file_events, "not_imported": facts.not_imported, "on_overlap_lanes": facts.on_lanes,
               "notes": list(facts.load_notes)}
    if facts.not_imported or (facts.file_events is None and facts.load_notes):
        lost = _listing(facts.not_imported) if facts.not_imported else "; ".join(facts.load_notes)
        return Finding(facts.path, "conservation", FAIL, f"events of the file did not reach the counts: {lost}",
                       "see the warnings (traceview counts TRACE); --strict turns this into exit 2 in CI", numbers)
    if facts.file_events is None:
        return Finding(facts.path, "conservation", PASS, "the trace processor reported no dropped events "
                       f"({facts.format}: fed as it is, no event ledger)", numbers=numbers)
    kept = f"; moved to overlap lanes, kept: {_listing(facts.on_lanes)}" if facts.on_lanes else ""
    return Finding(facts.path, "conservation", PASS,
                   "every GPU event and launch call of the file was imported "
                   f"({_listing({k: n for k, n in facts.file_events.items() if n}) or 'none'}){kept}",
                   numbers=numbers)


def check_gpu_activity(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    numbers = {"gpu_events": facts.gpu_events, "launch_calls": facts.launch_calls}
    if facts.gpu_events:
        return Finding(facts.path, "gpu-activity", PASS, f"{_plural(facts.gpu_events, 'GPU event')} recorded",
                       numbers=numbers)
    what = (f"{_plural(facts.launch_calls, 'CUDA/HIP launch-side call')} but no GPU events" if facts.launch_calls
            else "no GPU events and no launch calls (a CPU-only run?)")
    return Finding(facts.path, "gpu-activity", FAIL, f"GPU activity not recorded: {what}; every count is 0",
                   "record GPU activity: torch.profiler activities=[CPU, CUDA]; rocprofv3 --kernel-trace; "
                   "nsys --trace=cuda", numbers)


def check_pairing(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    """Launch calls without GPU events, GPU events without launch calls (counted outside steps)."""
    unlaunched = counts.outside_steps()["no_launch"]
    orphans = sum(facts.orphan_calls.values())
    numbers = {"launch_calls_without_gpu_events": facts.orphan_calls, "in_steps": facts.orphan_calls_in_steps,
               "gpu_events_without_launch_call": facts.unlaunched_gpu, "counted_outside_steps": unlaunched,
               "before_profiler_window": facts.unlaunched_gpu_before_window}
    check = "launch-pairing"
    if facts.gpu_events and facts.unlaunched_gpu == facts.gpu_events:
        return Finding(facts.path, check, FAIL, f"none of the {facts.gpu_events:,} GPU events has a launch call: "
                       "they cannot be attributed to the steps that launched them",
                       "record the runtime API too: rocprofv3 --runtime-trace; nsys --trace=cuda; "
                       "torch.profiler with ProfilerActivity.CPU", numbers)
    if facts.orphan_calls_in_steps:
        return Finding(facts.path, check, FAIL, f"{_plural(facts.orphan_calls_in_steps, 'launch call')} inside "
                       f"steps have no GPU event ({_listing(facts.orphan_calls)}): those steps are undercounted",
                       "GPU activity records were lost (CUPTI/roctracer buffer full?): profile fewer steps or "
                       "enlarge the activity buffer", numbers)
    parts = []
    if orphans:
        parts.append(f"{_plural(orphans, 'launch call')} outside steps without a GPU event "
                     f"({_listing(facts.orphan_calls)})")
    if facts.unlaunched_gpu:
        alone, early = facts.unlaunched_gpu, facts.unlaunched_gpu_before_window
        parts.append(f"{_plural(alone, 'GPU event')} without a launch call in the trace ({early:,} start before "
                     f"the profiled CPU window, {alone - early:,} lost), counted outside steps")
    if parts:
        return Finding(facts.path, check, WARN, "; ".join(parts),
                       "steps are unaffected; to see those launches, start the profiler earlier (a wait/warm-up "
                       "step) and stop it after the GPU is idle (torch.cuda.synchronize())", numbers)
    return Finding(facts.path, check, PASS, "every launch call has its GPU events and every GPU event its launch call",
                   numbers=numbers)


def check_copy_dtype(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    kernels = counts.kernels(skip)
    per_step = float(kernels.loc[kernels["category"] == "copy_dtype_unknown", "per_step"].sum())
    numbers = {"copy_dtype_unknown_per_step": per_step}
    if per_step:
        return Finding(facts.path, "copy-dtype", WARN, f"{per_step:g} copy kernels per step whose dtypes cannot be "
                       "told (no Input types: record_shapes off), counted as copy_dtype_unknown, not cast or copy",
                       "record with record_shapes=True (traceview collect ... records shapes by default)", numbers)
    return Finding(facts.path, "copy-dtype", PASS, "every copy kernel is a cast or a copy (no copy_dtype_unknown)",
                   numbers=numbers)


NSYS_FRAMES_FIX = ("to see which function launched each kernel, profile a few steps with torch.profiler "
                   "(traceview collect torch SCRIPT --with-stack); Nsight Systems exports hold no Python frames "
                   "traceview reads")


def check_python_frames(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    numbers = {"python_frames": counts.python_frames}
    if counts.python_frames:
        return Finding(facts.path, "python-frames", PASS, f"{_plural(counts.python_frames, 'python_function frame')}:"
                       " launches can be traced to their source (budget write --by frame)", numbers=numbers)
    # Nsight Systems exports carry no Python frames here: torch.profiler's with_stack is the way to get them.
    fix = (NSYS_FRAMES_FIX if facts.format.startswith("nsys") else NO_FRAMES_WARNING.split(": ", 1)[1])
    why = "" if facts.format.startswith("nsys") else " (with_stack off)"
    return Finding(facts.path, "python-frames", WARN, f"no python_function frames{why}: no launch can be "
                   "traced to the source line that made it", fix, numbers)


def check_graph_replays(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    kernels = pd.Series(facts.replay_kernels, dtype="int64")
    per_replay = ({"min": int(kernels.min()), "median": float(kernels.median()), "max": int(kernels.max())}
                  if len(kernels) else None)
    numbers = {"replays": len(kernels), "kernels_per_replay": per_replay}
    if not len(kernels):
        return Finding(facts.path, "graph-replays", PASS, "no CUDA/HIP graph replays: every launch is a direct call",
                       numbers=numbers)
    spread = (f"{kernels.iloc[0]:,}" if kernels.min() == kernels.max()
              else f"median {kernels.median():g} (min {kernels.min():,}, max {kernels.max():,})")
    return Finding(facts.path, "graph-replays", PASS, f"{_plural(len(kernels), 'graph replay')}, {spread} kernels per "
                   "replay: each counts every kernel it replays (graph_replayed), with no op or frame of its own",
                   numbers=numbers)


def check_step_markers(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    found = counts.step_candidates
    families = [{"marker": str(r.marker), "regex": str(r.regex), "steps": int(r.steps),
                 "median_ms": float(r.median_ms), "chosen": bool(r.chosen)} for r in found.itertuples(index=False)]
    numbers = {"families": families, "chosen": counts.step_marker, "steps": len(counts.steps)}
    listed = "; ".join(f"{f['marker']}: {f['steps']} steps, median {f['median_ms']:.3f} ms"
                       + (" (chosen)" if f["chosen"] else "") for f in families)
    if counts.step_marker == "whole-trace":
        record = ("emit one NVTX range per step (torch.cuda.nvtx.range_push/pop around each step)"
                  if facts.format.startswith("nsys") else "record steps with torch.profiler's schedule (prof.step())")
        return Finding(facts.path, "step-markers", WARN, "no step marker matched: the whole trace is one step",
                       f"name the per-step annotation: --step-marker REGEX (e.g. '^execute_model$'), or {record}",
                       numbers)
    if counts.step_marker == "custom":
        return Finding(facts.path, "step-markers", PASS, f"--step-marker {counts.step_regex}: "
                       f"{_plural(len(counts.steps), 'step')}", numbers=numbers)
    if len(families) > 1:
        return Finding(facts.path, "step-markers", WARN, f"{len(families)} marker families: {listed}",
                       "if the chosen family is not one step per decode step, pick another with --step-marker", numbers)
    return Finding(facts.path, "step-markers", PASS, listed, numbers=numbers)


def _step_label(steps: pd.DataFrame, step: int) -> str:
    return f"#{step} {steps.loc[steps['step'] == step, 'name'].iloc[0]}"


def check_irregular_steps(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    """Steps whose launches differ from the steady median by more than the steady spread (robust: MAD)."""
    table = counts.per_step()
    totals = table.sum(axis=1)
    steady = totals.iloc[skip:]
    numbers: dict = {"launches_per_step": [int(v) for v in totals], "skip": skip}
    if len(steady) < 2 or steady.nunique() == 1 and totals.nunique() == 1:
        what = ("1 step: nothing to compare" if len(totals) == 1
                else f"all {len(totals)} steps launch {totals.iloc[0]:,}")
        return Finding(facts.path, "irregular-steps", PASS, what, numbers=numbers)
    median = float(steady.median())
    allowed = SPREAD_SIGMAS * 1.4826 * float((steady - median).abs().median())
    numbers.update(median=median, allowed_deviation=allowed)
    if len(steady) < 3 and steady.nunique() > 1:
        return Finding(facts.path, "irregular-steps", WARN, f"the {len(steady)} steady steps differ "
                       f"({', '.join(f'{v:,}' for v in steady)} launches): too few steps to tell the steady state",
                       "profile more steps (at least 3 after --skip)", numbers)
    odd = [int(s) for s, v in totals.items() if abs(v - median) > allowed + 1e-9]
    numbers["irregular"] = odd
    if not odd:
        return Finding(facts.path, "irregular-steps", PASS, f"every step within {allowed:g} of the steady median "
                       f"{median:g} launches", numbers=numbers)
    ref = table.iloc[skip:].median()
    described = []
    for step in odd:
        delta = (table.loc[step] - ref)[lambda d: d.abs() > 0].sort_values(key=abs, ascending=False)
        parts = ", ".join(f"{cat} {v:+g}" for cat, v in delta.head(3).items())
        described.append(f"{_step_label(counts.steps, step)} ({totals.loc[step] - median:+g}: {parts})")
    positions = [list(totals.index).index(s) for s in odd]
    unskipped = [p for p in positions if p >= skip]
    summary = f"{len(odd)} of {len(totals)} steps differ from the steady median {median:g}: {'; '.join(described)}"
    if not unskipped:
        return Finding(facts.path, "irregular-steps", PASS, summary + f" (left out by --skip {skip})", numbers=numbers)
    leading = unskipped == list(range(skip, skip + len(unskipped)))
    fix = (f"skip the warm-up: --skip {skip + len(unskipped)}" if leading else
           "a prefill or other work is mixed in: profile decode steps only, or choose the steps with --step-marker")
    return Finding(facts.path, "irregular-steps", WARN, summary, fix, numbers)


def check_timestamps(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    unit = {1: "1 ns", 10: "10 ns", 100: "100 ns", 1000: "1 us", 1_000_000: "1 ms"}[facts.resolution_ns]
    numbers = {"resolution_ns": facts.resolution_ns, "first_ts_ns": facts.first_ts_ns,
               "time_base_ns": facts.time_base_ns, "format": facts.format}
    start = "" if facts.first_ts_ns is None else f"from {facts.first_ts_ns / 1e9:,.0f} s on the profiler's clock, "
    # Kineto JSON writes microseconds with 3 decimals: a double of them is off by up to 0.25 us at epoch scale.
    kept = (f"kept exact as integer ns (rebased by {facts.time_base_ns // 10**9:,} s)" if facts.time_base_ns
            else "kept as integer ns")
    summary = f"timestamps {start}to {unit}; {kept}"
    if facts.resolution_ns > FINE_RESOLUTION_NS:
        return Finding(facts.path, "timestamps", WARN, summary + ": too coarse to order launch calls against steps",
                       "record with a profiler that writes at least microseconds", numbers)
    return Finding(facts.path, "timestamps", PASS, summary, numbers=numbers)


def check_profiler_window(counts: LaunchCounts, facts: TraceFacts, skip: int) -> Finding:
    numbers = {"cpu_window_ns": list(facts.cpu_window) if facts.cpu_window else None,
               "gpu_events_before": facts.gpu_before_window, "gpu_events_after": facts.gpu_after_window}
    if facts.cpu_window is None:
        return Finding(facts.path, "profiler-window", WARN, "no CPU-side events: the profiled CPU window is unknown",
                       "record the CPU side too (torch.profiler ProfilerActivity.CPU; rocprofv3 --runtime-trace)",
                       numbers)
    if not facts.gpu_events:
        return Finding(facts.path, "profiler-window", PASS, "no GPU events to place", numbers=numbers)
    if facts.gpu_before_window or facts.gpu_after_window:
        return Finding(facts.path, "profiler-window", WARN, f"{facts.gpu_before_window:,} GPU events start before and "
                       f"{facts.gpu_after_window:,} end after the profiled CPU window (work in flight when the "
                       "profiler started or stopped)",
                       "synchronize (torch.cuda.synchronize()) before the profiler starts and before it stops", numbers)
    return Finding(facts.path, "profiler-window", PASS, "every GPU event lies inside the profiled CPU window",
                   numbers=numbers)


CHECKS: tuple[Callable[[LaunchCounts, TraceFacts, int], Finding], ...] = (
    check_conservation, check_gpu_activity, check_pairing, check_copy_dtype, check_python_frames,
    check_graph_replays, check_step_markers, check_irregular_steps, check_timestamps, check_profiler_window)


def diagnose(counts: LaunchCounts, facts: TraceFacts, skip: int = 0) -> list[Finding]:
    """One Finding per check (CHECKS order) of one trace. Raises TraceviewError when ``skip`` leaves no step."""
    counts.steady_steps(skip)
    return [check(counts, facts, skip) for check in CHECKS]


def rank_finding(path: str, per_rank: Sequence[LaunchCounts], skip: int = 0) -> Finding:
    """Whether the ranks of one directory agree on launches per step (``summary.rank_disagreements``)."""
    names = rank_names([c.path for c in per_rank])
    notes = rank_disagreements(dict(zip(names, per_rank)), skip)
    numbers = {"ranks": names, "disagreements": notes}
    if notes:
        return Finding(path, "ranks", WARN, f"{len(notes)} categories differ between the {len(names)} ranks: "
                       + "; ".join(notes), "check that the files are ranks of one run; the averages hide the "
                       "difference: count the ranks one by one (traceview counts RANK_FILE)", numbers)
    return Finding(path, "ranks", PASS, f"the {len(names)} ranks agree on launches per step in every category",
                   numbers=numbers)


def verdict(findings: Sequence[Finding]) -> Verdict:
    """The worst status, and a sentence: FAIL names the failed checks."""
    failed = [f"{Path(f.trace).name}: {f.check}" for f in findings if f.status == FAIL]
    warned = sum(f.status == WARN for f in findings)
    if failed:
        return Verdict(FAIL, f"counts are unreliable: {len(failed)} failed ({', '.join(failed)}), {warned} warnings")
    if warned:
        return Verdict(WARN, f"fit for counting, with {_plural(warned, 'warning')}")
    return Verdict(PASS, "fit for counting: every check passed")


def examine(path: str | Path, skip: int = 0, step_marker: str | None = None, rules_path: Path | None = None,
            config: EngineConfig | None = None,
            progress: Callable[[Path], object] | None = None) -> list[Finding]:
    """Every check of a trace, or of each rank of a directory plus the ``ranks`` check.

    ``progress(file)``: a context manager giving an ``on_progress`` callback (or None) per file loaded.
    Raises TraceviewError (a missing or unreadable trace, ``skip`` leaving no step).
    """
    from contextlib import nullcontext

    findings, per_rank = [], []
    files = trace_files(Path(path))
    for file in files:
        with (progress(file) if progress is not None else nullcontext()) as on_progress:
            counts, facts = collect(file, step_marker, rules_path, config, on_progress)
        findings += diagnose(counts, facts, skip)
        per_rank.append(counts)
    if Path(path).is_dir() and len(files) > 1:
        findings.append(rank_finding(str(path), per_rank, skip))
    return findings
