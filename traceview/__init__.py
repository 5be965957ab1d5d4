"""traceview: count GPU kernel launches per decode step, diff two traces, assert in CI."""

from traceview.engine import EngineConfig, Trace, open_trace
from traceview.errors import EngineError, QueryError, RulesError, TraceLoadError, TraceviewError

__version__ = "0.1.0"

__all__ = [
    "EngineConfig", "EngineError", "QueryError", "RulesError", "Trace", "TraceLoadError", "TraceviewError",
    "open_trace",
]
