"""Checks expectations against one run (absolute per-step counts) or against a diff (deltas)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from traceview.analyses.diff import DiffResult
from traceview.analyses.expectations import LATENCY_CI, Expectation, evaluate
from traceview.analyses.latency import latency_actual
from traceview.analyses.summary import Side, default_label, summarize
from traceview.errors import RulesError, TraceviewError
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


def _require_gpu_events(side: Side) -> None:
    """Launch counts of a trace without GPU events are all 0: an expectation on them proves nothing."""
    if side.gpu_events == 0:
        raise TraceviewError(side.path, "holds no GPU events (GPU activity not recorded, or a CPU-only run), so every "
                                        "launch count is 0: expectations cannot be checked")


def check_side(side: Side, expectations: Iterable[Expectation]) -> CheckResult:
    """Checks ``value`` expectations against the per-step means of one run (``step_ms``: mean step ms).

    ``delta`` expectations need two runs: they are reported as skipped. Raises
    RulesError when expectations were given and none of them applies, and
    TraceviewError when the run has no GPU events.
    """
    expectations = list(expectations)
    if expectations:
        _require_gpu_events(side)
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
    """Checks ``delta`` expectations against after-minus-before and ``value`` ones against the after side.

    Raises TraceviewError when either side has no GPU events.
    """
    expectations = list(expectations)
    if expectations:
        _require_gpu_events(diff.before)
        _require_gpu_events(diff.after)
    return _result(evaluate(expectations, lambda e: _diff_actual(diff, e)))


def _diff_actual(diff: DiffResult, expectation: Expectation) -> float:
    """The number ``expectation`` is checked against: for ``latency`` the end of the leading metric's
    95 % interval that decides it (analyses/latency.latency_actual)."""
    if expectation.category == LATENCY_CI:
        verdict = diff.latency_verdict
        return float("nan") if verdict is None else latency_actual(expectation, verdict)
    return diff.actual(expectation.category) if expectation.field == "delta" else diff.after.value(expectation.category)


@dataclass(frozen=True)
class RunCheck:
    """One run of a batch check: its summary (``side``) and its expectations checked (``result``)."""

    side: Side
    result: CheckResult


def run_labels(runs: Sequence[str]) -> list[str]:
    """Report names of runs: the file or directory name without trace suffixes (``summary.default_label``),
    or the paths as given when two runs would get the same name."""
    labels = [default_label(run) for run in runs]
    return labels if len(set(labels)) == len(labels) else [str(run) for run in runs]


def check_runs(runs: Mapping[str, LaunchCounts | Sequence[LaunchCounts]], expectations: Iterable[Expectation],
               skip: int = 0) -> list[RunCheck]:
    """Summarizes each run (one trace, or its per-rank traces averaged) and checks ``expectations`` on it.

    ``runs`` maps a run's path to its counts (``batch.analyze_runs`` gives that
    mapping). Returns one RunCheck per run, in input order, labelled as
    ``run_labels`` says. Raises TraceviewError when ``skip`` leaves a rank no
    step, RulesError when no expectation applies to one run (all are deltas).
    """
    expectations = list(expectations)
    out = []
    for label, (path, counts) in zip(run_labels([str(p) for p in runs]), runs.items()):
        side = summarize(counts, skip, label, str(path))
        out.append(RunCheck(side, check_side(side, expectations)))
    return out


def all_passed(checks: Iterable[RunCheck]) -> bool:
    """Every applicable expectation holds in every run."""
    return all(check.result.passed for check in checks)
