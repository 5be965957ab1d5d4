"""Nesting a real trace's events in this process, and in 4 decoding processes, cold and warmed.

    python -m benchmarks.bench_nest benchmarks/data/realshape_1GB.json

Loads the trace once (lean, as a count does) to capture the columns the plan nests, then times
``lanes.nest`` on them: in this process, with a fresh pool of 4 decoding processes (each imports
numpy on its first track), and with a pool sent ``lanes.ready`` first, as the loader does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from traceview.cache import wasm_dir
from traceview.engine import EngineConfig
from traceview.engine.api import open_sharded
from traceview.engine.kineto import lanes, pipeline
from traceview.engine.kineto.workers import WorkerPool
from traceview.errors import TraceviewError

POOL = 4


def plan_columns(path: Path) -> tuple:
    """(track, start, dur, kind) as the plan hands them to nest()."""
    captured: list[tuple] = []
    real = pipeline.nest

    def capture(track, start, dur, kind, pool=None):
        captured.append((track.copy(), start.copy(), dur.copy(), kind.copy()))
        return real(track, start, dur, kind, pool)

    pipeline.nest = capture
    try:
        open_sharded(path, EngineConfig(cache_dir=wasm_dir(), lean=True)).close()
    finally:
        pipeline.nest = real
    return captured[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    try:
        columns = plan_columns(parser.parse_args(argv).trace)
    except TraceviewError as err:  # one line, as traceview's own commands say it
        print(f"bench_nest: {err}", file=sys.stderr)
        return 2
    for how in ("in this process", f"{POOL} processes, cold", f"{POOL} processes, warmed", "in this process"):
        pool = None if how == "in this process" else WorkerPool(POOL)
        if how.endswith("warmed"):
            for future in [pool.submit(lanes.ready) for _ in range(POOL)]:
                future.result()
        start = time.perf_counter()
        lanes.nest(*columns, pool=pool)
        print(f"nest {len(columns[0]):,} events, {how}: {time.perf_counter() - start:.2f} s")
        if pool is not None:
            pool.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
