"""The canonical JSON the trace processor is fed, piece by piece, in file order.

Each kept "X" event is its piece's fragment as decoded (``piece.py``), except
where the plan changes it: an overlap lane's tid, ids the processor would
merge (``ids.py``), a correlation id scoped to its process. With shards, each
shard gets the events the plan put in it (``shards.py``) and every "M" event.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgspec
import numpy as np

from traceview.engine.kineto.ids import CanonicalIds
from traceview.engine.kineto.piece import Piece, id_text

_CORR_ARG = re.compile(rb'("correlation"\s*:\s*)"?(-?\d+)"?')
_PROCESS_METADATA = ("process_name", "process_labels", "process_sort_index")
CHUNK_BYTES = 8 << 20
HEAD, TAIL = b'{"traceEvents":[', b"]}"


@dataclass
class Plan:
    """The global pass's decisions, aligned with the concatenated "X" events."""

    offsets: np.ndarray  # first global index of each piece
    keep: np.ndarray  # bool
    lane: np.ndarray  # int32
    track: np.ndarray  # int32 global track ids
    tracks: list[tuple]  # global track id -> (pid, tid)
    new_corr: dict[int, tuple[int, int]]  # global index -> (old, new) correlation
    shard_lo: np.ndarray | None = None  # int32: first and last shard holding each event (None: one shard)
    shard_hi: np.ndarray | None = None
    shards: int = 1

    def compact(self, pieces: list[Piece], threads: int = 1) -> None:
        """Drops the events that are not fed, from the pieces' text and from the plan: a lean load
        keeps a fraction of them, and the text of the rest would wait in memory while the
        processors fill theirs. Pieces are cut ``threads`` at a time."""
        if self.keep.all():
            return
        new_index = np.cumsum(self.keep) - 1

        def cut(index: int) -> None:
            p, g0 = pieces[index], int(self.offsets[index])
            keep = self.keep[g0:g0 + len(p.kind)]
            sizes = np.diff(p.frag_end, prepend=0)
            p.frag = np.frombuffer(p.frag, dtype=np.uint8)[np.repeat(keep, sizes)].tobytes()
            p.frag_end = np.cumsum(sizes[keep])
            p.kind = p.kind[keep]

        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="traceview-compact") as pool:
            list(pool.map(cut, range(len(pieces))))
        self.offsets = np.concatenate([[0], np.cumsum([len(p.kind) for p in pieces])]).astype(np.int64)
        self.new_corr = {int(new_index[i]): change for i, change in self.new_corr.items() if self.keep[i]}
        for name in ("lane", "track", "shard_lo", "shard_hi"):
            column = getattr(self, name)
            if column is not None:
                setattr(self, name, column[self.keep])
        self.keep = np.ones(len(self.lane), dtype=bool)

    def fed_to(self, shard: int, g0: int, n: int) -> np.ndarray:
        """Which of events g0..g0+n are fed to ``shard``'s processor."""
        keep = self.keep[g0:g0 + n]
        if self.shards == 1:
            return keep
        return keep & (self.shard_lo[g0:g0 + n] <= shard) & (self.shard_hi[g0:g0 + n] >= shard)

    def shard_span(self, g0: int, g1: int) -> tuple[int, int]:
        """The first and last shard that events g0..g1 go to; (shards, -1) when none is fed."""
        kept = self.keep[g0:g1]
        if not kept.any():
            return self.shards, -1
        return int(self.shard_lo[g0:g1][kept].min()), int(self.shard_hi[g0:g1][kept].max())


class Emitter:
    """Streams the plan's canonical JSON, one stream per shard; a piece is released once every stream has passed it."""

    def __init__(self, pieces: list[Piece], plan: Plan, metadata: list[tuple]) -> None:
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
        self._streams_left = [plan.shards] * len(pieces)
        self._release_lock = threading.Lock()
        # The shards each piece has events for: a shard's stream skips the other pieces at once.
        self.shard_span = [plan.shard_span(int(plan.offsets[i]), int(plan.offsets[i + 1]))
                           for i in range(len(pieces))] if plan.shards > 1 else []
        # Made once, before the streams run side by side: it is where ids may still be assigned.
        self.head = HEAD + self.metadata_text()

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

    def piece_text(self, index: int, shard: int = 0) -> list:
        """The texts of piece ``index`` that go to ``shard``, in file order."""
        p, g0 = self.pieces[index], int(self.plan.offsets[index])
        n = len(p.kind)
        if self.shard_span:
            lo, hi = self.shard_span[index]
            if not lo <= shard <= hi and not (shard == 0 and p.passthrough):
                return []
        keep = self.plan.fed_to(shard, g0, n)
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
        texts = [text for _, text in items]
        if shard == 0:  # flows, instants, counters (full loads only): one copy, in the first shard
            texts += [self.passthrough(text, key) for text, key in p.passthrough]
        return texts

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

    def chunks(self, shard: int = 0) -> Iterator[bytes]:
        """Shard ``shard``'s JSON in chunks of a few MiB. Each shard has its own stream, so the
        processors parse side by side: shards hold stretches of time, which are stretches of the
        file, and one pass in file order would feed them one after another. A piece is released
        once every shard's stream has passed it."""
        chunk_bytes = max(1 << 20, CHUNK_BYTES // self.plan.shards)  # what waits for the processors stays ~constant
        pending, size = [self.head], 0
        for index in range(len(self.pieces)):
            texts = self.piece_text(index, shard)
            pending += texts
            size += sum(len(t) for t in texts)
            with self._release_lock:
                self._streams_left[index] -= 1
                if not self._streams_left[index]:
                    self.pieces[index] = None  # type: ignore[call-overload]  # its text is on its way
            if size >= chunk_bytes:
                yield b"".join(pending)
                pending, size = [], 0
        tail = b"".join(pending)
        yield (tail[:-1] if tail.endswith(b",") else tail) + TAIL
