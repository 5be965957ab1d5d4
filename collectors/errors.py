"""Collector errors: one line each, so ``traceview collect`` exits 2 without a traceback."""

from __future__ import annotations

from traceview.errors import TraceviewError


class CollectError(TraceviewError):
    """A collection could not run or produced no trace (bad script, no active step, tool failed)."""


class MissingToolError(CollectError):
    """A package or program the collector needs (vLLM, rocprofv3, torch) is not installed."""
