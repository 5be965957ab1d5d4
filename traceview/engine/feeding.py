"""Feeding canonical JSON to one or several trace processors at once.

Each processor gets its own stream of its shard's JSON, written on a thread
of its own a few chunks ahead (``formats.prefetch``), and parses it on another
(a call into wasm releases the GIL). So N processors parse side by side while
their text is being written. A processor that fails stops the others' streams;
the first error is raised here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from traceview.engine.backends import Backend
from traceview.engine.formats import prefetch
from traceview.engine.kineto.pipeline import CanonicalJson


class _Stopped(Exception):
    """Another processor failed: this one stops reading."""


def _until(failed: threading.Event, chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if failed.is_set():
            raise _Stopped
        yield chunk


def feed(canonical: CanonicalJson, backends: list[Backend]) -> None:
    """Loads shard i of ``canonical`` into ``backends[i]``; raises the first processor's error."""
    errors: list[BaseException] = []
    failed = threading.Event()

    def parse(shard: int, backend: Backend) -> None:
        try:
            backend.load(_until(failed, prefetch(canonical.chunks(shard))))
        except _Stopped:
            pass
        except BaseException as err:  # handed to the caller, raised there
            if not failed.is_set():
                errors.append(err)
            failed.set()

    threads = [threading.Thread(target=parse, args=(shard, backend), name=f"traceview-feed-{shard}", daemon=True)
               for shard, backend in enumerate(backends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
