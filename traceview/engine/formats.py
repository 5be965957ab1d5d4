"""Input files: detect the format from content, then stream it in chunks.

The whole file is never held in memory: gzip is decompressed chunk by chunk
and each chunk goes straight to the trace processor.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from traceview.errors import TraceLoadError

CHUNK_BYTES = 8 << 20
GZIP_MAGIC = b"\x1f\x8b"
SQLITE_MAGIC = b"SQLite format 3\x00"

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class TraceFile:
    """What we learned about a file before loading it."""

    path: Path
    format: str  # "json" | "perfetto-proto"
    compressed: bool
    size: int  # bytes on disk
    estimated_raw_size: int  # uncompressed bytes (gzip ISIZE is mod 4 GiB: a lower bound)


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
    if fmt is None:
        raise TraceLoadError(path, "not a trace: expected Kineto/Chrome JSON, a Perfetto protobuf trace "
                                   "or rocprof output (CSV, JSON, rocpd SQLite)")
    if fmt == "sqlite":
        from traceview.engine import rocprof

        fmt = rocprof.sqlite_format(path, compressed)  # rocpd or rocprof v1, else TraceLoadError
    return TraceFile(path, fmt, compressed, size, raw_size)


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


def default_cache_dir() -> Path:
    """XDG cache dir for traceview (compiled wasm, per-trace results)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "traceview"


# The trace processor nests "X" events per thread and DROPS one that overlaps
# another improperly. Two Kineto habits trigger that and cost real events:
# - with_stack traces put python_function events on the same thread as cpu_ops
#   and annotations, and they nest improperly with them (`profiler.py: step`
#   ends just after ProfilerStep#N begins): steps and launch calls vanish;
# - memcpy/memset events share a stream with kernels, and microsecond rounding
#   makes them overlap a neighbouring kernel by a few ns-to-us.
# Giving those categories their own thread ("py 7", "gpu_memcpy 7") keeps every
# slice the counts need; only the cosmetic nesting is lost.
_OWN_THREAD_CATEGORIES = (b"python_function", b"gpu_memcpy", b"gpu_memset", b"Memcpy", b"Memset")
_OWN_THREAD_TID = re.compile(
    rb'("cat"\s*:\s*"(' + b"|".join(_OWN_THREAD_CATEGORIES) + rb')"\s*,\s*"name"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"\s*,\s*'
    rb'"pid"\s*:\s*(?:-?\d+|"[^"]*")\s*,\s*"tid"\s*:\s*)(-?\d+|"[^"]*")')
_PREFIX = {b"python_function": b"py "}


def _own_tid(match: re.Match) -> bytes:
    prefix = _PREFIX.get(match.group(2), match.group(2) + b" ")
    return match.group(1) + b'"' + prefix + match.group(3).strip(b'"') + b'"'


def _rewrite(data: bytes) -> bytes:
    if not any(c in data for c in _OWN_THREAD_CATEGORIES):
        return data
    return _OWN_THREAD_TID.sub(_own_tid, data)


def separate_nonnesting_events(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Streams JSON chunks with python_function/memcpy/memset events moved to their own threads.

    Each chunk is cut at its last '{' so an event's header never straddles two
    chunks; the tail is carried into the next one.
    """
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = data.rfind(b"{")
        if cut <= 0:
            carry = data
            continue
        head, carry = data[:cut], data[cut:]
        yield _rewrite(head)
    if carry:
        yield _rewrite(carry)


# Lean loading for counts: what the counts never read, dropped before the
# processor stores it (about a third of its memory on Kineto traces recorded
# with record_shapes). Each pattern only matches a complete, comma-terminated
# item, so a shape it does not recognise is left alone, never cut in half.
_UNUSED_ARG = re.compile(
    rb'"(?:Input Dims|Input Strides)"\s*:\s*\[(?:[^\[\]"]|\[[^\[\]"]*\])*\]\s*,\s*')
_FLOW_EVENT = re.compile(rb'\{\s*"ph"\s*:\s*"[sft]"[^{}"]*(?:"[^"]*"[^{}"]*)*\}\s*,\s*')



def drop_unused(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Removes tensor shapes/strides args and flow events (chunks must be cut between events)."""
    for chunk in chunks:
        chunk = _UNUSED_ARG.sub(b"", chunk) if b"Input Dims" in chunk or b"Input Strides" in chunk else chunk
        yield _FLOW_EVENT.sub(b"", chunk) if b'"ph": "s"' in chunk or b'"ph": "f"' in chunk else chunk
