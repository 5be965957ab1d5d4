"""Facts about a loaded trace for ``traceview info``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from traceview.model.sql import run_sql_file

if TYPE_CHECKING:
    from traceview.engine import Trace


def describe(trace: Trace) -> dict:
    """Returns format, size, engine, event counts, kernels, devices, time span, markers and load warnings."""
    run_sql_file(trace, "gpu_events.sql")
    counts = run_sql_file(trace, "describe.sql").iloc[0]
    from traceview.model.steps import find_step_markers

    return {
        "path": str(trace.path),
        "format": trace.file.format + (" (gzip)" if trace.file.compressed else ""),
        "size_bytes": trace.file.size,
        "engine": trace.engine,
        "perfetto_version": trace.perfetto_version,
        "slices": int(counts.slices),
        "cpu_ops": int(counts.cpu_ops),
        "launch_calls": int(counts.launch_calls),
        "gpu_kernels": int(counts.kernels),
        "gpu_memcpy": int(counts.memcpys),
        "gpu_memset": int(counts.memsets),
        "gpu_devices": int(counts.devices),
        "time_span_ms": round(float(counts.span_ns) / 1e6, 3),
        "step_markers": find_step_markers(trace),
        "load_warnings": [str(s) for s in trace.load_stats],
    }
