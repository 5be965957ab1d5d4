"""Nsight Systems SQLite exports (``nsys export --type sqlite``) read row by row into trace records.

Tables read, each optional (docs/formats.md has the mapping):
``CUPTI_ACTIVITY_KIND_KERNEL`` / ``_MEMCPY`` / ``_MEMSET`` (GPU work),
``CUPTI_ACTIVITY_KIND_RUNTIME`` (runtime calls, and driver calls in newer exports),
``CUPTI_ACTIVITY_KIND_DRIVER`` (driver calls in exports that have it), ``NVTX_EVENTS``,
``StringIds`` (names), ``PROCESSES`` and ``ThreadNames`` (labels).

Names are joined and ids unpacked inside SQLite; Python sees one row at a time from
a cursor, so no table is ever loaded whole. Columns are looked up by name, so an
export that lacks an optional column (``graphNodeId``, ``eventClass``) still reads.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Iterator
from operator import attrgetter
from pathlib import Path

from traceview.engine.nsys import tables as t
from traceview.engine.rocprof.emit import Progress, Record, Slice
from traceview.engine.rocprof.mapping import CORRELATION_SPAN
from traceview.engine.rocprof.rocpd import connect, reading
from traceview.errors import TraceLoadError

KERNELS, COPIES, MEMSETS = "CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET"
RUNTIME, DRIVER, NVTX = "CUPTI_ACTIVITY_KIND_RUNTIME", "CUPTI_ACTIVITY_KIND_DRIVER", "NVTX_EVENTS"
STRINGS = "StringIds"
# What makes a SQLite file an nsys export: its string table next to CUPTI/target/NVTX tables.
_NSYS_PREFIXES = ("CUPTI_ACTIVITY_KIND_", "TARGET_INFO_", "NVTX_EVENTS")
_PROGRESS_ROWS = 1 << 16  # rows between progress reports
_PID = f"(({{0}} >> {t.ID_BITS}) & {t.ID_MASK})"
_TID = f"({{0}} & {t.ID_MASK})"
# The CPU side's (pid, tid): -1 where a row has no globalTid (0 would be GPU 0's pid).
_CPU_IDS = f'IFNULL({_PID.format("X.globalTid")}, -1), IFNULL({_TID.format("X.globalTid")}, -1)'


def is_export(names: Iterable[str]) -> bool:
    """Whether a database holding tables ``names`` is an Nsight Systems export."""
    names = set(names)
    return STRINGS in names and any(n.startswith(_NSYS_PREFIXES) for n in names)


class _Export:
    """One open export: its tables and columns, and correlation ids scoped by process."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn, self.path = conn, path
        self.tables = {row[0] for row in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
        self._scope: dict[int, int] = {}

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f'pragma table_info("{table}")')} if table in self.tables else set()

    def corr(self, correlation: int | None, pid: int | None) -> int | None:
        """CUPTI numbers correlation ids per process: the k-th process seen gets k * 2**40 added,
        the first keeps its ids. Launch call and GPU work of one process get the same offset.
        GPU rows of an export without ``globalPid`` keep their ids (they match the first process)."""
        if correlation is None:
            return None
        if pid is None:
            return int(correlation)
        scope = self._scope.setdefault(pid, len(self._scope))
        return int(correlation) + scope * CORRELATION_SPAN

    def rows(self, table: str) -> int:
        """About how many rows ``table`` holds (its largest rowid: no scan)."""
        try:
            return int(self.conn.execute(f'select max(rowid) from "{table}"').fetchone()[0] or 0)
        except sqlite3.Error:
            return 0

    def select(self, sql: str) -> Iterator[tuple]:
        try:
            yield from self.conn.execute(sql)
        except sqlite3.Error as err:
            raise TraceLoadError(self.path, f"nsys export query failed ({err})") from None


def _col(columns: set[str], name: str, alias: str = "X") -> str:
    return f'{alias}."{name}"' if name in columns else "NULL"


def _require(db: _Export, table: str, columns: set[str], needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise TraceLoadError(db.path, f"{table} has no {', '.join(missing)} column: "
                                      "this nsys export layout is not supported")


def _string(columns: set[str], *names: str) -> tuple[str, str]:
    """COALESCE over the StringIds values of the first present id columns, and the joins it needs."""
    present = [n for n in names if n in columns]
    joins = "".join(f' LEFT JOIN StringIds S{i} ON S{i}.id = X."{n}"' for i, n in enumerate(present))
    values = ", ".join(f"S{i}.value" for i in range(len(present)))
    if not present:
        return "NULL", joins
    return (f"COALESCE({values})" if len(present) > 1 else values), joins


def _gpu_prefix(cols: set[str]) -> str:
    pid = _PID.format('X."globalPid"') if "globalPid" in cols else "NULL"
    return (f'X.start, X."end", X.deviceId, X.streamId, {_col(cols, "correlationId")}, {pid}, '
            f'{_col(cols, "graphNodeId")}')


def _kernels(db: _Export) -> Iterator[Slice]:
    cols = db.columns(KERNELS)
    _require(db, KERNELS, cols, ("start", "end", "deviceId", "streamId"))
    name, joins = _string(cols, "demangledName", "shortName", "mangledName")
    sql = f"SELECT {_gpu_prefix(cols)}, {name} FROM {KERNELS} X{joins} ORDER BY X.start"
    for start, end, device, stream, corr, pid, node, kernel_name in db.select(sql):
        yield t.kernel(kernel_name or "kernel", device, stream, db.corr(corr, pid), node, start, end)


def _copies(db: _Export) -> Iterator[Slice]:
    cols = db.columns(COPIES)
    _require(db, COPIES, cols, ("start", "end", "deviceId", "streamId"))
    sql = (f'SELECT {_gpu_prefix(cols)}, {_col(cols, "copyKind")}, {_col(cols, "srcKind")}, '
           f'{_col(cols, "dstKind")}, {_col(cols, "bytes")} FROM {COPIES} X ORDER BY X.start')
    names: dict[tuple, str] = {}
    for start, end, device, stream, corr, pid, _node, kind, src, dst, size in db.select(sql):
        name = names.get((kind, src, dst))
        if name is None:
            name = names[(kind, src, dst)] = t.copy_name(kind, src, dst)
        yield t.memcpy(name, device, stream, db.corr(corr, pid), size, start, end)


def _memsets(db: _Export) -> Iterator[Slice]:
    cols = db.columns(MEMSETS)
    _require(db, MEMSETS, cols, ("start", "end", "deviceId", "streamId"))
    sql = (f'SELECT {_gpu_prefix(cols)}, {_col(cols, "memKind")}, {_col(cols, "bytes")} '
           f"FROM {MEMSETS} X ORDER BY X.start")
    for start, end, device, stream, corr, pid, _node, kind, size in db.select(sql):
        yield t.memset(kind, device, stream, db.corr(corr, pid), size, start, end)


def _gpu_work(db: _Export) -> Iterator[Record]:
    """Kernels, copies and memsets merged in start order, each stream labelled the first time it shows.

    Kernels and copies share their stream's track (as in Kineto's CUDA traces); fed in time
    order, a slice goes to an overlap lane only when it really overlaps another.
    """
    readers = {KERNELS: _kernels, COPIES: _copies, MEMSETS: _memsets}
    streams = [read(db) for table, read in readers.items() if table in db.tables]
    seen: set[tuple[int, int | None]] = set()
    for item in heapq.merge(*streams, key=attrgetter("start_ns")):
        if (item.pid, item.tid) not in seen:
            if (item.pid, None) not in seen:
                seen.add((item.pid, None))
                yield t.gpu_label(item.pid)
            seen.add((item.pid, item.tid))
            yield t.stream_label(item.pid, item.tid)
        yield item


def _api_calls(db: _Export, table: str) -> Iterator[Record]:
    cols = db.columns(table)
    _require(db, table, cols, ("start", "end", "globalTid", "nameId"))
    event_class = _col(cols, "eventClass") if table == RUNTIME else str(t.DRIVER_EVENT_CLASS)
    sql = (f'SELECT X.start, X."end", {_CPU_IDS}, {_col(cols, "correlationId")}, S.value, {event_class} '
           f'FROM "{table}" X LEFT JOIN StringIds S ON S.id = X.nameId')
    for start, end, pid, tid, corr, name, klass in db.select(sql):
        yield t.api_call(name or "CUDA API call", klass, pid, tid, db.corr(corr, pid), start, end)


def _event_types(db: _Export, defaults: dict[str, int]) -> str:
    """The ids of the NVTX event types named in ``defaults``, from the export's enum when it has one."""
    ids = dict(defaults)
    if "ENUM_NSYS_EVENT_TYPE" in db.tables:
        found = dict(db.select("SELECT name, id FROM ENUM_NSYS_EVENT_TYPE"))
        ids = {name: found.get(name, default) for name, default in defaults.items()}
    return ", ".join(str(int(i)) for i in sorted(set(ids.values())))


def _nvtx(db: _Export) -> Iterator[Record]:
    cols = db.columns(NVTX)
    _require(db, NVTX, cols, ("start", "eventType", "globalTid"))
    text, joins = _string(cols, "textId")
    if "text" in cols:
        text = f'COALESCE(X."text", {text})'
    ranges, marks = _event_types(db, t.RANGE_TYPES), _event_types(db, t.MARK_TYPES)
    sql = (f'SELECT X.start, IIF(X.eventType IN ({marks}), NULL, {_col(cols, "end")}), '
           f"{_CPU_IDS}, {text} FROM {NVTX} X{joins} "
           f"WHERE X.eventType IN ({ranges}, {marks})")
    for start, end, pid, tid, name in db.select(sql):
        yield t.nvtx_range(name, pid, tid, start, end)


def _labels(db: _Export) -> Iterator[Record]:
    """Process and thread names; given last, so a GPU's label wins where a pid is also a device."""
    if "PROCESSES" in db.tables and {"pid", "name"} <= db.columns("PROCESSES"):
        for pid, name in db.select("SELECT pid, name FROM PROCESSES WHERE pid IS NOT NULL"):
            yield t.process_label(int(pid), name)
    if "ThreadNames" in db.tables and {"globalTid", "nameId"} <= db.columns("ThreadNames"):
        sql = "SELECT X.globalTid, S.value FROM ThreadNames X LEFT JOIN StringIds S ON S.id = X.nameId"
        for global_tid, name in db.select(sql):
            yield t.thread_label(t.pid_of(global_tid), t.tid_of(global_tid), name)


def records(path: Path, progress: Progress | None = None) -> Iterator[Record]:
    """Every trace record of the nsys export ``path``: GPU work, API calls, NVTX ranges, then labels."""
    conn = connect(path)
    with reading(path, conn, progress, "nsys export"):
        db = _Export(conn, path)
        if STRINGS not in db.tables:
            raise TraceLoadError(path, "nsys export without a StringIds table: names cannot be read")
        parts = [((KERNELS, COPIES, MEMSETS), lambda: _gpu_work(db)), ((RUNTIME,), lambda: _api_calls(db, RUNTIME)),
                 ((DRIVER,), lambda: _api_calls(db, DRIVER)), ((NVTX,), lambda: _nvtx(db))]
        sizes = [sum(db.rows(table) for table in tables if table in db.tables) for tables, _ in parts]
        total = max(sum(sizes), 1)
        for (tables, read), rows in zip(parts, sizes):
            if any(table in db.tables for table in tables):
                yield from _with_progress(read(), progress, rows, total)
        yield from _labels(db)


def _with_progress(items: Iterator[Record], progress: Progress | None, rows: int, total: int) -> Iterator[Record]:
    """``items`` (read from ``rows`` of the export's ``total`` rows), reporting their share of its bytes."""
    if progress is None:
        yield from items
        return
    step = progress.total * _PROGRESS_ROWS // total
    reported = 0
    for n, item in enumerate(items, 1):
        if n % _PROGRESS_ROWS == 0 and n <= rows:
            progress.advance(step)
            reported += step
        yield item
    progress.advance(max(progress.total * rows // total - reported, 0))
