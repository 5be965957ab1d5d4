"""Checks expectations against one run (absolute per-step counts) or against a diff (deltas)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from traceview.analyses.diff import DiffResult
from traceview.analyses.expectations import Expectation, evaluate
from traceview.analyses.summary import Side, summarize
from traceview.errors import RulesError
from traceview.model.counts import LaunchCounts


@dataclass(frozen=True)
class CheckResult:
    """``passed``: every applicable expectation holds. ``findings``: one row per
    expectation, columns ``expectations.FINDING_COLUMNS`` (``skipped`` rows did not apply)."""

    passed: bool
    findings: pd.DataFrame

    @property
    def failures(self) -> pd.DataFrame:
        return self.findings[~self.findings["ok"]]


def _result(findings: pd.DataFrame) -> CheckResult:
    return CheckResult(bool(findings["ok"].all()), findings)


def check_side(side: Side, expectations: Iterable[Expectation]) -> CheckResult:
    """Checks ``value`` expectations against the per-step means of one run (``step_ms``: mean step ms).

    ``delta`` expectations need two runs: they are reported as skipped. Raises
    RulesError when expectations were given and none of them applies.
    """
    expectations = list(expectations)
    findings = evaluate(expectations, lambda e: side.value(e.category) if e.field == "value" else None)
    if expectations and findings["skipped"].all():
        raise RulesError(None, f"none of the {len(expectations)} expectations applies to one trace: they give deltas "
                               "(after - before); use traceview diff BEFORE AFTER, or give values (e.g. fill<=4)")
    return _result(findings)


def check_counts(counts: LaunchCounts | Sequence[LaunchCounts], expectations: Iterable[Expectation],
                 skip: int = 0) -> CheckResult:
    """Summarizes one run (one trace, or per-rank traces averaged) and checks ``expectations`` on it."""
    return check_side(summarize(counts, skip), expectations)


def check_diff(diff: DiffResult, expectations: Iterable[Expectation]) -> CheckResult:
    """Checks ``delta`` expectations against after-minus-before and ``value`` ones against the after side."""
    return _result(evaluate(expectations, lambda e: diff.actual(e.category) if e.field == "delta"
                            else diff.after.value(e.category)))
