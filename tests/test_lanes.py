"""lanes.nest predicts the trace processor's nesting exactly, so that nothing is dropped.

Random interval sets with many ties, zero-length events, crossings and Python
frames are loaded through traceview; the processor must keep every event, and
give each the parent (and the thread: lane) that ``nest`` computed.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from traceview.engine import open_trace
from traceview.engine.kineto.kinds import CPU_OP, PYTHON
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
