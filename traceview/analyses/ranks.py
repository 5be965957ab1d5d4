"""Counting every trace of a run: one file, or a directory with one trace per rank."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from traceview.engine import EngineConfig
from traceview.model.counts import LaunchCounts, analyze
from traceview.model.ranks import trace_files

# (file about to load) -> context manager yielding an on_progress(done_bytes, total_bytes) callback or None;
# the CLI passes one that draws a bar and removes it when the file is done.
ProgressFactory = Callable[[Path], AbstractContextManager]


def analyze_ranks(path: str | Path, step_marker: str | None = None, rules_path: Path | None = None,
                  config: EngineConfig | None = None,
                  progress: ProgressFactory | None = None) -> list[LaunchCounts]:
    """Counts every trace of ``path`` (itself, or the traces of a directory in rank order).

    Raises TraceLoadError for a missing path or a directory without traces.
    """
    out = []
    for file in trace_files(Path(path)):
        with (progress(file) if progress is not None else nullcontext()) as on_progress:
            out.append(analyze(file, step_marker=step_marker, rules_path=rules_path, config=config,
                               on_progress=on_progress))
    return out
