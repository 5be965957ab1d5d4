"""The HTML report: ``diff_report`` (before/after) and ``trace_report`` (one run) return a self-contained page."""

from traceview.report.build import ReportOptions, diff_report, figure_html, trace_report

__all__ = ["ReportOptions", "diff_report", "figure_html", "trace_report"]
