"""Feeding shards to their processors: side by side, each its own stream, the first error raised."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from tests.conftest import public_trace
from traceview.engine.feeding import feed
from traceview.engine.formats import inspect_file, iter_chunks
from traceview.engine.kineto.pipeline import CanonicalJson, JsonLoadOptions
from traceview.errors import TraceLoadError

WAIT_S = 10  # only reached when the feeding is broken


class _Shards:
    """A canonical trace whose shard streams are given as functions of the shard."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def chunks(self, shard: int) -> Iterator[bytes]:
        return self.stream(shard)


class _Recorder:
    def __init__(self, fail_on: bytes | None = None) -> None:
        self.got: list[bytes] = []
        self.fail_on = fail_on

    def load(self, chunks) -> None:
        for chunk in chunks:
            if chunk == self.fail_on:
                raise TraceLoadError(None, f"cannot parse {chunk!r}")
            self.got.append(chunk)


def _feed_within(canonical, backends) -> BaseException | None:
    """Runs feed on a thread; fails the test if it has not returned in WAIT_S."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            feed(canonical, backends)
        except BaseException as err:
            raised.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive(), "feed did not return"
    return raised[0] if raised else None


def test_each_processor_gets_its_own_shard_in_order() -> None:
    backends = [_Recorder() for _ in range(3)]
    assert _feed_within(_Shards(lambda s: iter([b"%d-a" % s, b"%d-b" % s, b"%d-c" % s])), backends) is None
    assert [b.got for b in backends] == [[b"%d-%s" % (s, x) for x in (b"a", b"b", b"c")] for s in range(3)]


def test_shards_are_fed_side_by_side() -> None:
    # Shard 0's stream goes on only once shard 2's has started: fed one after another, as one pass
    # over the file in time order would, shard 0 waits for ever.
    started = [threading.Event() for _ in range(3)]

    def stream(shard: int) -> Iterator[bytes]:
        started[shard].set()
        yield b"first"
        if shard == 0:
            assert started[2].wait(WAIT_S)
        yield b"second"

    backends = [_Recorder() for _ in range(3)]
    assert _feed_within(_Shards(stream), backends) is None
    assert [b.got for b in backends] == [[b"first", b"second"]] * 3


def test_a_failing_processor_stops_the_others_and_its_error_is_raised() -> None:
    def stream(shard: int) -> Iterator[bytes]:
        if shard == 1:
            yield b"bad"
        while True:  # the other streams never end on their own
            yield b"ok"

    err = _feed_within(_Shards(stream), [_Recorder(), _Recorder(fail_on=b"bad"), _Recorder()])
    assert isinstance(err, TraceLoadError) and err.reason == "cannot parse b'bad'"


def test_a_piece_is_released_once_every_shard_has_read_it() -> None:
    path = public_trace("hta-a100-cudagraph-steps", "rank0.json.gz")
    info = inspect_file(path)
    canonical = CanonicalJson(lambda: iter_chunks(info), path, info.size,
                              JsonLoadOptions(lean=True, shards=3, workers=0, piece_bytes=1 << 20))
    assert canonical.shards == 3
    pieces = canonical._emitter.pieces
    held = sum(p is not None for p in pieces)
    assert held == len(pieces) > 3
    texts = [b"".join(canonical.chunks(0)), b"".join(canonical.chunks(1))]
    assert all(p is not None for p in pieces)  # shard 2 has not read them yet
    texts.append(b"".join(canonical.chunks(2)))
    assert all(p is None for p in pieces)
    assert all(text.startswith(b'{"traceEvents":[') and text.endswith(b"]}") for text in texts)
