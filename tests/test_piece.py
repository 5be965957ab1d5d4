"""Decoding one piece of a traceEvents array (``engine/kineto/piece.py``).

A piece's "X" events are decoded column by column; when every ts (or dur, or
correlation id) of the piece has Kineto's form they are parsed as one list,
otherwise value by value. Both routes must give the same columns and text.
"""

from __future__ import annotations

import pytest

from traceview.engine.kineto.kinds import KERNEL, LAUNCH
from traceview.engine.kineto.piece import PieceOptions, decode_piece

BASE = 1_712_195_495_000_000_000  # a whole second, as pipeline.time_base makes it
KERNEL_EVENT = (b'{"ph":"X","cat":"kernel","name":"k","pid":1,"tid":7,"ts":1712195495505582.988,"dur":4.250,'
                b'"args":{"correlation":12,"device":0,"stream":7}}')
LAUNCH_EVENT = (b'{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":3,'
                b'"ts":1712195495505580.001,"dur":10,"args":{"correlation":12}}')
# Values in every other form a writer may use; each sends its column down the value-by-value route.
ODD_EVENTS = [
    b'{"ph":"X","cat":"kernel","name":"k","pid":1,"tid":7,"ts":1712195495505583,"dur":1,"args":{"correlation":13}}',
    b'{"ph":"X","cat":"kernel","name":"k","pid":1,"tid":7,"ts":"1712195495505590.5","dur":2.5e0,'
    b'"args":{"correlation":"14"}}',
    b'{"ph":"X","cat":"cuda_runtime","name":"r","pid":1,"tid":3,"ts":1712195495505591.1234,"dur":-1,'
    b'"args":{"correlation":15}}',
    b'{"ph":"X","cat":"cuda_runtime","name":"r","pid":1,"tid":3,"ts":1712195495505592.000}',
    b'{"ph":"X","cat":"kernel","name":"k","pid":1,"tid":7,"dur":3.000,"args":{"correlation":16}}',
    b'{"ph":"X","cat":"kernel","name":"k","pid":1,"tid":7,"ts":' + b"9" * 5000 + b',"dur":3.000}',
]
COLUMNS = ("kind", "track", "ts", "dur", "corr", "named", "frag_end")


def _decode(events: list[bytes], lean: bool = True):
    return decode_piece(b",".join(events), PieceOptions(base_ns=BASE, lean=lean))


def test_kineto_forms_decode_to_exact_ns_and_canonical_text() -> None:
    piece = _decode([KERNEL_EVENT, LAUNCH_EVENT])
    assert list(piece.ts) == [1_712_195_495_505_582_988, 1_712_195_495_505_580_001]
    assert list(piece.dur) == [4_250, 10_000]  # "dur":10 is whole microseconds
    assert list(piece.kind) == [KERNEL, LAUNCH]
    assert list(piece.corr) == [12, 12]
    assert piece.tracks == [(1, 7), (1, 3)]
    assert piece.frag == (
        b'{"ph":"X","cat":"kernel","name":"k","pid":1,"ts":505582.988,"dur":4.250,'
        b'"args":{"correlation":12,"device":0,"stream":7},"tid":7},'
        b'{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"ts":505580.001,"dur":10.000,'
        b'"args":{"correlation":12},"tid":3},')
    assert (piece.min_ts, piece.max_ts) == (1_712_195_495_505_580_001, 1_712_195_495_505_582_988)


def test_odd_values_are_read_one_by_one() -> None:
    piece = _decode(ODD_EVENTS)
    # The event without a ts and the one whose ts is no int64 have nowhere to go: counted, not loaded.
    assert piece.counts["no_ts:0"] == 2
    # A negative dur and a missing one load as points in time.
    assert piece.counts["dur_zeroed:3"] == 2
    assert list(piece.ts) == [1_712_195_495_505_583_000, 1_712_195_495_505_590_500, 1_712_195_495_505_591_123,
                              1_712_195_495_505_592_000]  # ...591.1234 µs: 0.4 ns rounded away
    assert list(piece.dur) == [1_000, 2_500, 0, 0]
    assert list(piece.corr) == [13, 14, 15, -1]


@pytest.mark.parametrize("lean", [True, False])
def test_a_piece_decodes_as_its_events_one_by_one(lean: bool) -> None:
    """The whole-piece route (uniform forms) and the value-by-value route (odd forms mixed in) agree."""
    events = [KERNEL_EVENT, LAUNCH_EVENT, *ODD_EVENTS, KERNEL_EVENT]
    whole = _decode(events, lean)
    alone = [_decode([event], lean) for event in events]
    for column in ("kind", "ts", "dur", "corr", "named"):
        assert list(getattr(whole, column)) == [v for p in alone for v in getattr(p, column)]
    assert whole.frag == b"".join(p.frag for p in alone)
    assert sum(whole.counts.values()) - whole.counts["events"] == sum(
        sum(p.counts.values()) - p.counts["events"] for p in alone)
