"""SQLite inputs: rocprofv3's rocpd database and legacy rocprof v1 ``results.db``.

rocpd (schema version 3) stores each table as ``rocpd_<name><uuid>`` behind a
view ``rocpd_<name>``; we read those views: ``rocpd_region`` (HIP/HSA/marker API
calls, start/end in ns, name and category through ``rocpd_string`` and
``rocpd_event``), ``rocpd_kernel_dispatch``, ``rocpd_memory_copy``,
``rocpd_memory_allocate``, ``rocpd_sample`` (roctx marks). An API call and the
GPU work it caused share ``rocpd_event.stack_id`` (the internal correlation
id; ``rocpd_event.correlation_id`` holds the external one). Rows are fetched
lazily from SQLite cursors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from traceview.engine.rocprof import mapping as m
from traceview.engine.rocprof.csvs import v1_kernels
from traceview.engine.rocprof.emit import Label, Progress, Record
from traceview.errors import TraceLoadError

ROCPD_VIEWS = frozenset({"rocpd_region", "rocpd_kernel_dispatch", "rocpd_event", "rocpd_string",
                         "rocpd_info_agent", "rocpd_info_process", "rocpd_info_thread"})

_REGIONS = """
SELECT R.start, R."end", S.string, C.string, COALESCE(P.pid, R.pid), COALESCE(T.tid, R.tid),
       E.stack_id, E.extdata, R.guid
FROM rocpd_region R
JOIN rocpd_string S ON S.id = R.name_id AND S.guid = R.guid
LEFT JOIN rocpd_event E ON E.id = R.event_id AND E.guid = R.guid
LEFT JOIN rocpd_string C ON C.id = E.category_id AND C.guid = E.guid
LEFT JOIN rocpd_info_process P ON P.id = R.pid AND P.guid = R.guid
LEFT JOIN rocpd_info_thread T ON T.id = R.tid AND T.guid = R.guid"""

_MARKS = """
SELECT S.timestamp, C.string, COALESCE(P.pid, TR.pid), COALESCE(T.tid, TR.tid), E.stack_id,
       E.extdata, S.guid
FROM rocpd_sample S
JOIN rocpd_track TR ON TR.id = S.track_id AND TR.guid = S.guid
JOIN rocpd_event E ON E.id = S.event_id AND E.guid = S.guid
JOIN rocpd_string C ON C.id = E.category_id AND C.guid = E.guid
LEFT JOIN rocpd_info_process P ON P.id = TR.pid AND P.guid = TR.guid
LEFT JOIN rocpd_info_thread T ON T.id = TR.tid AND T.guid = TR.guid
WHERE C.string LIKE '%MARKER%'"""

_KERNELS = """
SELECT K.start, K."end", COALESCE(KS.display_name, KS.kernel_name, 'kernel_id ' || K.kernel_id),
       K.agent_id, K.queue_id, K.stream_id, K.dispatch_id, E.stack_id, K.guid
FROM rocpd_kernel_dispatch K
LEFT JOIN rocpd_info_kernel_symbol KS ON KS.id = K.kernel_id AND KS.guid = K.guid
LEFT JOIN rocpd_event E ON E.id = K.event_id AND E.guid = K.guid"""

_COPIES = """
SELECT M.start, M."end", S.string, M.src_agent_id, M.dst_agent_id, M.stream_id, M.size, E.stack_id, M.guid
FROM rocpd_memory_copy M
JOIN rocpd_string S ON S.id = M.name_id AND S.guid = M.guid
LEFT JOIN rocpd_event E ON E.id = M.event_id AND E.guid = M.guid"""

_ALLOCATIONS = """
SELECT M.start, M."end", M.type, M.level, M.agent_id, M.size, M.address, COALESCE(P.pid, M.pid), M.guid
FROM rocpd_memory_allocate M
LEFT JOIN rocpd_info_process P ON P.id = M.pid AND P.guid = M.guid"""


def connect(path: Path) -> sqlite3.Connection:
    """``path`` opened read-only; TraceLoadError if SQLite cannot read it."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.Error as err:
        raise TraceLoadError(path, f"unreadable SQLite database ({err})") from None


@contextmanager
def reading(path: Path, conn: sqlite3.Connection, progress: Progress | None, what: str) -> Iterator[None]:
    """Around a database's rows: a SQLite error or a malformed row is one TraceLoadError naming ``what``
    ("database", "nsys export"); the connection is closed and the progress bar filled, whatever happens."""
    try:
        yield
    except sqlite3.Error as err:
        raise TraceLoadError(path, f"{what} query failed ({err})") from None
    except (ValueError, TypeError) as err:
        raise TraceLoadError(path, f"malformed {what} row ({err})") from None
    finally:
        conn.close()
        if progress is not None:
            progress.advance(progress.total)


def sqlite_format(path: Path) -> str:
    """``rocpd`` or ``rocprof-v1-db`` by the tables/views ``path`` holds; TraceLoadError otherwise."""
    conn = connect(path)
    try:
        names = {row[0] for row in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
        columns = {row[1] for row in conn.execute("pragma table_info(rocpd_region)")}
    except sqlite3.Error as err:
        raise TraceLoadError(path, f"unreadable SQLite database ({err})") from None
    finally:
        conn.close()
    if ROCPD_VIEWS <= names:
        if not {"start", "end", "pid", "tid"} <= columns:
            raise TraceLoadError(path, "rocpd database whose rocpd_region has no start/end/pid/tid "
                                       "columns: this rocpd layout is not supported")
        return "rocpd"
    if "KERN" in names:
        return "rocprof-v1-db"
    if {"rocpd_op", "rocpd_api"} <= names:
        raise TraceLoadError(path, "is a rocmProfileData (RPD) database, not rocprofv3's rocpd: not supported")
    missing = ", ".join(sorted(ROCPD_VIEWS - names))
    raise TraceLoadError(path, f"is an SQLite database but neither rocpd (missing {missing}), rocprof v1 "
                               "(no KERN table) nor an Nsight Systems export (no StringIds beside CUPTI/NVTX tables)")


class _Db:
    """Queries of one database with per-process correlation offsets and agent lookup."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn, self.path = conn, path
        guids = [row[0] for row in conn.execute("select guid from rocpd_info_process order by rowid")]
        self.ordinal = {guid: i for i, guid in enumerate(dict.fromkeys(guids))}
        self.agents: dict[tuple[str, int], m.Agent] = {}
        for guid, agent_id, kind, index, product, name in conn.execute(
                "select guid, id, type, type_index, product_name, name from rocpd_info_agent"):
            self.agents[(guid, agent_id)] = m.Agent(kind == "GPU", int(index or 0), product or name or "")

    def corr(self, stack_id: int | None, guid: str) -> int:
        return int(stack_id or 0) + self.ordinal.get(guid, 0) * m.CORRELATION_SPAN

    def agent(self, guid: str, agent_id: int | None) -> m.Agent | None:
        if agent_id is None:
            return None
        return self.agents.get((guid, agent_id), m.Agent(True, int(agent_id)))

    def rows(self, sql: str) -> Iterator[tuple]:
        try:
            yield from self.conn.execute(sql)
        except sqlite3.Error as err:
            raise TraceLoadError(self.path, f"rocpd query failed ({err})") from None


def _message(category: str | None, name: str, extdata: str | None) -> str:
    """A marker's user message (kept in the event's extdata), else the operation name."""
    if not category or "MARKER" not in category or not extdata:
        return name
    try:
        message = json.loads(extdata).get("message")
    except (ValueError, AttributeError):
        return name
    return str(message) if message else name


def _id(value: int | None) -> int:
    """A pid/tid; -1 where the database has none (0 would be GPU 0's pid)."""
    return -1 if value is None else int(value)


def _rocpd_records(db: _Db) -> Iterator[Record]:
    for start, end, name, category, pid, tid, stack_id, extdata, guid in db.rows(_REGIONS):
        yield m.api_call(category or "", _message(category, name, extdata), _id(pid), _id(tid),
                         db.corr(stack_id, guid), int(start), int(end))
    for ts, category, pid, tid, stack_id, extdata, guid in db.rows(_MARKS):
        yield m.api_call(category, _message(category, "roctxMarkA", extdata), _id(pid), _id(tid),
                         db.corr(stack_id, guid), int(ts), int(ts))
    for start, end, name, agent_id, queue, stream, dispatch, stack_id, guid in db.rows(_KERNELS):
        agent = db.agent(guid, agent_id) or m.Agent(True, 0)
        yield m.gpu_label(agent)
        yield m.queue_label(agent.index, int(queue or 0))
        yield m.kernel(name, agent.index, int(queue or 0), int(stream or 0), db.corr(stack_id, guid),
                       int(dispatch or 0), start, end)
    for start, end, direction, src, dst, stream, size, stack_id, guid in db.rows(_COPIES):
        device = m.copy_device(direction, db.agent(guid, src), db.agent(guid, dst)) or m.Agent(True, 0)
        yield m.gpu_label(device)
        yield m.copy_label(device.index, int(stream or 0))
        yield m.memcpy(direction, device.index, int(stream or 0), db.corr(stack_id, guid), start, end,
                       int(size or 0))
    for start, end, kind, level, agent_id, size, address, pid, guid in db.rows(_ALLOCATIONS):
        yield m.alloc_label(_id(pid))
        yield m.allocation(f"{kind} ({level})", _id(pid), int(size or 0), str(address or ""),
                           db.agent(guid, agent_id), start, end)


def _process_labels(db: _Db) -> Iterator[Record]:
    for pid, command in db.rows("select pid, command from rocpd_info_process"):
        exe = str(command or "").split(" ")[0].rsplit("/", 1)[-1] or "process"
        yield Label(int(pid), None, f"{exe} ({pid})")


def records(path: Path, fmt: str, progress: Progress | None = None) -> Iterator[Record]:
    """Every trace record of the rocpd (``fmt="rocpd"``) or rocprof v1 database ``path``."""
    conn = connect(path)
    with reading(path, conn, progress, "database"):
        if fmt == "rocprof-v1-db":
            rows = conn.execute('select KernelName, "gpu-id", "queue-id", "Index", BeginNs, EndNs from KERN')
            yield from v1_kernels((str(name), int(gpu), int(queue), int(index), int(start), int(end))
                                  for name, gpu, queue, index, start, end in rows)
        else:
            db = _Db(conn, path)
            yield from _process_labels(db)
            yield from _rocpd_records(db)
