"""Engine: a trace file in, a queryable Perfetto trace processor out."""

from traceview.engine.api import LoadStat, Trace, open_trace, open_traces
from traceview.engine.backends import EngineConfig

__all__ = ["EngineConfig", "LoadStat", "Trace", "open_trace", "open_traces"]
