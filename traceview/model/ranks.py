"""Multi-rank inputs: a directory of per-rank traces (vLLM writes one per TP worker)."""

from __future__ import annotations

import re
from pathlib import Path

from traceview.engine.formats import inspect_file
from traceview.errors import TraceLoadError

TRACE_SUFFIXES = (".json", ".json.gz", ".pftrace", ".pftrace.gz", ".perfetto-trace", ".perfetto-trace.gz")
_RANK = re.compile(r"(?:tp|rank|worker|pp|dp)[_-]?(\d+)", re.IGNORECASE)


def rank_label(path: Path) -> str:
    """``tp0``/``rank3``-style label from a file name, else the file name."""
    match = _RANK.search(path.name)
    return f"rank{int(match.group(1))}" if match else path.name


def trace_files(path: Path) -> list[Path]:
    """The trace files ``path`` stands for: itself, or the traces in a directory sorted by rank.

    Raises TraceLoadError for a missing path or a directory without traces.
    """
    if not path.exists():
        raise TraceLoadError(path, "no such file or directory")
    if not path.is_dir():
        return [path]
    files = [p for p in path.iterdir() if p.is_file() and p.name.endswith(TRACE_SUFFIXES)]
    if not files:
        # A rocprofv3 output directory (CSV run, rocpd database) is one trace.
        try:
            inspect_file(path)
        except TraceLoadError:
            raise TraceLoadError(path, "directory holds no trace files (per-rank Kineto/Perfetto traces "
                                       "or one rocprofv3 output)") from None
        return [path]

    def order(p: Path) -> tuple:
        match = _RANK.search(p.name)
        return (int(match.group(1)) if match else 1 << 30, p.name)

    return sorted(files, key=order)
