"""NVIDIA Nsight Systems input, translated into Kineto-style Chrome JSON for the trace processor.

Inputs: an SQLite export (``nsys export --type sqlite``), detected by its tables, and
a report (``.nsys-rep``/``.qdrep``), exported to SQLite with ``nsys`` when it is on
PATH (``report.py``). ``iter_chunks`` streams the translation the way rocprof inputs
stream (``engine/rocprof/emit.py``): rows are read one at a time, JSON leaves in chunks.
docs/formats.md describes how each table maps into the processor.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from traceview.engine import formats
from traceview.engine.nsys import report, translate
from traceview.engine.rocprof.emit import Progress, to_chunks
from traceview.engine.rocprof.rocpd import connect
from traceview.errors import TraceLoadError

SQLITE, REPORT = "nsys-sqlite", "nsys-rep"
CONVERTED = frozenset({SQLITE, REPORT})  # TraceFile.format values this package translates


def sqlite_format(path: Path) -> str | None:
    """``nsys-sqlite`` when the SQLite database ``path`` is an Nsight Systems export, else None."""
    conn = connect(path)
    try:
        names = [row[0] for row in conn.execute("select name from sqlite_master where type in ('table', 'view')")]
    except sqlite3.Error as err:
        raise TraceLoadError(path, f"unreadable SQLite database ({err})") from None
    finally:
        conn.close()
    return SQLITE if translate.is_export(names) else None


def inspect_report(path: Path, size: int) -> formats.TraceFile:
    """The report ``path`` (``size`` bytes), read through its SQLite export (made now unless cached)."""
    exported = report.exported(path)
    if sqlite_format(exported) is None:
        raise TraceLoadError(path, "nsys exported something that is not an Nsight Systems SQLite export")
    return formats.TraceFile(path, REPORT, False, size, exported.stat().st_size, read_path=exported)


def iter_chunks(file: formats.TraceFile, on_progress: Callable[[int, int], None] | None = None,
                chunk_bytes: int = formats.CHUNK_BYTES) -> Iterator[bytes]:
    """The nsys trace ``file`` as Kineto-style JSON, in chunks.

    ``on_progress(done, total)`` follows the rows read, in bytes of the export. Raises
    TraceLoadError naming the file and the problem (unsupported layout, no rows, ...).
    """
    if file.format not in CONVERTED:
        raise TraceLoadError(file.path, f"format {file.format!r} is not an Nsight Systems format")
    source = file.read_path or file.path
    progress = Progress(source.stat().st_size, on_progress)
    try:
        yield from to_chunks(translate.records(source, progress), source, "kernel, memcpy, memset, CUDA API or "
                             "NVTX rows", chunk_bytes)
    except TraceLoadError as err:
        raise TraceLoadError(file.path, err.reason) from None
