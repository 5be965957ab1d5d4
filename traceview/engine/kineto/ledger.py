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
        self.complete.update(dict(enumerate(np.bincount(piece.kind, minlength=OTHER + 1).tolist())))
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

    def record_plan(self, kind: np.ndarray, keep: np.ndarray, lane: np.ndarray, launches: np.ndarray) -> None:
        """``launches``: the launch calls whose correlation id a GPU event carries."""
        self.fed.update(dict(enumerate(np.bincount(kind[keep], minlength=OTHER + 1).tolist())))
        self.on_lanes.update(dict(enumerate(np.bincount(kind[keep & (lane > 0)], minlength=OTHER + 1).tolist())))
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

    def problems(self, loaded_by_category: dict[str, int]) -> list[str]:
        """What the file has and the processor does not, one line per kind; [] when all arrived."""
        loaded: Counter = Counter()
        for category, n in loaded_by_category.items():
            loaded[CATEGORY_KIND.get(category, OTHER)] += n
        out = []
        for kind in COUNTED_KINDS:
            missing = self.unloadable(kind) + max(0, self.fed[kind] - loaded[kind])
            if missing:
                total = self.file_total(kind)
                verb = "was" if missing == 1 else "were"
                out.append(f"{missing:,} {kind_label(kind, missing)} of {total:,} {verb} not imported "
                           f"({self._why(kind, loaded[kind])})")
        if self.not_events:
            out.append(f"{self.not_events:,} traceEvents entries are not event objects and were skipped")
        return out

    def _why(self, kind: int, loaded: int) -> str:
        reasons = []
        if self.no_ts[kind]:
            reasons.append(f"{self.no_ts[kind]:,} without a usable ts")
        if self.not_complete[kind]:
            reasons.append(f"{self.not_complete[kind]:,} not complete ('X') events")
        if self.fed[kind] > loaded:
            reasons.append(f"the trace processor dropped {self.fed[kind] - loaded:,}")
        return "; ".join(reasons)
