"""rocprofv3 CSV output (``<prefix>_kernel_trace.csv`` and siblings) and legacy rocprof v1 ``results.csv``.

Files are told apart by their header line, never by name; names only group the
files of one run: every rocprofv3 CSV is ``<prefix>_<table>.csv`` with the same
prefix (``%pid%`` by default). Rows are read one at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from traceview.engine.rocprof import mapping as m
from traceview.engine.rocprof.emit import KERNEL, Progress, Record, Slice, open_counted
from traceview.errors import TraceLoadError

# Table -> the columns that identify its header (a subset of the rocprofv3 header:
# older releases lack Stream_Id/Thread_Id, so those are optional).
TABLES: dict[str, frozenset[str]] = {
    "kernel": frozenset({"Kind", "Agent_Id", "Queue_Id", "Kernel_Name", "Correlation_Id",
                         "Start_Timestamp", "End_Timestamp"}),
    "api": frozenset({"Domain", "Function", "Process_Id", "Thread_Id", "Correlation_Id",
                      "Start_Timestamp", "End_Timestamp"}),
    "memory_copy": frozenset({"Kind", "Direction", "Source_Agent_Id", "Destination_Agent_Id",
                              "Correlation_Id", "Start_Timestamp", "End_Timestamp"}),
    "memory_allocation": frozenset({"Kind", "Operation", "Agent_Id", "Allocation_Size", "Address",
                                    "Correlation_Id", "Start_Timestamp", "End_Timestamp"}),
    "agent_info": frozenset({"Node_Id", "Logical_Node_Id", "Agent_Type"}),
    "v1_kernel": frozenset({"Index", "KernelName", "gpu-id", "queue-id", "BeginNs", "EndNs"}),
}
# File-name endings rocprofv3 gives these tables (for grouping a run's files).
SUFFIXES = ("kernel_trace", "hip_api_trace", "hsa_api_trace", "marker_api_trace", "rccl_api_trace",
            "memory_copy_trace", "memory_allocation_trace", "memory_allocation", "agent_info")
TRACE_TABLES = ("kernel", "api", "memory_copy", "memory_allocation")


def header_table(line: str) -> str | None:
    """Which rocprof table a CSV header line starts, or None."""
    try:
        columns = set(next(csv.reader([line])))
    except (csv.Error, StopIteration):
        return None
    return next((table for table, need in TABLES.items() if need <= columns), None)


def _open(path: Path, progress: Progress | None = None) -> io.TextIOBase:
    raw = open_counted(path, progress)
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if raw.peek(2)[:2] == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")


def _table_of(path: Path) -> str | None:
    try:
        with _open(path) as fh:
            return header_table(fh.readline())
    except (OSError, EOFError):
        return None


def _prefix(path: Path) -> str | None:
    stem = path.name[:-4] if path.name.endswith(".csv") else None
    if stem is None:
        return None
    for suffix in SUFFIXES:
        if stem == suffix:
            return ""
        if stem.endswith("_" + suffix):
            return stem[: -len(suffix) - 1]
    return None


def run_files(path: Path) -> list[tuple[Path, str]]:
    """The CSVs of the rocprofv3 run ``path`` belongs to (or, for a directory, holds),
    with their table kinds, agent_info first. Raises TraceLoadError when a
    directory holds the output of several runs or none."""
    if path.is_dir():
        groups: dict[str, list[Path]] = {}
        for csv_path in sorted(path.glob("*.csv")):
            prefix = _prefix(csv_path)
            if prefix is not None and _table_of(csv_path) is not None:
                groups.setdefault(prefix, []).append(csv_path)
        if len(groups) > 1:
            names = ", ".join(repr(p) for p in sorted(groups))
            raise TraceLoadError(path, f"holds rocprofv3 CSV output of {len(groups)} runs "
                                       f"(prefixes {names}); pass one of their files")
        members = next(iter(groups.values()), [])
    else:
        prefix = _prefix(path)
        members = [path] if prefix is None else sorted(
            p for p in path.parent.glob("*.csv") if _prefix(p) == prefix and _table_of(p) is not None)
        if path not in members:
            members.append(path)
    kinds = [(member, _table_of(member)) for member in members]
    found = [(member, kind) for member, kind in kinds if kind is not None]
    return sorted(found, key=lambda item: item[1] != "agent_info")


class _Rows:
    """Dict rows of one CSV with typed getters whose errors name file, line and column."""

    def __init__(self, path: Path, root: Path, progress: Progress | None = None) -> None:
        self.path, self.root, self.progress = path, root, progress
        self.line = 1

    def fail(self, reason: str) -> TraceLoadError:
        where = f"line {self.line}" if self.path == self.root else f"{self.path.name}, line {self.line}"
        return TraceLoadError(self.root, f"{where}: {reason}")

    def rows(self) -> Iterator[dict[str, str]]:
        with _open(self.path, self.progress) as fh:
            try:
                for self.line, row in enumerate(csv.DictReader(fh), start=2):
                    if None in row.values():  # DictReader fills a short row's missing fields with None
                        raise self.fail("the row has fewer fields than the header")
                    yield row
            except csv.Error as err:
                raise self.fail(f"malformed CSV ({err})") from None
            except (OSError, EOFError, zlib.error) as err:
                raise self.fail(f"truncated or corrupt gzip data ({err})") from None

    def int(self, row: dict[str, str], column: str, default: int | None = None) -> int:
        value = row.get(column)
        if value is None or value == "":
            if default is not None:
                return default
            raise self.fail(f"column {column} is missing")
        try:
            return int(value)
        except ValueError:
            raise self.fail(f"column {column} is not an integer: {value[:40]!r}") from None


def _agents(rows: _Rows) -> dict[int, m.Agent]:
    """agent_info.csv: node id -> agent, GPUs numbered in node order (rocprofv3's type index)."""
    table = [(rows.int(r, "Node_Id"), r.get("Agent_Type", ""), r.get("Product_Name") or r.get("Name", ""))
             for r in rows.rows()]
    agents, gpus, cpus = {}, 0, 0
    for node, kind, name in sorted(table):
        is_gpu = kind.strip().upper() == "GPU"
        agents[node] = m.Agent(is_gpu, gpus if is_gpu else cpus, name)
        gpus, cpus = gpus + is_gpu, cpus + (not is_gpu)
    return agents


def _agent(rows: _Rows, label: str, agents: dict[int, m.Agent], column: str) -> m.Agent:
    agent = m.agent_from_label(label, agents)
    if agent is None:
        raise rows.fail(f"column {column} names no agent: {label[:40]!r}")
    return agent


def _kernels(rows: _Rows, agents: dict[int, m.Agent]) -> Iterator[Record]:
    seen: set[tuple[int, int]] = set()
    for row in rows.rows():
        agent = _agent(rows, row.get("Agent_Id", ""), agents, "Agent_Id")
        queue = rows.int(row, "Queue_Id")
        if (agent.index, queue) not in seen:
            seen.add((agent.index, queue))
            yield m.gpu_label(agent)
            yield m.queue_label(agent.index, queue)
        yield m.kernel(row.get("Kernel_Name", ""), agent.index, queue, rows.int(row, "Stream_Id", 0),
                       rows.int(row, "Correlation_Id"), rows.int(row, "Dispatch_Id", 0),
                       rows.int(row, "Start_Timestamp"), rows.int(row, "End_Timestamp"))


def _api_calls(rows: _Rows, agents: dict[int, m.Agent]) -> Iterator[Record]:
    for row in rows.rows():
        yield m.api_call(row.get("Domain", ""), row.get("Function", ""), rows.int(row, "Process_Id"),
                         rows.int(row, "Thread_Id"), rows.int(row, "Correlation_Id"),
                         rows.int(row, "Start_Timestamp"), rows.int(row, "End_Timestamp"))


def _copies(rows: _Rows, agents: dict[int, m.Agent]) -> Iterator[Record]:
    seen: set[tuple[int, int]] = set()
    for row in rows.rows():
        direction = row.get("Direction", "")
        src = _agent(rows, row.get("Source_Agent_Id", ""), agents, "Source_Agent_Id")
        dst = _agent(rows, row.get("Destination_Agent_Id", ""), agents, "Destination_Agent_Id")
        device = m.copy_device(direction, src, dst) or dst
        stream = rows.int(row, "Stream_Id", 0)
        if (device.index, stream) not in seen:
            seen.add((device.index, stream))
            yield m.gpu_label(device)
            yield m.copy_label(device.index, stream)
        yield m.memcpy(direction, device.index, stream, rows.int(row, "Correlation_Id"),
                       rows.int(row, "Start_Timestamp"), rows.int(row, "End_Timestamp"))


def _allocations(rows: _Rows, agents: dict[int, m.Agent], pid: int) -> Iterator[Record]:
    yield m.alloc_label(pid)
    for row in rows.rows():
        label = row.get("Agent_Id", "")
        agent = m.agent_from_label(label, agents) if label.strip() else None
        yield m.allocation(row.get("Operation", ""), pid, rows.int(row, "Allocation_Size", 0),
                           row.get("Address", ""), agent,
                           rows.int(row, "Start_Timestamp"), rows.int(row, "End_Timestamp"))


def _v1_kernels(rows: _Rows, agents: dict[int, m.Agent]) -> Iterator[Record]:
    yield from v1_kernels((row.get("KernelName", ""), rows.int(row, "gpu-id"), rows.int(row, "queue-id"),
                           rows.int(row, "Index"), rows.int(row, "BeginNs"), rows.int(row, "EndNs"))
                          for row in rows.rows())


def v1_kernels(dispatches: Iterable[tuple[str, int, int, int, int, int]]) -> Iterator[Record]:
    """Legacy rocprof v1 dispatches (name, gpu-id, queue-id, Index, BeginNs, EndNs). v1 records
    no correlation id, so these kernels have no launch call. Names lose the quotes
    v1's results.db keeps around them."""
    seen: set[tuple[int, int]] = set()
    for name, gpu, queue, index, start, end in dispatches:
        if (gpu, queue) not in seen:
            seen.add((gpu, queue))
            yield m.gpu_label(m.Agent(True, gpu))
            yield m.queue_label(gpu, queue)
        yield Slice(KERNEL, name.strip('"'), gpu, queue, start, end,
                    (("device", gpu), ("queue", queue), ("dispatch", index)), lanes=True)


def _process_id(files: list[tuple[Path, str]], root: Path) -> int:
    """The profiled process: Process_Id of the run's API table, else a numeric prefix, else -1."""
    for member, kind in files:
        if kind == "api":
            rows = _Rows(member, root)
            for row in rows.rows():
                return rows.int(row, "Process_Id")
    prefix = _prefix(files[0][0]) if files else None
    return int(prefix) if prefix and prefix.isdigit() else -1


def records(path: Path, progress: Progress | None = None) -> Iterator[Record]:
    """Every trace record of the run ``path`` belongs to, one table after another."""
    files = run_files(path)
    if not any(kind in TRACE_TABLES or kind == "v1_kernel" for _, kind in files):
        names = ", ".join(member.name for member, _ in files) or "no rocprof CSV"
        raise TraceLoadError(path, f"holds no rocprofv3 trace table (kernel, HIP/marker API, "
                                   f"memory copy) among: {names}")
    agents: dict[int, m.Agent] = {}
    readers: dict[str, Callable[[_Rows, dict[int, m.Agent]], Iterator[Record]]] = {
        "kernel": _kernels, "api": _api_calls, "memory_copy": _copies, "v1_kernel": _v1_kernels}
    for member, kind in files:
        rows = _Rows(member, path, progress)
        if kind == "agent_info":
            agents = _agents(rows)
        elif kind == "memory_allocation":
            yield from _allocations(rows, agents, _process_id(files, path))
        else:
            yield from readers[kind](rows, agents)


def total_bytes(path: Path) -> int:
    """Bytes on disk of the files ``records(path)`` reads (to size its progress)."""
    return sum(member.stat().st_size for member, _ in run_files(path))
