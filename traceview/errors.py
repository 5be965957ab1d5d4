"""One error family. ``str(error)`` is the single line the CLI prints."""

from __future__ import annotations

from pathlib import Path


class TraceviewError(Exception):
    """Something traceview could not do, with the file it concerns and why."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __reduce__(self):
        # Rebuild from (path, reason), not from the message: errors cross process pools.
        return (type(self), (self.path, self.reason))


class TraceLoadError(TraceviewError):
    """The file is missing, unreadable, or not a trace the processor can load."""


class QueryError(TraceviewError):
    """A SQL query failed inside the trace processor."""


class RulesError(TraceviewError):
    """A rules, step-marker or expectation file is malformed."""


class EngineError(TraceviewError):
    """No trace processor could be started (e.g. a --tp-bin that does not exist)."""


class Wasm32MemoryError(TraceLoadError):
    """The 4 GiB wasm32 trace processor ran out of heap: the memory64 build may load the trace."""


class TraceClosedError(TraceviewError):
    """A Trace was used after ``close()``."""
