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

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from traceview.engine.cpus import usable_cores
from traceview.engine.formats import ProgressFn
from traceview.engine.kineto import shards
from traceview.engine.kineto.arrays import distinct, distinct_pairs, member
from traceview.engine.kineto.emit import Emitter, Plan
from traceview.engine.kineto.kinds import ANNOTATION, CPU_OP, GPU_KINDS, LAUNCH, MEMSET, PYTHON
from traceview.engine.kineto.lanes import nest, ready
from traceview.engine.kineto.ledger import Ledger
from traceview.engine.kineto.piece import (
    Piece,
    PieceError,
    PieceOptions,
    decode_piece,
    decode_range,
    first_timestamp_ns,
)
from traceview.engine.kineto.split import Document, RawPiece, split_events, split_file
from traceview.engine.kineto.workers import WorkerPool
from traceview.errors import TraceLoadError

# The processor reads "ts" as a double of microseconds and rounds to the ns:
# exact while the value stays below 2**52 ns (about 52 days).
EXACT_LIMIT_NS = 1 << 52
# Epoch-scale timestamps are rebased to whole seconds this far before the first
# one seen, so that events up to ~12 days earlier and ~39 days later stay exact.
REBASE_MARGIN_NS = 1 << 50
SECOND_NS = 1_000_000_000
# Each decoding process holds ~10x its piece while decoding it: 4 MiB keeps 16 of them under the file's size.
PIECE_BYTES = 4 << 20
POOL_MIN_BYTES = 48 << 20  # below this a process pool costs more than it saves
NEST_WORKERS = 4  # processes kept after the decode, to nest long tracks side by side
# Threads that drop the unfed text (numpy copies, which let go of the GIL). Not overlapped with
# starting the processors: both at once put the 1 GB count's peak over 1.5x the file.
COMPACT_THREADS = 8


@dataclass(frozen=True)
class JsonLoadOptions:
    lean: bool = False
    keep_names: str | None = None
    workers: int | None = None  # None: one per core for big files, 0 or 1: in this process
    piece_bytes: int = PIECE_BYTES
    shards: int | None = 1  # trace processors to split a lean load across; None: by size (shards.py)


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
    return max(1, min(usable_cores(), size_hint // options.piece_bytes))


def _executor(workers: int) -> Executor | WorkerPool:
    return _InProcess() if workers <= 1 else WorkerPool(workers)


def _decode_all(raws: Iterator[RawPiece], options: PieceOptions, pool, window: int,
                path, on_progress: ProgressFn | None) -> list[Piece]:
    """Decodes every piece, in order. A piece that is not whole events (its cut lay
    inside a string or a nested value) is merged with the next one and decoded again.
    Pieces that name a range of ``path`` are read by the decoding process; then
    ``on_progress(bytes done, file size)`` follows them."""
    inflight: deque[tuple[RawPiece, Future]] = deque()
    decoded: list[Piece] = []
    events_before = 0

    def submit(raw: RawPiece) -> Future:
        if raw.offset >= 0:
            return pool.submit(decode_range, str(path), raw.offset, raw.length, options)
        return pool.submit(decode_piece, raw.data, options)

    def top_up() -> None:
        while len(inflight) < window:
            raw = next(raws, None)
            if raw is None:
                return
            inflight.append((raw, submit(raw)))

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
            merged = raw.then(following)
            inflight.appendleft((merged, submit(merged)))
            continue
        decoded.append(result.as_numpy())
        events_before += result.counts.get("events", 0)
        if raw.offset >= 0 and on_progress is not None:
            on_progress(raw.offset + raw.length, path.stat().st_size)
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
    launch_tracks = distinct(track[launch])
    pid_code = {pid: i for i, pid in enumerate(dict.fromkeys(tracks[t][0] for t in launch_tracks.tolist()))}
    if len(pid_code) < 2:
        return {}, 0
    track_code = np.zeros(len(tracks), dtype=np.int64)
    track_code[launch_tracks] = [pid_code[tracks[t][0]] for t in launch_tracks.tolist()]
    launch_pid = track_code[track[launch]]
    pairs = distinct_pairs(corr[launch], launch_pid)
    ids, counts = distinct(pairs[0], counts=True)
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
    return changes, len(distinct(pairs[1][member(pairs[0], ids[counts > 1])]))


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
        out[launch] = member(corr[launch], gpu_corr)
    return out


def _lean_keep(kind: np.ndarray, launches: np.ndarray, named: np.ndarray, parent: np.ndarray) -> np.ndarray:
    keep = np.isin(kind, GPU_KINDS) | launches | (kind == ANNOTATION) | named
    above = parent[launches]
    above = above[above >= 0]
    keep[above[kind[above] == CPU_OP]] = True  # the op a launch call sits in
    while above.size:  # every Python frame above a launch call
        above = distinct(above)
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


def _plan(pieces: list[Piece], options: JsonLoadOptions, ledger: Ledger, pool=None) -> Plan:
    sizes = [len(p.kind) for p in pieces]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in pieces]) if pieces else np.zeros(0, np.int64)

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
    if options.lean:  # a launch call with no GPU work is never fed: it need not be nested either
        lane, parent = _nest(track, ts, dur, kind, (kind != LAUNCH) | launches, pool)
        keep = _lean_keep(kind, launches, named.astype(bool), parent)
    else:
        lane, parent = _nest(track, ts, dur, kind, None, pool)
        keep = np.ones(len(kind), dtype=bool)
    plan = Plan(offsets, keep, lane, track, tracks, new_corr)
    count = shards.shard_count(_fed_bytes(pieces, plan)[0], usable_cores(), options.shards) if options.lean else 1
    if count > 1:
        plan.shard_lo, plan.shard_hi = shards.assign(kind, ts, dur, corr, keep, launches, count)
        plan.shards = int(plan.shard_hi.max(initial=0)) + 1
    ledger.record_plan(kind, keep, lane, launches, plan.shard_lo, plan.shard_hi, plan.shards)
    return plan


class CanonicalJson:
    """A Chrome/Kineto JSON trace decoded and planned, ready to stream into the processor."""

    def __init__(self, source: Callable[[], Iterable[bytes]] | Path, path, size_hint: int,
                 options: JsonLoadOptions, on_progress: ProgressFn | None = None) -> None:
        """``source``: a function giving the JSON text in chunks, or an uncompressed file, which
        the decoding processes then read piece by piece themselves."""
        self.path = path
        self.on_progress = on_progress
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
            if isinstance(pool, WorkerPool):
                pool.shrink(NEST_WORKERS)  # what is left to do in parallel: the long tracks' parts
                for _ in range(NEST_WORKERS):
                    pool.submit(ready)
            plan = _plan(pieces, options, self.ledger, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for p in pieces:
            p.drop_columns()
        self.fed_bytes_by_shard = _fed_bytes(pieces, plan)
        self.shards = plan.shards
        self.fed_bytes = sum(self.fed_bytes_by_shard)
        # The cores this load may use: a batch gives each trace its share (options.workers).
        cores = usable_cores() if options.workers is None else max(1, options.workers)
        plan.compact(pieces, threads=min(cores, COMPACT_THREADS))
        self._emitter = Emitter(pieces, plan, [m for p in pieces for m in p.metadata])

    def _decode(self, source, options: JsonLoadOptions, pool, workers: int) -> tuple[int, list[Piece]]:
        base = None
        for _attempt in range(2):
            if isinstance(source, Path):
                raws = split_file(source, self.document, options.piece_bytes)
            else:
                raws = split_events(source(), self.path, self.document, options.piece_bytes)
            first = next(raws)
            if base is None:
                base = time_base(first_timestamp_ns(first.data if first.offset < 0 else _head(source, first)))
            piece_options = PieceOptions(base, options.lean, options.keep_names)
            pieces = _decode_all(_chain(first, raws), piece_options, pool, 2 * workers, self.path,
                                 self.on_progress)
            lo = min((p.min_ts for p in pieces if p.min_ts is not None), default=base)
            hi = max((p.max_ts for p in pieces if p.max_ts is not None), default=base)
            if base <= lo and hi - base < EXACT_LIMIT_NS:
                return base, pieces
            base = lo // SECOND_NS * SECOND_NS  # an event far before the first piece: decode again
            if hi - base >= EXACT_LIMIT_NS:
                self.ledger.note("timestamps span more than 52 days: the trace processor keeps "
                                 "nanoseconds exact only within 52 days of the earliest one")
        return base, pieces

    def chunks(self, shard: int = 0) -> Iterator[bytes]:
        """Shard ``shard``'s canonical JSON in chunks of a few MiB. Every shard's stream must be read
        to its end (they may be read side by side): a piece is released once all have passed it."""
        return self._emitter.chunks(shard)


def _fed_bytes(pieces: list[Piece], plan: Plan) -> list[int]:
    """About how much JSON each shard's processor will get (it picks the processor build)."""
    total = [0] * plan.shards
    for index, p in enumerate(pieces):
        g0, sizes = int(plan.offsets[index]), np.diff(p.frag_end, prepend=0)
        for shard in range(plan.shards):
            total[shard] += int(sizes[plan.fed_to(shard, g0, len(sizes))].sum())
        total[0] += sum(len(text) for text, _ in p.passthrough)
    return total


def _head(path: Path, piece: RawPiece, limit: int = 4 << 20) -> bytes:
    with path.open("rb") as fh:
        fh.seek(piece.offset)
        return fh.read(min(piece.length, limit))


def _chain(first: RawPiece, rest: Iterator[RawPiece]) -> Iterator[RawPiece]:
    yield first
    yield from rest
