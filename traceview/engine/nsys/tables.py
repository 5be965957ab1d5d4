"""What each Nsight Systems export row becomes in the trace processor: the Kineto shape.

One place, shared by every reader of an nsys SQLite export (see docs/formats.md):

- GPU work (``CUPTI_ACTIVITY_KIND_KERNEL`` / ``_MEMCPY`` / ``_MEMSET``): category
  ``kernel`` / ``gpu_memcpy`` / ``gpu_memset`` on pid = CUDA device, tid = stream,
  args ``correlation``, ``device``, ``stream`` (as PyTorch's CUDA traces have them);
- CUDA runtime and driver calls: ``cuda_runtime`` / ``cuda_driver`` on (process id,
  thread id), named without nsys's ``_v<version>`` suffix, args ``correlation``;
- NVTX ranges: ``user_annotation`` on the thread that opened them, except PyTorch's
  ``emit_nvtx`` operator ranges (``aten::copy_, op_id = 12``), which become ``cpu_op``
  slices named by the operator, the shape the model reads a launching op from.
"""

from __future__ import annotations

import re

from traceview.engine.rocprof.emit import ANNOTATION, KERNEL, LAUNCH, MEMCPY, Label, Slice

MEMSET = "gpu_memset"
DRIVER = "cuda_driver"
CPU_OP = "cpu_op"

# nsys packs ids as ``(hw << 48) | (pid << 24) | tid``: 24 bits each for pid and tid.
ID_BITS = 24
ID_MASK = (1 << ID_BITS) - 1
# ENUM_NSYS_EVENT_CLASS: TRACE_PROCESS_EVENT_CUDA_DRIVER (newer exports keep driver
# calls in CUPTI_ACTIVITY_KIND_RUNTIME and tell them apart by this class).
DRIVER_EVENT_CLASS = 1
# ENUM_NSYS_EVENT_TYPE names of the NVTX rows that are ranges or marks; the export's
# enum table gives their ids (the defaults are nsys 2020-2026's ids, used without it).
RANGE_TYPES = {"NvtxPushPopRange": 59, "NvtxStartEndRange": 60, "NvtxtPushPopRange": 70,
               "NvtxtStartEndRange": 71}
MARK_TYPES = {"NvtxMark": 34, "NvtxtMark": 65}

# ENUM_CUDA_MEMCPY_OPER ids, written the way Kineto names copies ("Memcpy HtoD").
COPY_KINDS = {0: "Unknown", 1: "HtoD", 2: "DtoH", 3: "HtoA", 4: "AtoH", 5: "AtoA", 6: "AtoD", 7: "DtoA",
              8: "DtoD", 9: "HtoH", 10: "PtoP", 11: "HtoD (UVM)", 12: "DtoH (UVM)", 13: "DtoD (UVM)"}
# ENUM_CUDA_MEM_KIND labels.
MEMORY_KINDS = {0: "Pageable", 1: "Pinned", 2: "Device", 3: "Array", 4: "Managed", 5: "Device Static",
                6: "Managed Static", 7: "Unknown"}

_VERSION_SUFFIX = re.compile(r"_v\d{4,5}$")  # cudaLaunchKernel_v7000, cudaStreamGetCaptureInfo_v2_v11030
# torch.autograd.profiler.emit_nvtx: "<op>[, seq = N], op_id = M[, sizes = [...]][, input_op_ids = [...]]".
_TORCH_OP_RANGE = re.compile(r"(?P<op>[^,]+)(?:, seq = -?\d+)?, op_id = \d+(?:, .*)?", re.DOTALL)


def pid_of(global_id: int | None) -> int:
    """The OS process id packed in an nsys ``globalPid``/``globalTid``; -1 where there is none."""
    return -1 if global_id is None else (int(global_id) >> ID_BITS) & ID_MASK


def tid_of(global_tid: int | None) -> int:
    """The OS thread id packed in an nsys ``globalTid``; -1 where there is none."""
    return -1 if global_tid is None else int(global_tid) & ID_MASK


def api_name(name: str) -> str:
    """A CUDA API name as CUPTI and Kineto spell it: ``cudaLaunchKernel_v7000`` -> ``cudaLaunchKernel``."""
    return _VERSION_SUFFIX.sub("", name)


def api_category(name: str, event_class: int | None) -> str:
    """``cuda_driver`` for driver calls (by event class, else by the ``cu`` prefix), else ``cuda_runtime``."""
    if event_class is not None:
        return DRIVER if event_class == DRIVER_EVENT_CLASS else LAUNCH
    return DRIVER if name.startswith("cu") and not name.startswith("cuda") else LAUNCH


def api_call(name: str, event_class: int | None, pid: int, tid: int, correlation: int | None,
             start: int, end: int) -> Slice:
    name = api_name(name)
    args = () if correlation is None else (("correlation", correlation),)
    return Slice(api_category(name, event_class), name, pid, tid, start, end, args)


def _gpu_args(correlation: int | None, device: int, stream: int) -> tuple:
    args: tuple = (("device", device), ("stream", stream))
    return args if correlation is None else (("correlation", correlation),) + args


def kernel(name: str, device: int, stream: int, correlation: int | None, graph_node: int | None,
           start: int, end: int) -> Slice:
    args = _gpu_args(correlation, device, stream)
    if graph_node is not None:
        args += (("graph_node", graph_node),)
    return Slice(KERNEL, name, device, stream, start, end, args, lanes=True)


def _memory_kind(kind: int | None) -> str:
    return "Unknown" if kind is None else MEMORY_KINDS.get(kind, f"kind {kind}")


def copy_name(copy_kind: int | None, src_kind: int | None, dst_kind: int | None) -> str:
    """``Memcpy HtoD (Pinned -> Device)``, Kineto's name for a copy; without memory kinds ``Memcpy HtoD``."""
    direction = COPY_KINDS.get(copy_kind, f"kind {copy_kind}") if copy_kind is not None else "Unknown"
    if src_kind is None and dst_kind is None:
        return f"Memcpy {direction}"
    return f"Memcpy {direction} ({_memory_kind(src_kind)} -> {_memory_kind(dst_kind)})"


def memcpy(name: str, device: int, stream: int, correlation: int | None, size: int | None,
           start: int, end: int) -> Slice:
    args = _gpu_args(correlation, device, stream)
    if size is not None:
        args += (("bytes", size),)
    return Slice(MEMCPY, name, device, stream, start, end, args, lanes=True)


def memset(memory_kind: int | None, device: int, stream: int, correlation: int | None, size: int | None,
           start: int, end: int) -> Slice:
    args = _gpu_args(correlation, device, stream)
    if size is not None:
        args += (("bytes", size),)
    return Slice(MEMSET, f"Memset ({_memory_kind(memory_kind)})", device, stream, start, end, args, lanes=True)


def nvtx_range(text: str | None, pid: int, tid: int, start: int, end: int | None) -> Slice:
    """An NVTX range or mark (``end`` None: a mark, or a range never closed, kept as an instant)."""
    end = start if end is None else end
    if text is None:
        return Slice(ANNOTATION, "NVTX range", pid, tid, start, end)
    match = _TORCH_OP_RANGE.fullmatch(text)
    if match is not None:
        return Slice(CPU_OP, match.group("op"), pid, tid, start, end)
    return Slice(ANNOTATION, text, pid, tid, start, end)


def gpu_label(device: int) -> Label:
    return Label(device, None, f"GPU {device}")


def stream_label(device: int, stream: int) -> Label:
    return Label(device, stream, f"stream {stream}")


def process_label(pid: int, name: str | None) -> Label:
    return Label(pid, None, f"{name or 'process'} ({pid})")


def thread_label(pid: int, tid: int, name: str | None) -> Label:
    return Label(pid, tid, f"{name or 'thread'} ({tid})")
