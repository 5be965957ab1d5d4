"""Nesting of complete events per thread or stream, as the trace processor will see it.

The processor nests the "X" events of one track with a stack and drops one
that starts inside another and ends after it. Real traces have such events:
kernels that start before the previous one ends (programmatic dependent
launch), a ``cudaMemcpyAsync`` that outlives its op, Python frames that cross
profiler annotations. ``nest`` reproduces the processor's rules exactly and
moves each event that would be dropped to an overlap lane (a sibling track),
so every event is kept; it also returns each event's parent, which lean
loading uses to keep the launching op and the Python frames above a launch.

The processor's rules, measured on the v52 build (tests/test_lanes.py keeps
them): events are taken in order of (start, longer first, file order); the
open event on top of the stack is closed when it ends before the new start,
or ends exactly there and is not zero-length; the new event is its child when
it ends no later than the top does.
"""

from __future__ import annotations

from array import array

import numpy as np

from traceview.engine.kineto.kinds import YIELDING_KINDS

_DISPLACED = -2


# Tracks at least this long are nested in the decoding pool's processes, side by side; a longer
# one in parts of about this many events (one thread's calls can be most of a trace).
POOL_TRACK_EVENTS = 100_000


def ready() -> None:
    """Sent to a decoding process before it is sent tracks: unpickling it imports this module and
    numpy there (~0.3 s), while the loader is still planning."""


def nest(track: np.ndarray, start: np.ndarray, dur: np.ndarray, kind: np.ndarray,
         pool=None) -> tuple[np.ndarray, np.ndarray]:
    """Lane (0 = the track itself) and parent (index, -1 at the top) of every event.

    Arrays are aligned, one element per event, in file order. Within a lane the
    events nest properly, and the parent is the one the processor will assign.
    Tracks are independent: with ``pool`` (``submit(fn, *args) -> Future``), long
    ones are nested in other processes at the same time.
    """
    n = len(track)
    lane = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return lane, parent
    order = np.lexsort((np.arange(n), -dur, start, track))
    yields = np.isin(kind, list(YIELDING_KINDS))
    groups = np.split(order, np.flatnonzero(np.diff(track[order])) + 1)
    remote = {i: [(a, pool.submit(nest_track, start[g[a:b]], dur[g[a:b]], yields[g[a:b]]))
                  for a, b in _parts(start[g], dur[g], POOL_TRACK_EVENTS)]
              for i, g in enumerate(groups) if pool is not None and len(g) >= POOL_TRACK_EVENTS}
    for i, group in enumerate(groups):
        if i in remote:
            results = [(a, *future.result()) for a, future in remote[i]]
            lanes = np.concatenate([r[1] for r in results])
            parents = np.concatenate([np.where(r[2] >= 0, r[2] + r[0], -1) for r in results])
        else:
            lanes, parents = nest_track(start[group], dur[group], yields[group])
        lane[group] = lanes
        parent[group] = np.where(parents >= 0, group[np.maximum(parents, 0)], -1)
    return lane, parent


def _parts(start: np.ndarray, dur: np.ndarray, size: int) -> list[tuple[int, int]]:
    """[a, b) ranges of one track's events (in processor order) that nest independently, each about
    ``size`` long where the track allows. A part starts only where every earlier event has ended
    (strictly before it starts): the stack is empty there in every lane, so parents and lanes
    never reach across."""
    m = len(start)
    if m <= size:
        return [(0, m)]
    ended = np.maximum.accumulate(start + dur)
    free = np.flatnonzero(ended[:-1] < start[1:]) + 1  # positions where a part may start
    wanted = np.arange(size, m, size)
    cuts = np.unique(free[np.minimum(np.searchsorted(free, wanted), len(free) - 1)]) if free.size else free
    bounds = [0, *cuts.tolist(), m]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b]


def nest_track(start: np.ndarray, dur: np.ndarray, yields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lanes and parents (positions within the track) of one track's events, given in processor order."""
    m = len(start)
    lanes = np.zeros(m, dtype=np.int32)
    parents = np.full(m, -1, dtype=np.int64)
    pending = np.arange(m)
    lane = 0
    while pending.size:
        s, d = start[pending], dur[pending]
        # Memoryviews, not lists: an int64 per event instead of a Python int object (36 bytes) each.
        local, moved = _lane_pass(memoryview(s), memoryview(s + d), memoryview(d == 0), memoryview(yields[pending]))
        local = np.frombuffer(local, dtype=np.int64)
        placed = local != _DISPLACED
        lanes[pending[placed]] = lane
        parents[pending[placed]] = np.where(local[placed] >= 0, pending[np.maximum(local[placed], 0)], -1)
        pending = pending[np.sort(np.array(moved, dtype=np.int64))] if moved else pending[:0]
        lane += 1
    return lanes, parents


def _lane_pass(starts, ends, zero, yields) -> tuple[array, list[int]]:
    """One lane, filled greedily in processor order: each event's parent position
    (-1 at the top, _DISPLACED when it goes to a later lane) and the positions
    that go to a later lane: events that would cross the open event on top of the
    stack, and Python frames that an op, annotation or launch call crossed."""
    parent = array("q", [-1]) * len(starts)
    moved: list[int] = []
    evicted: dict[int, int] = {}  # evicted frame -> the parent it had
    stack: list[int] = []
    stack_end: list[int] = []
    for p, s in enumerate(starts):
        e = ends[p]
        while stack_end and (stack_end[-1] < s or (stack_end[-1] == s and not zero[stack[-1]])):
            stack.pop()
            stack_end.pop()
        if stack_end and stack_end[-1] < e:
            while stack_end and stack_end[-1] < e and yields[stack[-1]] and not yields[p]:
                top = stack.pop()
                stack_end.pop()
                evicted[top] = parent[top]
                moved.append(top)
            if stack_end and stack_end[-1] < e:
                parent[p] = _DISPLACED
                moved.append(p)
                continue
        parent[p] = stack[-1] if stack else -1
        stack.append(p)
        stack_end.append(e)
    if evicted:  # an evicted frame's children hang from its nearest ancestor that stayed
        for p, up in enumerate(parent):
            if up in evicted:
                while up in evicted:
                    up = evicted[up]
                parent[p] = up
        for top in evicted:
            parent[top] = _DISPLACED
    return parent, moved
