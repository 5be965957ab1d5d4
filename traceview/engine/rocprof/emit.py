"""Kineto-style Chrome trace-event JSON, written in chunks from converted rocprof records.

Every rocprof reader yields ``Slice`` and ``Label`` records; ``to_chunks`` turns
them into ``{"traceEvents": [...]}`` text, a few MiB at a time, so a converted
trace never sits in memory whole. Timestamps arrive in ns and leave in us
written as exact decimals (``1234.567``), so no ns is lost to float rounding.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from traceview.errors import TraceLoadError

# Categories the model layer counts (see model/sql/gpu_events.sql).
KERNEL, MEMCPY = "kernel", "gpu_memcpy"
LAUNCH = "cuda_runtime"  # HIP runtime calls, as ROCm Kineto traces name them
ANNOTATION = "user_annotation"

# GPU tracks (tids under a device pid) that are not HW queues get ids far above
# queue handles; a track whose slices overlap spills into lanes further up.
COPY_TID_BASE = 1_000_000
LANE_TID_STEP = 10_000_000
# The per-process track that holds memory allocations (they overlap freely);
# kept below 2**31 with room for lanes.
ALLOC_TID = 1_500_000_000

_NAME_CACHE_LIMIT = 200_000

ArgValue = int | str


@dataclass(frozen=True, slots=True)
class Slice:
    """One complete event. ``lanes=True`` for GPU-side tracks: slices there may
    overlap (concurrent work, clock skew) and the processor drops overlapping
    complete events, so an overlapping one moves to a lane of its own."""

    cat: str
    name: str
    pid: int
    tid: int
    start_ns: int
    end_ns: int
    args: tuple[tuple[str, ArgValue], ...] = ()
    lanes: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    """A process name (``tid is None``) or a thread/track name; the first label given wins."""

    pid: int
    tid: int | None
    name: str


Record = Slice | Label


class Progress:
    """Bytes read so far out of ``total``, reported to ``callback(done, total)``."""

    def __init__(self, total: int, callback: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.callback = max(total, 1), 0, callback

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(min(self.done, self.total), self.total)


class _CountingFile(io.RawIOBase):
    def __init__(self, fh: BinaryIO, progress: Progress) -> None:
        self.fh, self.progress = fh, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.fh.readinto(buffer) or 0
        self.progress.advance(n)
        return n

    def close(self) -> None:
        self.fh.close()
        super().close()


def open_counted(path: Path, progress: Progress | None) -> io.BufferedReader:
    """``path`` opened for binary reading; bytes read are added to ``progress``."""
    raw = path.open("rb", buffering=0)
    if progress is None:
        return io.BufferedReader(raw, 1 << 20)
    return io.BufferedReader(_CountingFile(raw, progress), 1 << 20)


def us(ns: int) -> str:
    """ns as an exact decimal string of microseconds."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    return f"{sign}{ns // 1000}.{ns % 1000:03d}"


class _Writer:
    """Formats events and remembers what the metadata events at the end need."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.slices = 0
        self.used: dict[tuple[int, int], None] = {}  # (pid, tid) with slices, in first-use order
        self.names: dict[int | tuple[int, int], str] = {}  # pid or (pid, tid) -> label
        self.lane_of: dict[tuple[int, int], tuple[int, int]] = {}  # (pid, lane tid) -> (base tid, lane)
        self._lane_ends: dict[tuple[int, int], list[int]] = {}
        self._names: dict[str, str] = {}

    def quote(self, text: str) -> str:
        cached = self._names.get(text)
        if cached is None:
            cached = json.dumps(text, ensure_ascii=False)
            if len(self._names) < _NAME_CACHE_LIMIT:
                self._names[text] = cached
        return cached

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text) + 1

    def take(self, prefix: str) -> bytes:
        data = prefix + ",".join(self.parts)
        self.parts, self.size = [], 0
        return data.encode()

    def lane_tid(self, pid: int, tid: int, start: int, end: int) -> int:
        """The tid of the first lane of track (pid, tid) whose slices all end by ``start``."""
        ends = self._lane_ends.setdefault((pid, tid), [])
        for lane, lane_end in enumerate(ends):
            if start >= lane_end:
                ends[lane] = end
                break
        else:
            lane = len(ends)
            ends.append(end)
        if lane == 0:
            return tid
        lane_tid = tid + lane * LANE_TID_STEP
        self.lane_of[(pid, lane_tid)] = (tid, lane)
        return lane_tid

    def slice(self, item: Slice) -> None:
        end = max(item.end_ns, item.start_ns)  # a reversed range becomes an instant, not a loss
        tid = self.lane_tid(item.pid, item.tid, item.start_ns, end) if item.lanes else item.tid
        self.used.setdefault((item.pid, tid))
        args = ",".join(f"{self.quote(k)}:{v if isinstance(v, int) else self.quote(v)}"
                        for k, v in item.args)
        self.add(f'{{"ph":"X","cat":{self.quote(item.cat)},"name":{self.quote(item.name)},'
                 f'"pid":{item.pid},"tid":{tid},"ts":{us(item.start_ns)},'
                 f'"dur":{us(end - item.start_ns)},"args":{{{args}}}}}')
        self.slices += 1

    def label(self, item: Label) -> None:
        self.names.setdefault(item.pid if item.tid is None else (item.pid, item.tid), item.name)

    def thread_name(self, pid: int, tid: int) -> str:
        name = self.names.get((pid, tid))
        if name is not None:
            return name
        if (pid, tid) in self.lane_of:
            base, lane = self.lane_of[(pid, tid)]
            return f"{self.thread_name(pid, base)} (overlap lane {lane})"
        return f"thread {tid}"

    def metadata(self) -> None:
        for pid in dict.fromkeys(pid for pid, _ in self.used):
            name = self.names.get(pid, f"process {pid}")
            self.add(f'{{"ph":"M","name":"process_name","pid":{pid},"tid":0,'
                     f'"args":{{"name":{self.quote(name)}}}}}')
        for pid, tid in self.used:
            self.add(f'{{"ph":"M","name":"thread_name","pid":{pid},"tid":{tid},'
                     f'"args":{{"name":{self.quote(self.thread_name(pid, tid))}}}}}')


def to_chunks(records: Iterable[Record], source: Path, what: str,
              chunk_bytes: int) -> Iterator[bytes]:
    """Streams ``records`` as Chrome trace JSON in chunks of about ``chunk_bytes``.

    Labels may come before or after the slices they name. Raises TraceLoadError
    naming ``source`` when the records hold no slice at all (``what`` says
    what was looked for).
    """
    writer = _Writer()
    prefix = '{"displayTimeUnit":"ns","traceEvents":['
    for item in records:
        if isinstance(item, Slice):
            writer.slice(item)
        else:
            writer.label(item)
        if writer.size >= chunk_bytes:
            yield writer.take(prefix)
            prefix = ","
    if writer.slices == 0:
        raise TraceLoadError(source, f"holds no {what}")
    writer.metadata()
    yield writer.take(prefix) + b"]}"
