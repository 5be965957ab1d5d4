"""Counting many traces at once: a pool of worker processes, or a Ray cluster.

>>> frame = counts_many(["runs/tp*/*.json.gz"], jobs=4)
>>> frame.groupby("rank")["gemm"].mean()

Each worker opens its own trace processor, one trace at a time, through
``cache.cached_analyze`` (a trace counted before is read from the cache). The
caller sees one progress callback, ``on_progress(traces_done, traces_total)``.

Failure policy, as Perfetto's BatchTraceProcessor: ``failures="raise"`` stops at
the first trace that cannot be counted and raises its TraceviewError;
``failures="record"`` keeps going and gives that trace one row whose ``error``
column holds the one-line reason. Exceptions other than TraceviewError are bugs
and always propagate.
"""

from __future__ import annotations

import glob
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from traceview import errors
from traceview.cache import cached_analyze, wasm_dir
from traceview.engine import EngineConfig
from traceview.engine.cpus import usable_cores
from traceview.errors import TraceLoadError, TraceviewError
from traceview.model.counts import LaunchCounts
from traceview.model.ranks import rank_label, scan_traces, trace_files

EXECUTORS = ("process", "ray")
FAILURES = ("raise", "record")
WORKER_DIED = "the worker process died while counting this trace (crashed or ran out of memory)"
# A worker's answer: ("ok", LaunchCounts) or ("error", error class name, path, reason). Errors travel as
# tuples because TraceviewError(path, reason) cannot be rebuilt by pickle from its message alone.
Answer = tuple


@dataclass(frozen=True)
class BatchConfig:
    """How every trace of a batch is counted. Every field has a working default."""

    # Regex overriding the packaged step markers (as --step-marker).
    step_marker: str | None = None
    # Category rules file replacing the packaged one (as --rules).
    rules_path: Path | None = None
    # Trace processor settings for each worker; None = the defaults open_trace uses.
    engine: EngineConfig | None = None
    # Read and write the per-trace counts cache (traceview/cache.py).
    use_cache: bool = True
    # "raise": the first failing trace raises; "record": it gets a row with `error` set.
    failures: str = "raise"


def _glob_matches(pattern: str, files_only: bool) -> list[Path]:
    """What ``pattern`` matches (``**`` recursive), sorted; TraceLoadError when nothing does."""
    matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True) if not files_only or Path(m).is_file())
    if not matches:
        raise TraceLoadError(pattern, "no file matches this pattern")
    return matches


def expand_paths(paths: Iterable[str | Path],
                 on_skip: Callable[[Path, str], None] | None = None) -> list[Path]:
    """Files named by ``paths``: each is a file, a directory of traces (ordered by rank) or a glob.

    Duplicates are dropped, order is kept. A directory gives its trace files only
    (``model.ranks.scan_traces``): each file left out as no trace (``manifest.json``)
    goes to ``on_skip(path, reason)``. Raises TraceLoadError for a glob that
    matches nothing or a directory holding no trace; a missing plain file is
    left for the worker to report, like any other unreadable trace.
    """
    out: list[Path] = []
    for item in paths:
        text = str(item)
        if glob.has_magic(text):
            out.extend(_glob_matches(text, files_only=True))
        elif Path(text).is_dir():
            found = scan_traces(Path(text))
            if on_skip is not None:
                for skipped, reason in found.skipped:
                    on_skip(skipped, reason)
            out.extend(found.traces)
        else:
            out.append(Path(text))
    return list(dict.fromkeys(out))


def count_one(path: str, config: BatchConfig) -> Answer:
    """Worker body: counts one trace. Returns an Answer; only bugs raise."""
    try:
        counts = cached_analyze(path, config.step_marker, config.rules_path, config.engine,
                                use_cache=config.use_cache)
    except TraceviewError as err:
        return ("error", type(err).__name__, err.path or path, err.reason)
    return ("ok", counts)


def _error_of(answer: Answer) -> TraceviewError:
    cls = getattr(errors, answer[1], TraceviewError)
    return cls(answer[2], answer[3])


def _run_processes(paths: Sequence[str], jobs: int, config: BatchConfig,
                   settle: Callable[[str, Answer], None]) -> list[str]:
    """Runs ``count_one`` over ``paths`` in a process pool; returns paths lost to a dead worker."""
    # spawn, not fork: the caller may already hold a wasm engine and its threads.
    context = multiprocessing.get_context("spawn")
    lost: list[str] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures: dict[Future, str] = {pool.submit(count_one, p, config): p for p in paths}
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    path = futures.pop(future)
                    try:
                        answer = future.result()
                    except BrokenProcessPool:
                        lost.append(path)
                        continue
                    settle(path, answer)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return lost


def _process_executor(paths: Sequence[str], jobs: int, config: BatchConfig,
                      settle: Callable[[str, Answer], None]) -> None:
    lost = _run_processes(paths, jobs, config, settle)
    # A dead worker takes every trace it had queued down with it; retry each alone to find the culprit.
    for path in sorted(lost, key=paths.index):
        if _run_processes([path], 1, config, settle):
            settle(path, ("error", "TraceLoadError", path, WORKER_DIED))


def _ray_executor(paths: Sequence[str], jobs: int, config: BatchConfig, address: str | None,
                  settle: Callable[[str, Answer], None]) -> None:
    try:
        import ray
    except ModuleNotFoundError:
        raise TraceviewError(None, "executor 'ray' needs the ray package: pip install ray") from None
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(count_one)
    queue = list(paths)
    running: dict = {}
    while queue or running:
        while queue and len(running) < jobs:  # at most `jobs` traces in memory on the cluster at once
            path = queue.pop(0)
            running[remote.remote(path, config)] = path
        ready, _ = ray.wait(list(running), num_returns=1)
        path = running.pop(ready[0])
        try:
            answer = ray.get(ready[0])
        except ray.exceptions.WorkerCrashedError:
            answer = ("error", "TraceLoadError", path, WORKER_DIED)
        except ray.exceptions.RayTaskError as err:  # a bug inside count_one: re-raise it here
            raise err.as_instanceof_cause() from None
        settle(path, answer)


def _share_cores(config: BatchConfig, jobs: int) -> BatchConfig:
    """Traces counted side by side split the cores among their JSON decoding processes and their
    trace processors."""
    engine = config.engine or EngineConfig(cache_dir=wasm_dir())
    share = max(1, usable_cores() // jobs)
    return replace(config, engine=replace(engine, workers=engine.workers or share,
                                          shards=share if engine.shards is None else engine.shards))


def analyze_many(paths: Iterable[str | Path], jobs: int | None = None, executor: str = "process",
                 address: str | None = None, config: BatchConfig | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> dict[Path, LaunchCounts | TraceviewError]:
    """Counts every trace of ``paths`` (files, directories, globs) in parallel.

    Returns {path: LaunchCounts}, in input order; with ``config.failures ==
    "record"`` a trace that could not be counted maps to its TraceviewError.
    ``jobs`` defaults to the CPUs this process may use; ``address`` is a Ray cluster
    address (None starts a local Ray instance, ``"auto"`` joins a running one).
    """
    config = config or BatchConfig()
    if executor not in EXECUTORS:
        raise TraceviewError(None, f"unknown executor {executor!r}; use {' or '.join(EXECUTORS)}")
    if config.failures not in FAILURES:
        raise TraceviewError(None, f"unknown failure policy {config.failures!r}; use {' or '.join(FAILURES)}")
    files = [str(p) for p in expand_paths(paths)]
    if not files:
        return {}
    jobs = max(1, min(jobs or usable_cores(), len(files)))
    config = _share_cores(config, jobs)
    results: dict[str, LaunchCounts | TraceviewError] = {}

    def settle(path: str, answer: Answer) -> None:
        if answer[0] == "ok":
            results[path] = answer[1]
        elif config.failures == "raise":
            raise _error_of(answer)
        else:
            results[path] = _error_of(answer)
        if on_progress is not None:
            on_progress(len(results), len(files))

    if executor == "ray":
        _ray_executor(files, jobs, config, address, settle)
    else:
        _process_executor(files, jobs, config, settle)
    return {Path(p): results[p] for p in files}


# (file about to load) -> context manager yielding an on_progress(done_bytes, total_bytes) callback or None;
# the CLI passes one that draws a bar and removes it when the file is done.
ProgressFactory = Callable[[Path], AbstractContextManager]


def analyze_ranks(path: str | Path, step_marker: str | None = None, rules_path: Path | None = None,
                  config: EngineConfig | None = None, progress: ProgressFactory | None = None,
                  use_cache: bool = True, frames_from: Sequence[str] | None = None) -> list[LaunchCounts]:
    """Counts every trace of one run, in this process: ``path`` itself, or the traces of a
    directory in rank order (``model.ranks.trace_files``), each through the result cache.

    Raises TraceLoadError for a missing path or a directory without traces.
    """
    out = []
    for file in trace_files(Path(path)):
        with (progress(file) if progress is not None else nullcontext()) as on_progress:
            out.append(cached_analyze(file, step_marker, rules_path, config, on_progress, use_cache=use_cache,
                                      frames_from=frames_from))
    return out


def expand_runs(paths: Iterable[str | Path]) -> list[Path]:
    """The runs named by ``paths``: each is a trace file, a directory of per-rank traces, or a glob
    whose every match (file or directory) is one run.

    Duplicates are dropped, order is kept (a glob's matches sorted). Raises
    TraceLoadError for a glob that matches nothing; a missing path is left for
    ``analyze_runs`` to report.
    """
    out = [match for item in paths
           for match in (_glob_matches(str(item), files_only=False) if glob.has_magic(str(item)) else [Path(item)])]
    return list(dict.fromkeys(out))


def analyze_runs(runs: Iterable[str | Path], jobs: int | None = None, executor: str = "process",
                 address: str | None = None, config: BatchConfig | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> dict[Path, list[LaunchCounts]]:
    """Counts every trace of several runs in one worker pool, then groups the counts back by run.

    A run is a trace file or a directory of per-rank traces (``expand_runs`` for
    globs). Returns {run: [LaunchCounts, one per rank in rank order]}, runs in
    input order. Every file of every run is counted before any run is returned,
    so ``on_progress(traces_done, traces_total)`` spans the whole batch. Raises
    the first TraceviewError: a missing run, a directory without traces, a
    trace that cannot be counted (``config.failures`` must be ``"raise"``).
    """
    config = config or BatchConfig()
    if config.failures != "raise":
        raise TraceviewError(None, "analyze_runs needs failures='raise': a run is summarized from all its ranks")
    files = {run: trace_files(run) for run in expand_runs(runs)}
    # Escaped: a file name holding [ or * is that file, not a pattern for analyze_many to expand again.
    counted = analyze_many([glob.escape(str(f)) for group in files.values() for f in group], jobs, executor,
                           address, config, on_progress)
    return {run: [counted[f] for f in group] for run, group in files.items()}


def counts_frame(results: dict[Path, LaunchCounts | TraceviewError]) -> pd.DataFrame:
    """One row per (trace, step): the steps table plus launches per category.

    Columns: trace (path), rank (``rank3``-style label from the file name, else
    the file name), the LaunchCounts steps columns (step, name, cpu_start_ns, ...,
    launches, graph_replayed, direct), one int64 column per category, and
    ``error`` (string; <NA> unless the trace failed, then its only row). Integer
    columns are int64, or nullable Int64 when a failed trace's row leaves them empty.
    """
    frames = []
    for path, result in results.items():
        if isinstance(result, TraceviewError):
            frame = pd.DataFrame({"step": pd.array([pd.NA], dtype="Int64"), "error": [str(result)]})
        else:
            frame = result.steps.join(result.per_step(), on="step")
            frame["error"] = pd.NA
        frame.insert(0, "trace", str(path))
        frame.insert(1, "rank", rank_label(path))
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"trace": pd.Series(dtype="string"), "rank": pd.Series(dtype="string"),
                             "step": pd.Series(dtype="Int64"), "error": pd.Series(dtype="string")})
    ok = [f for f in frames if f["error"].isna().all()]
    integer = {c for f in frames for c, t in f.dtypes.items() if pd.api.types.is_integer_dtype(t)}
    nullable = {c for f in ok for c, t in f.dtypes.items() if isinstance(t, pd.Int64Dtype)}
    out = pd.concat(frames, ignore_index=True)
    for column in integer:  # a failed trace's row has no counts: keep integers, as nullable Int64
        out[column] = out[column].astype("Int64" if column in nullable or out[column].isna().any() else "int64")
    out["error"] = out.pop("error").astype("string")
    out[["trace", "rank"]] = out[["trace", "rank"]].astype("string")
    return out


def counts_many(paths: Iterable[str | Path], jobs: int | None = None, executor: str = "process",
                address: str | None = None, config: BatchConfig | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """``analyze_many`` flattened into one frame (see ``counts_frame`` for the columns)."""
    return counts_frame(analyze_many(paths, jobs, executor, address, config, on_progress))
