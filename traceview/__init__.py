"""traceview: count GPU kernel launches per decode step, diff two traces, assert in CI.

>>> from traceview import analyze, diff_counts
>>> before = analyze("sample_traces/demo_eager_before.pt.trace.json.gz")
>>> before.per_step()            # steps x categories
>>> diff_counts(before, analyze("sample_traces/demo_eager_after.pt.trace.json.gz"), skip=1).categories
"""

from traceview.analyses import CheckResult, DiffResult, analyze_ranks, check_counts, check_diff, diff_counts
from traceview.engine import EngineConfig, Trace, open_trace
from traceview.errors import EngineError, QueryError, RulesError, TraceLoadError, TraceviewError
from traceview.model.counts import LaunchCounts, analyze, count_launches

__version__ = "0.1.0"

__all__ = [
    "CheckResult", "DiffResult", "EngineConfig", "EngineError", "LaunchCounts", "QueryError", "RulesError", "Trace",
    "TraceLoadError", "TraceviewError", "analyze", "analyze_ranks", "check_counts", "check_diff", "count_launches",
    "diff_counts", "open_trace",
]
