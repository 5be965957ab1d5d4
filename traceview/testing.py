"""Helpers for projects that profile inside their own test suite.

>>> from traceview.testing import assert_launch_budget
>>> assert_launch_budget("traces/decode.pt.trace.json.gz", "tests/launches.toml", skip=1, tolerance="5%")
"""

from __future__ import annotations

from pathlib import Path

from traceview.analyses.budget import Limits, compare, grown_lines
from traceview.batch import analyze_ranks

__all__ = ["assert_launch_budget"]


def assert_launch_budget(trace_path: str | Path, budget_path: str | Path, skip: int = 0,
                         tolerance: str | float | None = None, step_marker: str | None = None,
                         rules_path: str | Path | None = None) -> None:
    """Raises AssertionError listing every budget entry the trace grew beyond ``tolerance``.

    ``trace_path``: a trace, or a directory of per-rank traces (averaged); ``budget_path``: a file from
    ``traceview budget write``; ``tolerance``: launches per step (``2``) or a percentage of each entry
    (``"5%"``); ``skip``: warm-up steps to drop. Counts go through traceview's result cache. A bad trace
    or budget raises TraceviewError (it is not a failed budget).
    """
    rules = Path(rules_path) if rules_path is not None else None
    # Read as `check --budget` reads it: a misspelled category is refused, not counted as 0 launches.
    limits = Limits.read(Path(budget_path), None if tolerance is None else str(tolerance), rules)
    counts = analyze_ranks(trace_path, step_marker, rules)
    result = compare(limits.budget, counts, limits.tolerance, skip, limits.rules)
    if not result.passed:
        grown = grown_lines(result)
        raise AssertionError(f"{trace_path}: {len(grown)} launch budget entr{'y' if len(grown) == 1 else 'ies'} of "
                             f"{budget_path} grew beyond tolerance {limits.tolerance}:\n"
                             + "\n".join(f"  {g}" for g in grown))
