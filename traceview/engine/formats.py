"""Input files: detect the format from content, then stream it in chunks.

The whole file is never held in memory: gzip is decompressed chunk by chunk
and each chunk goes straight to the trace processor.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import queue
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from traceview.errors import TraceLoadError

CHUNK_BYTES = 8 << 20
GZIP_MAGIC = b"\x1f\x8b"
SQLITE_MAGIC = b"SQLite format 3\x00"
NSYS_REPORT_SUFFIXES = (".nsys-rep", ".qdrep")  # Nsight Systems reports, exported to SQLite by nsys

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class TraceFile:
    """What we learned about a file before loading it."""

    path: Path
    format: str  # "json" | "perfetto-proto" | a rocprof or nsys format (rocprof.CONVERTED, nsys.CONVERTED)
    compressed: bool
    size: int  # bytes on disk
    estimated_raw_size: int  # uncompressed bytes (gzip ISIZE is mod 4 GiB: a lower bound)
    # The file actually read when it is not ``path``: an nsys report's cached SQLite export.
    read_path: Path | None = None


def _gzip_isize(path: Path, size: int) -> int:
    with path.open("rb") as fh:
        fh.seek(size - 4)
        return int.from_bytes(fh.read(4), "little")


def _sniff(head: bytes) -> str | None:
    from traceview.engine import rocprof  # imports this module: load it late

    rocprof_format = rocprof.sniff(head)  # rocprofv3 JSON/CSV before the generic JSON check
    if rocprof_format is not None:
        return rocprof_format
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "json"
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    # A Perfetto trace is a `Trace` proto: repeated field 1 (TracePacket),
    # wire type 2, so the first byte is 0x0a followed by a varint length.
    if head[:1] == b"\x0a" and len(head) > 1:
        return "perfetto-proto"
    return None


def inspect_file(path: Path) -> TraceFile:
    """Checks that ``path`` is a readable trace and detects its format.

    Raises TraceLoadError naming the file and the problem.
    """
    if not path.exists():
        raise TraceLoadError(path, "no such file")
    if path.is_dir():
        from traceview.engine import rocprof

        return rocprof.inspect_dir(path)  # a rocprofv3 output directory
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise TraceLoadError(path, f"cannot read: {err.strerror or err}") from None
    if size == 0:
        raise TraceLoadError(path, "file is empty")
    compressed = head.startswith(GZIP_MAGIC)
    raw_size = size
    if compressed:
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(4096)
        except EOFError:
            raise TraceLoadError(path, "truncated gzip: the compressed stream ends early") from None
        except (OSError, zlib.error) as err:
            raise TraceLoadError(path, f"not a valid gzip file ({_one_line(err)})") from None
        if not head:
            raise TraceLoadError(path, "gzip file decompresses to nothing")
        raw_size = _gzip_isize(path, size) if size >= 18 else 0
    fmt = _sniff(head)
    if fmt != "sqlite" and path.name.lower().endswith(NSYS_REPORT_SUFFIXES):
        from traceview.engine import nsys

        # NVIDIA's report container is undocumented: a report is known by its name, unless it is SQLite
        # (an export named like a report reads as the export it is).
        return nsys.inspect_report(path, size)
    if fmt is None:
        raise TraceLoadError(path, "not a trace: expected Kineto/Chrome JSON, a Perfetto protobuf trace, "
                                   "rocprof output (CSV, JSON, rocpd SQLite) or an Nsight Systems SQLite export")
    if fmt == "sqlite":
        fmt = _sqlite_format(path, compressed)
    return TraceFile(path, fmt, compressed, size, raw_size)


def _sqlite_format(path: Path, compressed: bool) -> str:
    """``nsys-sqlite``, ``rocpd`` or ``rocprof-v1-db`` by the tables ``path`` holds; TraceLoadError otherwise."""
    from traceview.engine import nsys, rocprof

    if not compressed and nsys.sqlite_format(path) is not None:
        return nsys.SQLITE
    return rocprof.sqlite_format(path, compressed)  # rocpd or rocprof v1, else TraceLoadError


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def iter_chunks(info: TraceFile, on_progress: ProgressFn | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Yields the decompressed trace in chunks; progress counts bytes read from disk."""
    with info.path.open("rb") as raw:
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if info.compressed else raw
        while True:
            try:
                chunk = stream.read(chunk_bytes)
            except EOFError:
                raise TraceLoadError(info.path, "truncated gzip: the compressed stream ends early") from None
            except (OSError, zlib.error) as err:
                raise TraceLoadError(info.path, f"corrupt gzip data ({_one_line(err)})") from None
            if not chunk:
                return
            if on_progress is not None:
                on_progress(raw.tell(), info.size)
            yield chunk


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def prefetch(chunks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """Runs ``chunks`` (read, decompress, rewrite) on a thread, ``depth`` chunks ahead.

    Calls into the wasm trace processor release the GIL (wasmtime-py goes
    through ctypes), so the next chunk is prepared while the processor parses
    this one. Errors are re-raised here; when the consumer stops early, the
    thread stops too and the file is closed.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            put(_Failed(err))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="traceview-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def default_cache_dir() -> Path:
    """XDG cache dir for traceview (compiled wasm, per-trace results)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "traceview"


def cache_root() -> Path:
    """traceview's cache: ``$TRACEVIEW_CACHE_DIR`` when set, else ``default_cache_dir()``."""
    explicit = os.environ.get("TRACEVIEW_CACHE_DIR")
    return Path(explicit) if explicit else default_cache_dir()


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes, read in ``block``-sized pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()
