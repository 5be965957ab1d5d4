"""lanes.nest predicts the trace processor's nesting exactly, so that nothing is dropped.

Random interval sets with many ties, zero-length events, crossings and Python
frames are loaded through traceview; the processor must keep every event, and
give each the parent (and the thread: lane) that ``nest`` computed.
"""

from __future__ import annotations

import random
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest

from traceview.engine import open_trace
from traceview.engine.kineto.kinds import CPU_OP, PYTHON
from traceview.engine.kineto import lanes
from traceview.engine.kineto.lanes import nest

TRACKS, EVENTS = 300, 24


def random_tracks(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for tid in range(1, TRACKS + 1):
        for i in range(EVENTS):
            start = rng.randrange(0, 40) * rng.choice((1, 250))  # coarse grid: many equal starts and ends
            dur = rng.choice((0, 0, rng.randrange(1, 30) * rng.choice((1, 250))))
            cat = "python_function" if rng.random() < 0.3 else "cpu_op"
            events.append({"ph": "X", "cat": cat, "name": f"t{tid}e{i}", "pid": 1, "tid": tid,
                           "ts": Decimal(start) / 1000, "dur": Decimal(dur) / 1000})
    return events


def predicted(events: list[dict]) -> dict[str, tuple[int, str | None]]:
    """name -> (lane, parent name) as nest() computes them."""
    ns = [(int(e["ts"] * 1000), int(e["dur"] * 1000)) for e in events]
    track = np.array([e["tid"] for e in events], dtype=np.int32)
    kind = np.array([PYTHON if e["cat"] == "python_function" else CPU_OP for e in events], dtype=np.int8)
    lane, parent = nest(track, np.array([s for s, _ in ns]), np.array([d for _, d in ns]), kind)
    names = [e["name"] for e in events]
    return {name: (int(lane[i]), names[parent[i]] if parent[i] >= 0 else None) for i, name in enumerate(names)}


def test_the_processor_nests_exactly_as_predicted(tmp_path: Path) -> None:
    events = random_tracks(seed=15)
    expected = predicted(events)
    assert sum(lane > 0 for lane, _ in expected.values()) > 100  # the sets do cross, often
    path = tmp_path / "random.json"
    path.write_bytes(msgspec.json.Encoder(decimal_format="number").encode({"traceEvents": events}))
    with open_trace(path) as trace:
        frame = trace.query("select s.name, p.name as parent, t.name as thread from slice s "
                            "left join slice p on p.id = s.parent_id "
                            "join thread_track tt on tt.id = s.track_id join thread t using (utid)")
        assert trace.load_problems == []
    assert len(frame) == len(events)  # nothing dropped
    got = {name: (thread, parent) for name, parent, thread in frame.itertuples(index=False)}
    for name, (lane, parent) in expected.items():
        thread, got_parent = got[name]
        assert (None if pd.isna(got_parent) else got_parent) == parent, name
        assert (lane == 0) == ("overlap lane" not in str(thread)), name
        if lane:
            assert str(thread).endswith(f"(overlap lane {lane})"), name


class _Now:
    """A pool that runs each call at once (the interface of the decoding pool)."""

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))
        return future


def test_long_tracks_cut_into_parts_nest_as_whole_tracks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long track is nested in parts that start where nothing is open; lanes and parents
    must be what nesting the whole track gives."""
    rng = random.Random(7)
    starts, durs, kinds = [], [], []
    t = 0
    for _ in range(3000):  # bursts of crossing events, with gaps between some bursts
        t += rng.choice((0, 0, 1, 5_000))
        for _ in range(rng.randrange(1, 6)):
            starts.append(t + rng.randrange(0, 4) * 10)  # a coarse grid: equal starts and ends, as in the rules
            durs.append(rng.choice((0, rng.randrange(1, 6) * 10)))
            kinds.append(rng.choice((PYTHON, CPU_OP, CPU_OP)))
    track = np.array([1 + (i % 4 == 0) for i in range(len(starts))], dtype=np.int32)  # one long track, one shorter
    args = (track, np.array(starts, dtype=np.int64), np.array(durs, dtype=np.int64), np.array(kinds, dtype=np.int8))
    whole_lane, whole_parent = nest(*args)
    assert (whole_lane > 0).sum() > 100 and (whole_parent >= 0).sum() > 1000
    monkeypatch.setattr(lanes, "POOL_TRACK_EVENTS", 200)
    long_track = np.flatnonzero(track == 1)
    order = long_track[np.lexsort((-args[2][long_track], args[1][long_track]))]  # processor order
    assert len(lanes._parts(args[1][order], args[2][order], 200)) > 10
    part_lane, part_parent = nest(*args, pool=_Now())
    assert (part_lane == whole_lane).all() and (part_parent == whole_parent).all()
