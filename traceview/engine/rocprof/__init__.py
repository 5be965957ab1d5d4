"""ROCm profiler outputs, translated into Kineto-style Chrome JSON for the trace processor.

Inputs (detected by content): rocprofv3 CSV (a run's ``<prefix>_*_trace.csv``
files, merged), rocprofv3 JSON, rocpd SQLite, legacy rocprof v1
``results.csv``/``results.db``, and rocprofv3 output directories. rocprofv3's
``.pftrace`` is Perfetto protobuf and loads natively, without this package.

``iter_chunks`` streams the translation: records are read one at a time and
JSON leaves in chunks, so no input or output is ever whole in memory.
docs/formats.md describes how each record maps into the processor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from traceview.engine import formats
from traceview.engine.rocprof import csvs, rocpd, sdkjson
from traceview.engine.rocprof.emit import Progress, to_chunks
from traceview.errors import TraceLoadError

# Formats this package converts (TraceFile.format values).
CONVERTED = frozenset({"rocprofv3-csv", "rocprof-v1-csv", "rocprofv3-json", "rocpd", "rocprof-v1-db"})

_JSON_ROOT = re.compile(rb'^\{\s*"rocprofiler-sdk-tool"\s*:')
# Directory members tried in this order; the first kind present wins (one run
# saved in several formats holds the same data, rocpd the most of it).
# No patterns: the CSV files of one run (several runs is an error).
_DIR_PATTERNS = (("rocpd database", ("*.db",), {"rocpd"}),
                 ("rocprofv3 JSON file", ("*.json", "*.json.gz"), {"rocprofv3-json"}),
                 ("rocprofv3 CSV run", (), {"rocprofv3-csv"}),
                 ("rocprof v1 database", ("*.db",), {"rocprof-v1-db"}),
                 ("Perfetto trace", ("*.pftrace", "*.perfetto-trace", "*.pb"), {"perfetto-proto"}))


def sniff(head: bytes) -> str | None:
    """The rocprof format the first bytes of a file show, or None."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _JSON_ROOT.match(text):
        return "rocprofv3-json"
    if b"\x00" in text[:1024] or text[:1] in (b"{", b"["):
        return None
    first_line = text.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    table = csvs.header_table(first_line)
    if table is None:
        return None
    return "rocprof-v1-csv" if table == "v1_kernel" else "rocprofv3-csv"


def sqlite_format(path: Path, compressed: bool) -> str:
    """``rocpd`` or ``rocprof-v1-db``; TraceLoadError for any other SQLite file."""
    if compressed:
        raise TraceLoadError(path, "is a gzip-compressed SQLite database: decompress it first")
    return rocpd.sqlite_format(path)


def _candidates(path: Path, patterns: tuple[str, ...], wanted: set[str]) -> list[formats.TraceFile]:
    found = []
    for pattern in patterns:
        for member in sorted(path.glob(pattern)):
            try:
                info = formats.inspect_file(member)
            except TraceLoadError:
                continue
            if info.format in wanted:
                found.append(info)
    return found


def inspect_dir(path: Path) -> formats.TraceFile:
    """The trace a rocprofv3 output directory holds: a rocpd database, else a JSON
    file, else the run's CSV files (merged), else a v1 database or a .pftrace.
    Raises TraceLoadError when it holds several runs of that kind, or none."""
    for what, patterns, wanted in _DIR_PATTERNS:
        if not patterns:
            files = csvs.run_files(path)
            if any(kind in csvs.TRACE_TABLES for _, kind in files):
                size = csvs.total_bytes(path)
                return formats.TraceFile(path, "rocprofv3-csv", False, size, size)
            continue
        found = _candidates(path, patterns, wanted)
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(info.path.name for info in found[:5])
            raise TraceLoadError(path, f"holds {len(found)} {what}s ({names}); pass one of them")
    raise TraceLoadError(path, "is a directory without rocprofv3 output (rocpd .db, results.json, "
                               "*_kernel_trace.csv, .pftrace) or rocprof v1 results")


def iter_chunks(file: formats.TraceFile, on_progress: Callable[[int, int], None] | None = None,
                chunk_bytes: int = formats.CHUNK_BYTES) -> Iterator[bytes]:
    """The trace ``file`` (a format in CONVERTED) as Kineto-style JSON, in chunks.

    ``on_progress(bytes_read, total_bytes)`` follows the input files. Raises
    TraceLoadError naming the file and the problem (bad row, no events, ...).
    """
    if file.format in ("rocprofv3-csv", "rocprof-v1-csv"):
        progress = Progress(csvs.total_bytes(file.path), on_progress)
        records, what = csvs.records(file.path, progress), "rocprof trace rows"
    elif file.format == "rocprofv3-json":
        progress = Progress(file.size, on_progress)
        records, what = sdkjson.records(file.path, progress), "rocprofv3 buffer records"
    elif file.format in ("rocpd", "rocprof-v1-db"):
        progress = Progress(file.size, on_progress)
        records, what = rocpd.records(file.path, file.format, progress), "kernel, API or memory-copy rows"
    else:
        raise TraceLoadError(file.path, f"format {file.format!r} is not a rocprof format")
    yield from to_chunks(records, file.path, what, chunk_bytes)
