"""A trace argument that is a file, or a directory holding one trace per rank."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from traceview.engine import EngineConfig
from traceview.errors import TraceLoadError
from traceview.model.counts import LaunchCounts, analyze

# What torch.profiler, Perfetto and traceview's collectors write; anything else in the directory is ignored.
TRACE_SUFFIXES = (".json", ".json.gz", ".pftrace", ".pftrace.gz", ".perfetto-trace", ".perfetto-trace.gz")
_RANK = re.compile(r"(?:rank|_r|-r|tp|dp)[_-]?(\d+)", re.IGNORECASE)

# (file about to load) -> context manager yielding an on_progress(done_bytes, total_bytes) callback or None;
# the CLI passes one that draws a bar and removes it when the file is done.
ProgressFactory = Callable[[Path], AbstractContextManager]


def _rank_key(path: Path) -> tuple[int, str]:
    # rank10 after rank9: order by the number in the name, then by name.
    match = _RANK.search(path.name)
    return (int(match.group(1)) if match else -1, path.name)


def trace_files(path: str | Path) -> list[Path]:
    """``[path]`` for a file; for a directory, its trace files ordered by rank number in the name.

    Raises TraceLoadError for a missing path or a directory without trace files.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise TraceLoadError(path, "no such file or directory")
    if not path.is_dir():
        raise TraceLoadError(path, "not a file or directory")
    files = [p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(TRACE_SUFFIXES)]
    if not files:
        raise TraceLoadError(path, f"directory holds no trace file ({', '.join(TRACE_SUFFIXES)})")
    return sorted(files, key=_rank_key)


def analyze_ranks(path: str | Path, step_marker: str | None = None, rules_path: Path | None = None,
                  config: EngineConfig | None = None,
                  progress: ProgressFactory | None = None) -> list[LaunchCounts]:
    """Counts every trace of ``path`` (one file, or one per rank in a directory), in rank order."""
    out = []
    for file in trace_files(path):
        with (progress(file) if progress is not None else nullcontext()) as on_progress:
            out.append(analyze(file, step_marker=step_marker, rules_path=rules_path, config=config,
                               on_progress=on_progress))
    return out
