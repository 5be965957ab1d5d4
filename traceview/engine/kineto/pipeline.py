"""Chrome/Kineto JSON into the trace processor: parsed in parallel, fed canonical.

The processor's own JSON import loses events on real traces: it reads ``ts``
through a double (Kineto's epoch-scale microseconds move by up to 0.25 us), it
drops an "X" event that overlaps its neighbour on a thread or stream, and it
parses on one core. So traceview parses the JSON itself and feeds the
processor canonical JSON it cannot misread:

1. read (and gunzip) on a thread; ``split.py`` cuts the text into pieces of
   whole events; a pool of processes decodes them (``piece.py``);
2. one global pass over the decoded columns: the time base (timestamps are fed
   relative to it, exact to the ns; ``Trace.time_base_ns`` gives it back),
   correlation ids made unique per process, overlap lanes (``lanes.py``), and,
   for a lean load, the events the launch counts read;
3. the kept events stream to the processor, and the ``Ledger`` remembers how
   many of each kind were in the file and were fed, so that the engine can check
   afterwards that the processor holds every one of them.

A lean load (``EngineConfig(lean=True)``, what ``analyze`` uses) feeds: every
GPU event (args correlation, device, stream), every launch call whose
correlation id a GPU event carries (args correlation), the op each of those
launch calls sits in (args ``Input type``), every Python frame above one, every
annotation, and every event whose name matches ``keep_names`` (step markers).
Flows, instants and counters, and the args nobody reads, stay out.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import msgspec
import numpy as np

from traceview.engine.kineto.ids import CanonicalIds
from traceview.engine.kineto.kinds import ANNOTATION, CPU_OP, GPU_KINDS, LAUNCH, MEMSET, PYTHON
from traceview.engine.kineto.lanes import nest
from traceview.engine.kineto.ledger import Ledger
from traceview.engine.kineto.piece import Piece, PieceError, PieceOptions, decode_piece, first_timestamp_ns, id_text
from traceview.engine.kineto.split import Document, RawPiece, split_events
from traceview.engine.kineto.workers import WorkerPool
from traceview.errors import TraceLoadError

# The processor reads "ts" as a double of microseconds and rounds to the ns:
# exact while the value stays below 2**52 ns (about 52 days).
EXACT_LIMIT_NS = 1 << 52
# Epoch-scale timestamps are rebased to whole seconds this far before the first
# one seen, so that events up to ~12 days earlier and ~39 days later stay exact.
REBASE_MARGIN_NS = 1 << 50
SECOND_NS = 1_000_000_000
PIECE_BYTES = 8 << 20
OUTPUT_CHUNK_BYTES = 8 << 20
POOL_MIN_BYTES = 48 << 20  # below this a process pool costs more than it saves


@dataclass(frozen=True)
class JsonLoadOptions:
    lean: bool = False
    keep_names: str | None = None
    workers: int | None = None  # None: one per core for big files, 0 or 1: in this process
    piece_bytes: int = PIECE_BYTES


@dataclass
class _Plan:
    """The global pass's decisions, aligned with the concatenated "X" events."""

    offsets: np.ndarray  # first global index of each piece
    keep: np.ndarray  # bool
    lane: np.ndarray  # int32
    track: np.ndarray  # int32 global track ids
    tracks: list[tuple]  # global track id -> (pid, tid)
    new_corr: dict[int, tuple[int, int]]  # global index -> (old, new) correlation


def time_base(first_ns: int | None) -> int:
    """What to subtract from every timestamp: 0 when the values are already exact."""
    if first_ns is None or 0 <= first_ns < EXACT_LIMIT_NS // 4:
        return 0
    return (first_ns - REBASE_MARGIN_NS) // SECOND_NS * SECOND_NS


class _InProcess(Executor):
    """Runs each submitted call at once: the pool's interface without processes."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future
            future.set_exception(err)
        return future


def _worker_count(options: JsonLoadOptions, size_hint: int) -> int:
    if options.workers is not None:
        return max(1, options.workers)
    if size_hint < POOL_MIN_BYTES:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, size_hint // options.piece_bytes))


def _executor(workers: int) -> Executor | WorkerPool:
    return _InProcess() if workers <= 1 else WorkerPool(workers)


def _decode_all(raws: Iterator[RawPiece], options: PieceOptions, pool, window: int,
                path) -> list[Piece]:
    """Decodes every piece, in order. A piece that is not whole events (its cut lay
    inside a string or a nested value) is merged with the next one and decoded again."""
    inflight: deque[tuple[RawPiece, Future]] = deque()
    decoded: list[Piece] = []
    events_before = 0

    def top_up() -> None:
        while len(inflight) < window:
            raw = next(raws, None)
            if raw is None:
                return
            inflight.append((raw, pool.submit(decode_piece, raw.data, options)))

    top_up()
    while inflight:
        raw, future = inflight.popleft()
        try:
            result = future.result()
        except PieceError as err:  # the cut lay inside a value, or the JSON is malformed
            if raw.last:
                raise TraceLoadError(path, f"the traceEvents array is not valid JSON after event "
                                           f"{events_before:,}: {err}") from None
            if not inflight:
                top_up()
            following, stale = inflight.popleft()
            stale.cancel()
            merged = RawPiece(raw.data + raw.separator + following.data, following.separator, following.last)
            inflight.appendleft((merged, pool.submit(decode_piece, merged.data, options)))
            continue
        decoded.append(result)
        events_before += result.counts.get("events", 0)
        top_up()
    return decoded


def _global_tracks(pieces: list[Piece]) -> tuple[np.ndarray, list[tuple]]:
    index: dict[tuple, int] = {}
    parts = []
    for p in pieces:
        local = np.array([index.setdefault(key, len(index)) for key in p.tracks], dtype=np.int32)
        parts.append(local[p.track] if len(p.track) else np.zeros(0, dtype=np.int32))
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)), list(index)


def _scope_correlations(kind: np.ndarray, track: np.ndarray, ts: np.ndarray, corr: np.ndarray,
                        tracks: list[tuple]) -> tuple[dict[int, tuple[int, int]], int]:
    """Correlation ids are unique per process only. Where two processes' launch calls
    share an id, each GPU event goes with the latest launch of that id before it
    starts, and every process after the first gets its ids offset past the largest.
    Returns ({event index: (old id, new id)}, processes sharing ids); ({}, 0) in the usual case."""
    launch = np.flatnonzero((kind == LAUNCH) & (corr >= 0))
    if launch.size == 0:
        return {}, 0
    launch_tracks = np.unique(track[launch])
    pid_code = {pid: i for i, pid in enumerate(dict.fromkeys(tracks[t][0] for t in launch_tracks.tolist()))}
    if len(pid_code) < 2:
        return {}, 0
    track_code = np.zeros(len(tracks), dtype=np.int64)
    track_code[launch_tracks] = [pid_code[tracks[t][0]] for t in launch_tracks.tolist()]
    launch_pid = track_code[track[launch]]
    pairs = np.unique(np.stack([corr[launch], launch_pid]), axis=1)
    ids, counts = np.unique(pairs[0], return_counts=True)
    if not (counts > 1).any():
        return {}, 0
    offset = int(corr.max()) + 1
    changes: dict[int, tuple[int, int]] = {}
    by_corr: dict[int, list[tuple[int, int]]] = {}
    for i, code in zip(launch.tolist(), launch_pid.tolist()):
        by_corr.setdefault(int(corr[i]), []).append((int(ts[i]), code))
        if code:
            changes[i] = (int(corr[i]), int(corr[i]) + code * offset)
    for launches in by_corr.values():
        launches.sort()
    for i in np.flatnonzero(np.isin(kind, GPU_KINDS) & (corr >= 0)).tolist():
        launches = by_corr.get(int(corr[i]))
        if not launches:
            continue
        before = [code for start, code in launches if start <= ts[i]]
        code = before[-1] if before else launches[0][1]
        if code:
            changes[i] = (int(corr[i]), int(corr[i]) + code * offset)
    return changes, len(np.unique(pairs[1][np.isin(pairs[0], ids[counts > 1])]))


_LOOKUP_TABLE_MAX = 1 << 26  # correlation ids below this are looked up in a table (64 MB at most)


def _launches_with_gpu_work(kind: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """The launch calls whose correlation id some GPU event carries."""
    gpu_corr = corr[(kind <= MEMSET) & (corr >= 0)]  # GPU kinds are the smallest codes
    launch = np.flatnonzero((kind == LAUNCH) & (corr >= 0))
    out = np.zeros(len(kind), dtype=bool)
    if int(corr.max(initial=-1)) < _LOOKUP_TABLE_MAX:  # a table beats sorting
        seen = np.zeros(int(corr.max(initial=-1)) + 1, dtype=bool)
        seen[gpu_corr] = True
        out[launch] = seen[corr[launch]]
    else:
        out[launch] = np.isin(corr[launch], gpu_corr)
    return out


def _lean_keep(kind: np.ndarray, launches: np.ndarray, named: np.ndarray, parent: np.ndarray) -> np.ndarray:
    keep = np.isin(kind, GPU_KINDS) | launches | (kind == ANNOTATION) | named
    above = parent[launches]
    above = above[above >= 0]
    keep[above[kind[above] == CPU_OP]] = True  # the op a launch call sits in
    while above.size:  # every Python frame above a launch call
        above = np.unique(above)
        keep[above[kind[above] == PYTHON]] = True
        above = parent[above]
        above = above[above >= 0]
    return keep


def _nest(track: np.ndarray, ts: np.ndarray, dur: np.ndarray, kind: np.ndarray,
          among: np.ndarray | None, pool) -> tuple[np.ndarray, np.ndarray]:
    """lanes.nest over the events ``among`` selects (all when None); the others get lane 0, no parent."""
    if among is None:
        return nest(track, ts, dur, kind, pool)
    index = np.flatnonzero(among)
    lane, parent = nest(track[index], ts[index], dur[index], kind[index], pool)
    full_lane = np.zeros(len(kind), dtype=np.int32)
    full_parent = np.full(len(kind), -1, dtype=np.int64)
    full_lane[index] = lane
    full_parent[index] = np.where(parent >= 0, index[np.maximum(parent, 0)], -1)
    return full_lane, full_parent


def _plan(pieces: list[Piece], lean: bool, ledger: Ledger, pool=None) -> _Plan:
    sizes = [len(p.kind) for p in pieces]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    cat = (lambda name: np.concatenate([getattr(p, name) for p in pieces]) if pieces else np.zeros(0, np.int64))
    kind, ts, dur, corr, named = cat("kind"), cat("ts"), cat("dur"), cat("corr"), cat("named")
    track, tracks = _global_tracks(pieces)
    new_corr, sharing = _scope_correlations(kind, track, ts, corr, tracks)
    if new_corr:
        corr = corr.copy()
        for i, (_, new) in new_corr.items():
            corr[i] = new
        ledger.note(f"correlation ids repeat across {sharing} processes: each GPU event was joined to the "
                    "launch call of the same id that precedes it, in its own process")
    launches = _launches_with_gpu_work(kind, corr)
    if lean:  # a launch call with no GPU work is never fed: it need not be nested either
        lane, parent = _nest(track, ts, dur, kind, (kind != LAUNCH) | launches, pool)
        keep = _lean_keep(kind, launches, named.astype(bool), parent)
    else:
        lane, parent = _nest(track, ts, dur, kind, None, pool)
        keep = np.ones(len(kind), dtype=bool)
    ledger.record_plan(kind, keep, lane, launches)
    return _Plan(offsets, keep, lane, track, tracks, new_corr)


_CORR_ARG = re.compile(rb'("correlation"\s*:\s*)"?(-?\d+)"?')
_PROCESS_METADATA = ("process_name", "process_labels", "process_sort_index")


class _Emitter:
    """Canonical JSON text, piece by piece, in file order."""

    def __init__(self, pieces: list[Piece], plan: _Plan, metadata: list[tuple]) -> None:
        self.pieces = pieces
        self.plan = plan
        self.metadata = metadata
        ids = self.ids = CanonicalIds()
        self.worker_text = [(id_text(pid), id_text(tid)) for pid, tid in plan.tracks]
        self.canon_text = [(b"%d" % ids.pid(pid), b"%d" % ids.tid(pid, tid)) for pid, tid in plan.tracks]
        self.retarget = np.array([w != c for w, c in zip(self.worker_text, self.canon_text)], dtype=bool)
        on_lane = np.flatnonzero(plan.lane > 0)
        for track, lane in sorted(set(zip(plan.track[on_lane].tolist(), plan.lane[on_lane].tolist()))):
            ids.lane(plan.tracks[track], lane)

    def retargeted(self, text: bytes, track: int, lane: int) -> bytes:
        (old_pid, old_tid), (pid, tid) = self.worker_text[track], self.canon_text[track]
        if old_pid != pid:
            text = text.replace(b'"pid":%s,' % old_pid, b'"pid":%s,' % pid, 1)
        if lane:
            tid = b"%d" % self.ids.lane(self.plan.tracks[track], lane)
        return text[:len(text) - len(old_tid) - 2] + tid + b"},"  # the text ends '"tid":<tid>},'

    def special(self, p: Piece, local: int, glob: int) -> bytes:
        start = int(p.frag_end[local - 1]) if local else 0
        text = p.frag[start:int(p.frag_end[local])]
        if glob in self.plan.new_corr:
            old, new = self.plan.new_corr[glob]
            text = _CORR_ARG.sub(lambda m: m.group(1) + b"%d" % new if int(m.group(2)) == old else m.group(0),
                                 text, count=1)
        return self.retargeted(text, int(self.plan.track[glob]), int(self.plan.lane[glob]))

    def passthrough(self, text: bytes, key: tuple) -> bytes:
        pid, tid = self.ids.pid(key[0]), self.ids.tid(*key)
        if (pid, tid) == key:
            return text
        old = b'"pid":%s,"tid":%s' % (id_text(key[0]), id_text(key[1]))
        return text.replace(old, b'"pid":%d,"tid":%d' % (pid, tid), 1)

    def piece_text(self, index: int) -> list:
        p, g0 = self.pieces[index], int(self.plan.offsets[index])
        n = len(p.kind)
        keep = self.plan.keep[g0:g0 + n]
        special = (self.plan.lane[g0:g0 + n] > 0) | self.retarget[self.plan.track[g0:g0 + n]]
        if self.plan.new_corr:
            special[[i - g0 for i in self.plan.new_corr if g0 <= i < g0 + n]] = True
        plain = keep & ~special
        edges = np.diff(np.concatenate(([0], plain.view(np.int8), [0])))
        run_start, run_stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        ends = p.frag_end
        items = [(s, memoryview(p.frag)[int(ends[s - 1]) if s else 0:int(ends[e - 1])])
                 for s, e in zip(run_start.tolist(), run_stop.tolist())]
        items += [(i, self.special(p, i, g0 + i)) for i in np.flatnonzero(keep & special).tolist()]
        items.sort(key=lambda item: item[0])
        return [text for _, text in items] + [self.passthrough(text, key) for text, key in p.passthrough]

    def metadata_text(self) -> bytes:
        """The file's "M" events under the ids fed, and names for the ids made up here."""
        threads = {(pid, tid): str(args.get("name")) for name, pid, tid, args in self.metadata
                   if name == "thread_name" and isinstance(args, dict)}
        processes = {pid: str(args.get("name")) for name, pid, _, args in self.metadata
                     if name == "process_name" and isinstance(args, dict)}
        out = []
        for name, pid, tid, args in self.metadata:
            thread = 0 if name in _PROCESS_METADATA else self.ids.tid(pid, tid)
            out.append(b'{"ph":"M","name":%s,"pid":%d,"tid":%d,"args":%s},' % (
                msgspec.json.encode(name), self.ids.pid(pid), thread, msgspec.json.encode(args)))
        for name, pid, tid, label in self.ids.renamed(threads, processes):
            out.append(b'{"ph":"M","name":"%s","pid":%d,"tid":%d,"args":{"name":%s}},' % (
                name.encode(), pid, tid, msgspec.json.encode(label)))
        return b"".join(out)

    def chunks(self) -> Iterator[bytes]:
        pending: list = [b'{"traceEvents":[', self.metadata_text()]
        size = 0
        for index in range(len(self.pieces)):
            for text in self.piece_text(index):
                pending.append(text)
                size += len(text)
            self.pieces[index] = None  # type: ignore[call-overload]  # its text is on its way
            if size >= OUTPUT_CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        tail = b"".join(pending)
        yield (tail[:-1] if tail.endswith(b",") else tail) + b"]}"


class CanonicalJson:
    """A Chrome/Kineto JSON trace decoded and planned, ready to stream into the processor."""

    def __init__(self, source: Callable[[], Iterable[bytes]], path, size_hint: int,
                 options: JsonLoadOptions) -> None:
        self.path = path
        self.ledger = Ledger()
        self.document = Document()
        workers = _worker_count(options, size_hint)
        pool = _executor(workers)
        try:
            self.base_ns, pieces = self._decode(source, options, pool, workers)
            for p in pieces:
                self.ledger.add_piece(p)
            if not pieces or self.ledger.events == 0:
                raise TraceLoadError(path, "JSON holds no Chrome/Kineto trace events")
            plan = _plan(pieces, options.lean, self.ledger, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        metadata = [m for p in pieces for m in p.metadata]
        self.fed_bytes = _fed_bytes(pieces, plan)
        self._emitter = _Emitter(pieces, plan, metadata)

    def _decode(self, source, options: JsonLoadOptions, pool, workers: int) -> tuple[int, list[Piece]]:
        base = None
        for _attempt in range(2):
            raws = split_events(source(), self.path, self.document, options.piece_bytes)
            first = next(raws)
            if base is None:
                base = time_base(first_timestamp_ns(first.data))
            piece_options = PieceOptions(base, options.lean, options.keep_names)
            pieces = _decode_all(_chain(first, raws), piece_options, pool, 2 * workers, self.path)
            lo = min((p.min_ts for p in pieces if p.min_ts is not None), default=base)
            hi = max((p.max_ts for p in pieces if p.max_ts is not None), default=base)
            if base <= lo and hi - base < EXACT_LIMIT_NS:
                return base, pieces
            base = lo // SECOND_NS * SECOND_NS  # an event far before the first piece: decode again
            if hi - base >= EXACT_LIMIT_NS:
                self.ledger.note("timestamps span more than 52 days: the trace processor keeps "
                                 "nanoseconds exact only within 52 days of the earliest one")
        return base, pieces

    def chunks(self) -> Iterator[bytes]:
        """The canonical JSON, in chunks of a few MiB (each piece is released once sent)."""
        return self._emitter.chunks()


def _fed_bytes(pieces: list[Piece], plan: _Plan) -> int:
    """About how much JSON the processor will get (it picks the processor build)."""
    total = 0
    for index, p in enumerate(pieces):
        g0 = int(plan.offsets[index])
        sizes = np.diff(p.frag_end, prepend=0)
        total += int(sizes[plan.keep[g0:g0 + len(sizes)]].sum()) + sum(len(text) for text, _ in p.passthrough)
    return total


def _chain(first: RawPiece, rest: Iterator[RawPiece]) -> Iterator[RawPiece]:
    yield first
    yield from rest
