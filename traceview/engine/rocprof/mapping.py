"""What each rocprof record becomes in the trace processor: one place, shared by every reader.

The shape is the one ROCm Kineto traces have, so the model layer reads rocprof
inputs unchanged (see docs/formats.md):

- GPU work: category ``kernel`` / ``gpu_memcpy`` on pid = GPU index, tid = HW queue
  (copies: a "copies, stream N" track), args ``correlation``, ``device``, ``stream``.
- HIP API calls: category ``cuda_runtime`` on (process id, thread id), args ``correlation``.
- roctx ranges: category ``user_annotation`` on the thread that pushed them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from traceview.engine.rocprof.emit import ALLOC_TID, ANNOTATION, COPY_TID_BASE, KERNEL, LAUNCH, MEMCPY, Label, Slice

# Marker operations whose record carries a user message (push/pop and start/stop
# ranges, marks). Older rocprofv3 files report MARKER_CORE_API with the first
# three, newer ones MARKER_CORE_RANGE_API with roctxThreadRangeA/ProcessRangeA.
MESSAGE_OPS = frozenset({"roctxMarkA", "roctxRangePushA", "roctxRangeStartA",
                         "roctxThreadRangeA", "roctxProcessRangeA"})
# Marker-domain rows whose Function column is an API name, not a message.
MARKER_API_OPS = frozenset({"roctxRangePop", "roctxRangeStop", "roctxGetThreadId",
                            "roctxProfilerPause", "roctxProfilerResume", "roctxNameOsThread",
                            "roctxNameHsaAgent", "roctxNameHipDevice", "roctxNameHipStream"})
ANNOTATION_DOMAINS = frozenset({"MARKER_CORE_API", "MARKER_CORE_RANGE_API"})
# A file holding several processes (rocpd, rocprofv3 JSON) restarts correlation
# ids in each; process k's ids are offset by k * CORRELATION_SPAN to stay unique.
CORRELATION_SPAN = 1 << 40

_COPY_NAMES = {
    "MEMORY_COPY_HOST_TO_DEVICE": "Memcpy HtoD",
    "MEMORY_COPY_DEVICE_TO_HOST": "Memcpy DtoH",
    "MEMORY_COPY_DEVICE_TO_DEVICE": "Memcpy DtoD",
    "MEMORY_COPY_HOST_TO_HOST": "Memcpy HtoH",
}
_AGENT_LABEL = re.compile(r"(?:(GPU|CPU|Agent)\s*)?(-?\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Agent:
    """A GPU or CPU agent; ``index`` is the GPU's index among GPUs (type index)."""

    is_gpu: bool
    index: int
    name: str = ""


def api_category(domain: str) -> str:
    """The slice category of an API call from its rocprof domain/kind name."""
    if domain.startswith("HIP_"):
        return LAUNCH  # HIP_RUNTIME_API(_EXT), HIP_COMPILER_API(_EXT)
    if domain.startswith("HSA_"):
        return "hsa_api"
    if domain.startswith("MARKER_"):
        return "marker_api"
    return domain.lower()


def agent_from_label(label: str, agents: dict[int, Agent]) -> Agent | None:
    """The agent a CSV label names: "Agent 2" (node id, mapped through agent_info when
    known), "GPU 0" (already a GPU index), or a bare number. None if unreadable."""
    match = _AGENT_LABEL.search(label.strip())
    if not match:
        return None
    kind, number = (match.group(1) or "").upper(), int(match.group(2))
    if kind == "GPU":
        return Agent(True, number)
    if kind == "CPU":
        return Agent(False, number)
    return agents.get(number, Agent(True, number))


def gpu_label(agent: Agent) -> Label:
    suffix = f" ({agent.name})" if agent.name else ""
    return Label(agent.index, None, f"GPU {agent.index}{suffix}")


def kernel(name: str, device: int, queue: int, stream: int, correlation: int | None,
           dispatch: int, start: int, end: int) -> Slice:
    args: tuple = (("device", device), ("queue", queue), ("stream", stream), ("dispatch", dispatch))
    if correlation is not None:
        args = (("correlation", correlation),) + args
    return Slice(KERNEL, name, device, queue, start, end, args, lanes=True)


def queue_label(device: int, queue: int) -> Label:
    return Label(device, queue, f"queue {queue}")


def memcpy(direction: str, device: int, stream: int, correlation: int, start: int, end: int,
           size: int | None = None) -> Slice:
    args: tuple = (("correlation", correlation), ("device", device), ("stream", stream))
    if size is not None:
        args += (("bytes", size),)
    return Slice(MEMCPY, _COPY_NAMES.get(direction, direction), device, COPY_TID_BASE + stream,
                 start, end, args, lanes=True)


def copy_label(device: int, stream: int) -> Label:
    return Label(device, COPY_TID_BASE + stream, f"copies, stream {stream}")


def copy_device(direction: str, src: Agent | None, dst: Agent | None) -> Agent | None:
    """The GPU a copy shows on: its GPU end, the destination first except for
    device-to-host (as rocprofv3's own Perfetto output files copies by destination)."""
    first, second = (src, dst) if direction.endswith("DEVICE_TO_HOST") else (dst, src)
    for agent in (first, second):
        if agent is not None and agent.is_gpu:
            return agent
    return first or second


def api_call(domain: str, name: str, pid: int, tid: int, correlation: int,
             start: int, end: int) -> Slice:
    """A HIP/HSA/RCCL/marker API call, or a roctx range when the row carries a message."""
    if domain in ANNOTATION_DOMAINS and name not in MARKER_API_OPS:
        return Slice(ANNOTATION, name, pid, tid, start, end)
    return Slice(api_category(domain), name, pid, tid, start, end, (("correlation", correlation),))


def allocation(operation: str, pid: int, size: int, address: str, agent: Agent | None,
               start: int, end: int) -> Slice:
    args: tuple = (("bytes", size), ("address", address))
    if agent is not None and agent.is_gpu:
        args += (("device", agent.index),)
    return Slice("memory_allocation", operation, pid, ALLOC_TID, start, end, args, lanes=True)


def alloc_label(pid: int) -> Label:
    return Label(pid, ALLOC_TID, "memory allocations")
