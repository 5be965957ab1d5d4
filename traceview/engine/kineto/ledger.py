"""Conservation: how many events of each kind the file held, were fed, and the processor kept.

Counted while the JSON is decoded (``add_piece``), when the load is planned
(``record_plan``) and after the processor has built its tables (``problems``).
A GPU event or launch call that is in the file but not in the processor is
never silent: ``problems`` names the kind and the numbers, and a strict load
fails on it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from traceview.engine.kineto.kinds import CATEGORY_KIND, GPU_KINDS, KIND_NAMES, LAUNCH, OTHER
from traceview.engine.kineto.piece import Piece

_PLURAL = {"memcpy": "memcpys", "memset": "memsets", "launch call": "launch calls", "kernel": "kernels"}
COUNTED_KINDS = (*GPU_KINDS, LAUNCH)


def kind_label(kind: int, n: int) -> str:
    name = KIND_NAMES[kind]
    return name if n == 1 else _PLURAL.get(name, name + "s")


class Ledger:
    """Event counts of one load, by kind (``kinds.py``)."""

    def __init__(self) -> None:
        self.events = 0  # array elements in the file
        self.complete = Counter()  # "X" events decoded, by kind
        self.fed = Counter()  # "X" events handed to the processor, by kind
        self.fed_by_shard: list[Counter] = [self.fed]  # the same, per processor, when a load is sharded
        self.on_lanes = Counter()  # of those, on an overlap lane
        self.no_ts = Counter()  # events without a usable timestamp, by kind
        self.not_complete = Counter()  # GPU events that are not one "X" event (e.g. "B"/"E" pairs), by kind
        self.repaired = Counter()  # events with a missing or negative duration, loaded as instants
        self.skipped: Counter = Counter()  # what a lean load leaves out on purpose, by phase
        self.not_events = 0
        self.launches_with_gpu_work = 0
        self.notes: list[str] = []

    def add_piece(self, piece: Piece) -> None:
        self.events += piece.counts.get("events", 0)
        self.not_events += piece.counts.get("not_an_event", 0)
        self.complete.update(_by_kind(piece.kind))
        for key, n in piece.counts.items():
            what, _, kind = key.partition(":")
            if what == "no_ts":
                self.no_ts[int(kind)] += n
            elif what == "gpu_not_complete":
                self.not_complete[int(kind)] += n
            elif what == "dur_zeroed":
                self.repaired[int(kind)] += n
            elif what == "not_loaded":
                self.skipped[kind] += n

    def record_plan(self, kind: np.ndarray, keep: np.ndarray, lane: np.ndarray, launches: np.ndarray,
                    shard_lo: np.ndarray | None = None, shard_hi: np.ndarray | None = None, shards: int = 1) -> None:
        """``launches``: the launch calls whose correlation id a GPU event carries; with shards, the
        first and last shard of each event (an event may be fed to several)."""
        self.fed.update(_by_kind(kind[keep]))
        self.fed_by_shard = [self.fed] if shards == 1 else [
            Counter(_by_kind(kind[keep & (shard_lo <= s) & (shard_hi >= s)])) for s in range(shards)]
        self.on_lanes.update(_by_kind(kind[keep & (lane > 0)]))
        self.launches_with_gpu_work = int(launches.sum())
        moved = [f"{self.on_lanes[k]:,} {kind_label(k, self.on_lanes[k])}" for k in COUNTED_KINDS if self.on_lanes[k]]
        if moved:
            self.notes.append("kept on overlap lanes, as each starts before the previous event on its stream or "
                              f"thread ends (e.g. programmatic dependent launch): {', '.join(moved)}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def unloadable(self, kind: int) -> int:
        return self.no_ts[kind] + self.not_complete[kind]

    def file_total(self, kind: int) -> int:
        """Events of ``kind`` in the file, loadable or not."""
        return self.complete[kind] + self.unloadable(kind)

    @property
    def launch_calls(self) -> int:
        """CUDA/HIP runtime and driver calls in the file, whether or not they caused GPU work."""
        return self.file_total(LAUNCH)

    def dropped(self, loaded_by_category: dict[str, int] | list[dict[str, int]]) -> Counter:
        """Per kind, events fed to the processors that they do not hold. ``loaded_by_category``: slices
        per category a processor holds (a list: one per shard)."""
        shards = loaded_by_category if isinstance(loaded_by_category, list) else [loaded_by_category]
        dropped: Counter = Counter()
        for fed, categories in zip(self.fed_by_shard, shards):
            loaded: Counter = Counter()
            for category, n in categories.items():
                loaded[CATEGORY_KIND.get(category, OTHER)] += n
            for kind in COUNTED_KINDS:
                dropped[kind] += max(0, fed[kind] - loaded[kind])
        return dropped

    def missing(self, dropped: Counter) -> Counter:
        """Per kind, events of the file the processors do not hold: never loadable, or ``dropped``."""
        return Counter({kind: self.unloadable(kind) + dropped[kind] for kind in COUNTED_KINDS})

    def problems(self, dropped: Counter) -> list[str]:
        """What the file has and the processors do not, one line per kind; [] when all arrived.
        ``dropped``: what ``Ledger.dropped`` found missing from the processors."""
        out = []
        for kind, missing in self.missing(dropped).items():
            if missing:
                total = self.file_total(kind)
                verb = "was" if missing == 1 else "were"
                out.append(f"{missing:,} {kind_label(kind, missing)} of {total:,} {verb} not imported "
                           f"({self._why(kind, dropped[kind])})")
        if self.not_events:
            out.append(f"{self.not_events:,} traceEvents entries are not event objects and were skipped")
        return out

    def _why(self, kind: int, dropped: int) -> str:
        reasons = []
        if self.no_ts[kind]:
            reasons.append(f"{self.no_ts[kind]:,} without a usable ts")
        if self.not_complete[kind]:
            reasons.append(f"{self.not_complete[kind]:,} not complete ('X') events")
        if dropped:
            reasons.append(f"the trace processor dropped {dropped:,}")
        return "; ".join(reasons)


def _by_kind(kinds: np.ndarray) -> dict[int, int]:
    return dict(enumerate(np.bincount(kinds, minlength=OTHER + 1).tolist()))
