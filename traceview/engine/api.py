"""The engine's whole public surface: ``open_trace(path) -> Trace``.

>>> with open_trace("sample_traces/demo_eager_before.pt.trace.json.gz") as trace:
...     trace.query("select count(*) as n from slice")

Accepted inputs: Kineto / Chrome JSON (``.json``, ``.pt.trace.json``), Perfetto
protobuf (``.pftrace``, ``.perfetto-trace``), each optionally gzipped. The
format is detected from the content, not the extension.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from traceview.engine import rocprof
from traceview.engine.backends import Backend, EngineConfig, select_backend
from traceview.engine.formats import ProgressFn, TraceFile, default_cache_dir, inspect_file, iter_chunks, prefetch
from traceview.engine.json_rewrite import rewrite_json
from traceview.errors import QueryError, TraceLoadError, TraceviewError

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

    def __init__(self, file: TraceFile, backend: Backend) -> None:
        self.file = file
        self.path = file.path
        self._backend = backend
        self.load_stats: list[LoadStat] = []

    @property
    def engine(self) -> str:
        """``wasm``, ``wasm64`` or ``native``."""
        return self._backend.name

    @property
    def perfetto_version(self) -> str:
        return self._backend.version

    def query(self, sql: str) -> pd.DataFrame:
        """Runs ``sql`` and returns the result with fixed dtypes (no ``object`` columns
        except where a column mixes types). Raises QueryError with the processor's message."""
        try:
            return self._backend.query(sql)
        except QueryError as err:
            raise QueryError(self.path, err.reason) from None
        except TraceviewError as err:
            raise type(err)(self.path, err.reason) from None

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _load(file: TraceFile, config: EngineConfig, on_progress: ProgressFn | None) -> Trace:
    backend = select_backend(config, file.estimated_raw_size)
    try:
        if file.format in rocprof.CONVERTED:  # translated to Kineto-style JSON while streaming
            chunks = rocprof.iter_chunks(file, on_progress)
        else:
            chunks = iter_chunks(file, on_progress)
            if file.format == "json":
                chunks = rewrite_json(chunks, config.lean)
        backend.load(prefetch(chunks))
        trace = Trace(file, backend)
        _validate(trace)
        return trace
    except TraceviewError as err:
        backend.close()
        raise type(err)(file.path, err.reason) from None
    except BaseException:
        backend.close()
        raise


def _validate(trace: Trace) -> None:
    """Rejects files the processor accepted but found nothing in."""
    try:
        stats = trace.query(_LOSS_SQL)
        trace.query("select count(*) from slice")
    except QueryError:  # the processor gave up on the file before building its tables
        raise TraceLoadError(trace.path, "the trace processor could not parse this file "
                                         "(truncated or malformed trace?)") from None
    trace.load_stats = [LoadStat(r.name, int(r.value), str(r.description or ""))
                        for r in stats.itertuples(index=False)]
    if trace.file.format != "json":
        return
    events = trace.query("select (select count(*) from slice) + (select count(*) from counter) as n").n.iloc[0]
    if events == 0:
        json_errors = [s for s in trace.load_stats if s.name.startswith("json")]
        why = f" ({json_errors[0]})" if json_errors else ""
        raise TraceLoadError(trace.path, f"JSON holds no Chrome/Kineto trace events{why}")


def open_trace(path: str | Path, config: EngineConfig | None = None,
               on_progress: ProgressFn | None = None) -> Trace:
    """Loads ``path`` into a trace processor and returns the queryable Trace.

    ``on_progress(bytes_read, total_bytes)`` is called as the file streams in.
    Raises TraceLoadError (bad input) or EngineError (no processor could run).
    When the 4 GiB wasm32 build runs out of memory, the load is retried once
    with the memory64 build, unless ``config.memory64`` pins the choice.
    """
    config = config or EngineConfig(cache_dir=default_cache_dir() / "wasm")
    file = inspect_file(Path(path))
    try:
        return _load(file, config, on_progress)
    except TraceLoadError as err:
        out_of_memory = "memory" in err.reason and config.memory64 is None
        if not out_of_memory or config.tp_bin:
            raise
        return _load(file, replace(config, memory64=True), on_progress)


def open_traces(paths: Iterable[str | Path], config: EngineConfig | None = None) -> Iterator[Trace]:
    """Opens traces one at a time (each is closed when the caller moves on)."""
    for path in paths:
        with open_trace(path, config) as trace:
            yield trace
