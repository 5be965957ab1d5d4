"""The engine's whole public surface: ``open_trace(path) -> Trace``.

>>> with open_trace("sample_traces/demo_eager_before.pt.trace.json.gz") as trace:
...     trace.query("select count(*) as n from slice")

``open_sharded`` is the same load split across several trace processors by
time (kineto/shards.py), for counting: the model queries each and adds up.

Accepted inputs: Kineto / Chrome JSON (``.json``, ``.pt.trace.json``), Perfetto
protobuf (``.pftrace``, ``.perfetto-trace``), each optionally gzipped. The
format is detected from the content, not the extension.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from traceview.engine import nsys, rocprof
from traceview.engine.backends import Backend, compile_ahead, select_backend
from traceview.engine.config import EngineConfig
from traceview.engine.feeding import feed
from traceview.engine.formats import ProgressFn, TraceFile, default_cache_dir, inspect_file, iter_chunks, prefetch
from traceview.engine.kineto.ledger import Ledger
from traceview.engine.kineto.pipeline import CanonicalJson, JsonLoadOptions
from traceview.engine.parallel import on_shards
from traceview.errors import TraceClosedError, TraceLoadError, TraceviewError, Wasm32MemoryError

# Stats that mean the processor dropped or could not place events we count.
_LOSS_SQL = """
select name, idx, severity, source, value, description from stats
where value > 0 and severity in ('error', 'data_loss')
order by name
"""


@dataclass(frozen=True)
class LoadStat:
    """A non-zero error/data-loss counter from the processor's ``stats`` table."""

    name: str
    value: int
    description: str

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Trace:
    """A loaded trace you can query with PerfettoSQL. Use as a context manager."""

    def __init__(self, file: TraceFile, backend: Backend, canonical: CanonicalJson | None = None) -> None:
        self.file = file
        self.path = file.path
        self._backend = backend
        self.load_stats: list[LoadStat] = []
        # JSON inputs are fed with timestamps relative to this (ns): add it back for absolute times.
        self.time_base_ns = canonical.base_ns if canonical else 0
        # How many events of each kind the file held and the processor got (None: fed as is).
        self.ledger: Ledger | None = canonical.ledger if canonical else None
        # Events the processor lost or never got, one line each (see Ledger.problems).
        self.load_problems: list[str] = []
        self.dropped_by_kind: Counter = Counter()  # fed but not held by the processors (kineto/ledger.py)
        self._closed = False

    @property
    def engine(self) -> str:
        """``wasm``, ``wasm64`` or ``native``."""
        return self._backend.name

    @property
    def perfetto_version(self) -> str:
        return self._backend.version

    def query(self, sql: str) -> pd.DataFrame:
        """Runs ``sql`` and returns the result with fixed dtypes (no ``object`` columns
        except where a column mixes types). Raises QueryError with the processor's message,
        TraceClosedError after ``close()``."""
        if self._closed:  # the backend's memory is gone: it would fail somewhere deep inside
            raise TraceClosedError(self.path, "this trace was closed; open it again to query it")
        try:
            return self._backend.query(sql)
        except TraceviewError as err:
            raise type(err)(self.path, err.reason) from None

    def close(self) -> None:
        """Releases the trace processor and its memory. Idempotent."""
        if not self._closed:
            self._closed = True
            self._backend.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _canonical(file: TraceFile, config: EngineConfig, on_progress: ProgressFn | None) -> CanonicalJson | None:
    """JSON (Kineto's, or rocprof's translated to it) decoded and planned by traceview (kineto/pipeline.py)."""
    if file.format in rocprof.CONVERTED or file.format in nsys.CONVERTED:
        translate = nsys.iter_chunks if file.format in nsys.CONVERTED else rocprof.iter_chunks

        def source():
            return prefetch(translate(file, on_progress))
    elif file.format == "json" and not file.compressed:
        source = file.path  # decoding processes read their pieces from the file itself
    elif file.format == "json":
        def source():
            return prefetch(iter_chunks(file, on_progress))
    else:
        return None
    options = JsonLoadOptions(lean=config.lean, keep_names=config.keep_names, workers=config.workers,
                              shards=config.shards)
    return CanonicalJson(source, file.path, file.estimated_raw_size, options, on_progress)


def _load(file: TraceFile, config: EngineConfig, on_progress: ProgressFn | None) -> list[Trace]:
    """The file loaded into one processor per shard (one, unless ``config.shards`` and a lean JSON load)."""
    # A lean load feeds the processor a fraction of the file; guess which build it will need and
    # compile that one (first run only) while the JSON is decoded.
    compiling = compile_ahead(config, file.estimated_raw_size // (4 if config.lean else 1))
    canonical = _canonical(file, config, on_progress)
    if compiling is not None:
        compiling.join()
    sizes = canonical.fed_bytes_by_shard if canonical else [file.estimated_raw_size]
    backends: list[Backend] = []
    try:
        backends += _start_backends(config, sizes)
        if canonical is None:
            backends[0].load(prefetch(iter_chunks(file, on_progress)))
        else:
            feed(canonical, backends)
        traces = [Trace(file, backend, canonical) for backend in backends]
        on_shards(_validate, traces)
        _check_conservation(traces, config.strict)
        return traces
    except TraceviewError as err:
        for backend in backends:
            backend.close()
        raise type(err)(file.path, err.reason) from None
    except BaseException:
        for backend in backends:
            backend.close()
        raise


def _start_backends(config: EngineConfig, sizes: list[int]) -> list[Backend]:
    """One processor per shard, started side by side (each maps the compiled module: ~0.1 s)."""
    if len(sizes) == 1:
        return [select_backend(config, sizes[0])]
    with ThreadPoolExecutor(len(sizes), thread_name_prefix="traceview-start") as pool:
        futures = [pool.submit(select_backend, config, size) for size in sizes]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        for backend in started:
            backend.close()
        raise failed[0]
    return started


def _validate(trace: Trace) -> None:
    """Rejects files the processor accepted but found nothing in. A parse failure was raised by
    the load already (TraceLoadError); a query failing here is a QueryError with its own reason."""
    stats = trace.query(_LOSS_SQL)
    trace.load_stats = [LoadStat(r.name, int(r.value), str(r.description or ""))
                        for r in stats.itertuples(index=False)]
    if trace.file.format != "json":
        return
    events = trace.query("select (select count(*) from slice) + (select count(*) from counter) as n").n.iloc[0]
    if events == 0:
        json_errors = [s for s in trace.load_stats if s.name.startswith("json")]
        why = f" ({json_errors[0]})" if json_errors else ""
        raise TraceLoadError(trace.path, f"JSON holds no Chrome/Kineto trace events{why}")


def _check_conservation(traces: list[Trace], strict: bool) -> None:
    """Every GPU event and launch call of the file must be in a processor (Ledger)."""
    ledger = traces[0].ledger
    if ledger is None:
        return
    frames = on_shards(lambda trace: trace.query("select category, count(*) as n from slice group by category"),
                       traces)
    loaded = [{"" if pd.isna(c) else str(c): int(n) for c, n in zip(f["category"], f["n"])} for f in frames]
    dropped = ledger.dropped(loaded)
    problems = ledger.problems(dropped)
    for trace in traces:
        trace.load_problems = problems
        trace.dropped_by_kind = dropped
    if strict and problems:
        raise TraceLoadError(traces[0].path, "--strict: " + "; ".join(problems))


def _open(path: str | Path, config: EngineConfig | None, on_progress: ProgressFn | None) -> list[Trace]:
    config = config or EngineConfig(cache_dir=default_cache_dir() / "wasm")
    file = inspect_file(Path(path))
    try:
        return _load(file, config, on_progress)
    except Wasm32MemoryError:  # only wasm32 raises it: memory64 has a bigger heap to try
        if config.memory64 is not None or config.tp_bin:
            raise
        return _load(file, replace(config, memory64=True), on_progress)


def open_trace(path: str | Path, config: EngineConfig | None = None,
               on_progress: ProgressFn | None = None) -> Trace:
    """Loads ``path`` into a trace processor and returns the queryable Trace.

    ``on_progress(bytes_read, total_bytes)`` is called as the file streams in.
    Raises TraceLoadError (bad input) or EngineError (no processor could run).
    When the 4 GiB wasm32 build runs out of memory (Wasm32MemoryError), the load is
    retried once with the memory64 build, unless ``config.memory64`` pins the choice.
    """
    return _open(path, replace(config, shards=1) if config else None, on_progress)[0]


class ShardedTrace:
    """One trace in several processors (``shards``, each a Trace holding a stretch of time)."""

    def __init__(self, shards: list[Trace]) -> None:
        self.shards = shards
        self.path = shards[0].path
        self.file = shards[0].file
        self.time_base_ns = shards[0].time_base_ns
        self.ledger = shards[0].ledger
        self.load_problems = shards[0].load_problems
        self.dropped_by_kind = shards[0].dropped_by_kind
        self.load_stats = [stat for shard in shards for stat in shard.load_stats]

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    def __enter__(self) -> "ShardedTrace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sharded(path: str | Path, config: EngineConfig | None = None,
                 on_progress: ProgressFn | None = None) -> ShardedTrace:
    """``open_trace`` split across ``config.shards`` processors (None: by size) when the load is
    lean Kineto JSON; any other load is a ShardedTrace of one shard."""
    return ShardedTrace(_open(path, config, on_progress))
