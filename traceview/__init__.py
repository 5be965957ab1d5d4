"""traceview: count GPU kernel launches per decode step, diff two traces, assert in CI.

>>> from traceview import analyze, diff_counts
>>> before = analyze("sample_traces/demo_eager_before.pt.trace.json.gz")
>>> before.per_step()            # steps x categories
>>> diff_counts(before, analyze("sample_traces/demo_eager_after.pt.trace.json.gz"), skip=1).categories
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it. Imported on first use, so that a process
# that needs one corner of the package (a JSON decoding worker, `traceview --version`)
# does not pay for pandas and the trace processor.
_EXPORTS = {
    "CheckResult": "traceview.analyses", "DiffResult": "traceview.analyses", "analyze_ranks": "traceview.batch",
    "check_counts": "traceview.analyses", "check_diff": "traceview.analyses", "diff_counts": "traceview.analyses",
    "EngineConfig": "traceview.engine", "Trace": "traceview.engine", "open_trace": "traceview.engine",
    "EngineError": "traceview.errors", "QueryError": "traceview.errors", "RulesError": "traceview.errors",
    "TraceLoadError": "traceview.errors", "TraceviewError": "traceview.errors",
    "LaunchCounts": "traceview.model.counts", "analyze": "traceview.model.counts",
    "count_launches": "traceview.model.counts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'traceview' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
