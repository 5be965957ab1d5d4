"""Analyses: pure functions over model frames (diff two runs, check expectations)."""

from traceview.analyses.check import CheckResult, RunCheck, check_counts, check_diff, check_runs, check_side
from traceview.analyses.diff import DiffResult, diff_counts, diff_sides
from traceview.analyses.expectations import Expectation, gather, load_expectation_file, parse_expectation
from traceview.analyses.summary import Side, rank_disagreements, summarize

__all__ = [
    "CheckResult", "DiffResult", "Expectation", "RunCheck", "Side", "check_counts", "check_diff",
    "check_runs", "check_side", "diff_counts", "diff_sides", "gather", "load_expectation_file", "parse_expectation",
    "rank_disagreements", "summarize",
]
