"""The decoding processes' pool (engine/kineto/workers.py)."""

from __future__ import annotations

import os
import time

from traceview.engine.kineto.workers import WorkerPool


def test_a_cancelled_request_does_not_stop_later_answers() -> None:
    # The loader cancels a piece's request when it merges the piece with the next one.
    pool = WorkerPool(1)
    try:
        busy = pool.submit(time.sleep, 0.3)
        given_up = pool.submit(time.sleep, 0.01)
        assert given_up.cancel()
        later = pool.submit(os.getpid)
        assert later.result(timeout=30) == pool.workers[0].process.pid
        assert busy.result(timeout=30) is None
    finally:
        pool.shutdown()

