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

import numpy as np

from traceview.engine.kineto.kinds import YIELDING_KINDS


def nest(track: np.ndarray, start: np.ndarray, dur: np.ndarray, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lane (0 = the track itself) and parent (index, -1 at the top) of every event.

    Arrays are aligned, one element per event, in file order. Within a lane the
    events nest properly, and the parent is the one the processor will assign.
    """
    n = len(track)
    lane = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return lane, parent
    order = np.lexsort((np.arange(n), -dur, start, track))
    bounds = np.flatnonzero(np.diff(track[order])) + 1
    starts, ends = start.tolist(), (start + dur).tolist()
    yields = np.isin(kind, list(YIELDING_KINDS)).tolist()
    lanes, parents = [0] * n, [-1] * n
    for group in np.split(order, bounds):
        _nest_track(group.tolist(), starts, ends, yields, lanes, parents)
    return np.array(lanes, dtype=np.int32), np.array(parents, dtype=np.int64)


def _nest_track(events: list[int], starts: list[int], ends: list[int], yields: list[bool],
                lanes: list[int], parents: list[int]) -> None:
    """Fills ``lanes``/``parents`` for one track's events (sorted as the processor takes them)."""
    lane = 0
    while events:
        displaced: list[int] = []
        evicted: set[int] = set()
        stack: list[int] = []
        for i in events:
            s, e = starts[i], ends[i]
            while stack:
                top = stack[-1]
                top_end = ends[top]
                if top_end < s or (top_end == s and top_end != starts[top]):
                    stack.pop()
                else:
                    break
            # A crossing Python frame on the stack gives way to an op, annotation or launch call.
            while stack and ends[stack[-1]] < e and yields[stack[-1]] and not yields[i]:
                evicted.add(stack.pop())
            if stack and ends[stack[-1]] < e:
                displaced.append(i)
                continue
            lanes[i] = lane
            parents[i] = stack[-1] if stack else -1
            stack.append(i)
        if evicted:
            _reparent(events, evicted, parents)
            wanted = evicted.union(displaced)
            displaced = [i for i in events if i in wanted]  # back in the processor's order
        events = displaced
        lane += 1


def _reparent(events: list[int], evicted: set[int], parents: list[int]) -> None:
    """Children of an evicted event hang from its nearest ancestor that stayed."""
    for i in events:
        p = parents[i]
        while p in evicted:
            p = parents[p]
        parents[i] = p
    for i in evicted:
        parents[i] = -1
