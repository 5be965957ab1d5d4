"""Feeding canonical JSON to one or several trace processors at once.

The loader writes each shard's JSON on this thread; each processor parses its
own on a thread of its own (a call into wasm releases the GIL), so N
processors parse side by side while the text is still being written. A
processor that fails stops the writing; the first error is raised here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from traceview.engine.backends import Backend
from traceview.engine.kineto.pipeline import CanonicalJson

_DONE = None
_DEPTH = 2  # chunks waiting per processor (a few MiB each)


class _Stopped(Exception):
    """A processor failed: stop writing."""


def _chunks(channel: queue.Queue) -> Iterator[bytes]:
    while (chunk := channel.get()) is not _DONE:
        yield chunk


def feed(canonical: CanonicalJson, backends: list[Backend]) -> None:
    """Loads shard i of ``canonical`` into ``backends[i]``; raises the first processor's error."""
    channels = [queue.Queue(maxsize=_DEPTH) for _ in backends]
    errors: list[BaseException] = []
    failed = threading.Event()

    def parse(backend: Backend, channel: queue.Queue) -> None:
        try:
            backend.load(_chunks(channel))
        except BaseException as err:  # handed to the writer, raised there
            errors.append(err)
            failed.set()

    threads = [threading.Thread(target=parse, args=(b, c), name=f"traceview-feed-{i}", daemon=True)
               for i, (b, c) in enumerate(zip(backends, channels))]
    for thread in threads:
        thread.start()

    def writer(channel: queue.Queue, thread: threading.Thread) -> Callable[[bytes | None], None]:
        def put(chunk: bytes | None) -> None:
            while thread.is_alive():
                if failed.is_set() and chunk is not _DONE:
                    raise _Stopped
                try:
                    channel.put(chunk, timeout=0.05)
                    return
                except queue.Full:
                    continue
        return put

    sinks = [writer(c, t) for c, t in zip(channels, threads)]
    try:
        canonical.feed(sinks)
    except _Stopped:
        pass
    finally:
        for sink in sinks:
            sink(_DONE)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
