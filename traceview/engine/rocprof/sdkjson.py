"""rocprofv3 ``--output-format json`` (``{"rocprofiler-sdk-tool": [...]}``), parsed incrementally.

Each array item is one profiled process: ``metadata`` (pid, command), ``agents``,
``strings`` (kind and operation names by enum value, roctx messages by
correlation id), ``kernel_symbols``, then ``buffer_records`` with one list per
domain. rocprofv3 writes the names before the records, so one streaming pass
suffices; only names are kept, records are converted one by one.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from traceview.engine.rocprof import mapping as m
from traceview.engine.rocprof.emit import Label, Progress, Record, open_counted
from traceview.errors import TraceLoadError

ROOT = "rocprofiler-sdk-tool.item"
_WHOLE = {  # small objects kept whole
    f"{ROOT}.metadata": "metadata",
    f"{ROOT}.agents": "agents",
    f"{ROOT}.strings.buffer_records": "kinds",
    f"{ROOT}.strings.marker_api": "markers",
}
_RECORDS = {f"{ROOT}.buffer_records.{name}.item": name for name in (
    "kernel_dispatch", "hip_api", "hsa_api", "marker_api", "rccl_api", "memory_copy", "memory_allocation")}
_SYMBOL = f"{ROOT}.kernel_symbols.item"
_STARTS, _ENDS = frozenset({"start_map", "start_array"}), frozenset({"end_map", "end_array"})
_WHOLE_NAMES = {"metadata": "metadata", "agents": "agents list", "kinds": "strings.buffer_records",
                "markers": "strings.marker_api", "symbol": "kernel symbol"}


@dataclass
class _Process:
    """Names one process's records refer to by number."""

    pid: int = -1
    kinds: list[str] = field(default_factory=list)
    operations: list[list[str]] = field(default_factory=list)
    agents: dict[int, m.Agent] = field(default_factory=dict)
    markers: dict[int, str] = field(default_factory=dict)
    kernels: dict[int, str] = field(default_factory=dict)

    def kind(self, value: int) -> str:
        return self.kinds[value] if 0 <= value < len(self.kinds) else f"KIND_{value}"

    def operation(self, kind: int, value: int) -> str:
        names = self.operations[kind] if 0 <= kind < len(self.operations) else []
        return names[value] if 0 <= value < len(names) else f"{self.kind(kind)} operation {value}"


def _handle(value: Any) -> int:
    return int(value.get("handle", 0)) if isinstance(value, dict) else int(value or 0)


def _absorb(proc: _Process, tag: str, obj: Any) -> Iterator[Record]:
    """Stores a names object; yields the process label once its pid is known."""
    if tag == "metadata":
        proc.pid = int(obj.get("pid", -1))
        command = obj.get("command") or []
        exe = os.path.basename(str(command[0])) if command else "process"
        yield Label(proc.pid, None, f"{exe} ({proc.pid})")
    elif tag == "agents":
        for agent in obj:
            is_gpu = int(agent.get("type", 0)) == 2
            index = int(agent.get("logical_node_type_id", agent.get("node_id", 0)))
            name = str(agent.get("product_name") or agent.get("name") or "")
            proc.agents[_handle(agent.get("id"))] = m.Agent(is_gpu, index, name)
    elif tag == "kinds":
        proc.kinds = [str(item.get("kind", "")) for item in obj]
        proc.operations = [[str(op) for op in item.get("operations", [])] for item in obj]
    elif tag == "markers":  # cereal writes a map as [{"key": k, "value": v}, ...]
        pairs = obj.items() if isinstance(obj, dict) else ((i.get("key"), i.get("value")) for i in obj)
        proc.markers = {int(key): str(value) for key, value in pairs}
    elif tag == "symbol":
        name = obj.get("formatted_kernel_name") or obj.get("kernel_name") or ""
        proc.kernels[int(obj.get("kernel_id", 0))] = str(name)


def _agent(proc: _Process, handle: int) -> m.Agent:
    return proc.agents.get(handle, m.Agent(True, handle))


def _convert(proc: _Process, tag: str, rec: dict, ordinal: int) -> Iterator[Record]:
    """One buffer record as trace records. Correlation ids restart in every
    process, so those of the ``ordinal``-th process (from 0) move up by CORRELATION_SPAN."""
    corr = int(rec.get("correlation_id", {}).get("internal", 0)) + ordinal * m.CORRELATION_SPAN
    start, end = int(rec.get("start_timestamp", 0)), int(rec.get("end_timestamp", 0))
    kind, op = int(rec.get("kind", 0)), int(rec.get("operation", 0))
    if tag == "kernel_dispatch":
        info = rec.get("dispatch_info", {})
        agent, queue = _agent(proc, _handle(info.get("agent_id"))), _handle(info.get("queue_id"))
        kernel_id = int(info.get("kernel_id", 0))
        yield m.gpu_label(agent)
        yield m.queue_label(agent.index, queue)
        yield m.kernel(proc.kernels.get(kernel_id, f"kernel_id {kernel_id}"), agent.index, queue,
                       _handle(rec.get("stream_id")), corr, int(info.get("dispatch_id", 0)), start, end)
    elif tag == "memory_copy":
        direction = proc.operation(kind, op)
        src, dst = _agent(proc, _handle(rec.get("src_agent_id"))), _agent(proc, _handle(rec.get("dst_agent_id")))
        device, stream = m.copy_device(direction, src, dst) or dst, _handle(rec.get("stream_id"))
        yield m.gpu_label(device)
        yield m.copy_label(device.index, stream)
        yield m.memcpy(direction, device.index, stream, corr, start, end, int(rec.get("bytes", 0)))
    elif tag == "memory_allocation":
        agent = proc.agents.get(_handle(rec.get("agent_id")))
        yield m.alloc_label(proc.pid)
        yield m.allocation(proc.operation(kind, op), proc.pid, int(rec.get("allocation_size", 0)),
                           str(rec.get("address", "")), agent, start, end)
    else:
        name = proc.operation(kind, op)
        if name in m.MESSAGE_OPS:
            name = proc.markers.get(corr, name)
        yield m.api_call(proc.kind(kind), name, proc.pid, int(rec.get("thread_id", 0)), corr, start, end)


def records(path: Path, progress: Progress | None = None) -> Iterator[Record]:
    """Every trace record in the rocprofv3 JSON file ``path``, in file order."""
    procs: list[_Process] = []
    builder: ijson.ObjectBuilder | None = None
    tag, depth = "", 0
    with open_counted(path, progress) as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if raw.peek(2)[:2] == b"\x1f\x8b" else raw
        try:
            for prefix, event, value in ijson.parse(stream):
                if builder is not None:
                    builder.event(event, value)
                    depth += (event in _STARTS) - (event in _ENDS)
                    if depth == 0:
                        yield from _finish(procs, tag, builder.value, path)
                        builder = None
                    continue
                if event not in _STARTS:
                    continue
                if prefix == ROOT and event == "start_map":
                    procs.append(_Process())
                tag = _RECORDS.get(prefix) or _WHOLE.get(prefix) or ("symbol" if prefix == _SYMBOL else "")
                if tag:
                    builder, depth = ijson.ObjectBuilder(), 1
                    builder.event(event, value)
        except (ijson.JSONError, ijson.IncompleteJSONError, EOFError, OSError) as err:
            raise TraceLoadError(path, f"malformed rocprofv3 JSON ({str(err).splitlines()[0][:200]})") from None


def _finish(procs: list[_Process], tag: str, obj: Any, path: Path) -> Iterator[Record]:
    if not procs:
        raise TraceLoadError(path, "rocprofv3 JSON: records outside a rocprofiler-sdk-tool entry")
    proc = procs[-1]
    if tag in _RECORDS.values():
        if not proc.kinds:
            raise TraceLoadError(path, "rocprofv3 JSON lists buffer_records before the strings that "
                                       "name them; this converter needs rocprofv3's key order")
        try:
            converted = list(_convert(proc, tag, obj, len(procs) - 1)) if isinstance(obj, dict) else []
        except (ValueError, TypeError, AttributeError) as err:
            raise TraceLoadError(path, f"malformed {tag} record ({err})") from None
        yield from converted
    else:
        try:
            yield from _absorb(proc, tag, obj)
        except (ValueError, TypeError, AttributeError) as err:
            raise TraceLoadError(path, f"malformed {_WHOLE_NAMES.get(tag, tag)} ({err})") from None
