"""Where one count spends its time: stage boundaries of ``analyze``, in seconds since the call.

    python -m benchmarks.stages benchmarks/data/realshape_1GB.json            # processors and decoders: auto
    python -m benchmarks.stages TRACE --shards 1 --workers 16
    python -m benchmarks.stages TRACE --detail     # also the plan's parts and what lies between plan and feed

Wraps the loader's and the model's stage functions (decode, plan, feed, conservation check, steps, SQL)
and prints when each started and ended (calls made on the main thread only). The compiled trace
processor is assumed cached (run once before).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from traceview.cache import wasm_dir
from traceview.engine import EngineConfig, api
from traceview.engine.kineto import emit, pipeline, shards, workers
from traceview.errors import TraceviewError
from traceview.model import counts

STAGES = ((pipeline, "_decode_all", "decode"), (pipeline, "_plan", "plan"), (api, "feed", "feed"),
          (api, "_check_conservation", "conserve"), (counts, "find_steps", "steps"), (counts, "launch_groups", "sql"))
DETAIL = ((pipeline, "nest", "nest"), (shards, "assign", "shard-bounds"), (workers.WorkerPool, "shutdown", "exit"),
          (emit.Plan, "compact", "compact"), (api, "_start_backends", "start"))


def timed_stages(path: Path, shards: int | None, workers: int | None,
                 detail: bool = False) -> tuple[list[tuple[str, float]], float]:
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    for module, name, label in STAGES + (DETAIL if detail else ()):
        real = getattr(module, name)

        def wrapper(*args, _real=real, _label=label, **kwargs):
            main = threading.current_thread() is threading.main_thread()
            if main:
                marks.append((f"{_label} start", time.perf_counter() - start))
            try:
                return _real(*args, **kwargs)
            finally:
                if main:
                    marks.append((f"{_label} end", time.perf_counter() - start))
        setattr(module, name, wrapper)
    counts.analyze(path, config=EngineConfig(cache_dir=wasm_dir(), shards=shards, workers=workers))
    return marks, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--shards", type=int, default=None, help="trace processors (default: by size)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: by size)")
    parser.add_argument("--detail", action="store_true", help="also time the plan's parts and the steps after it")
    args = parser.parse_args(argv)
    try:
        marks, total = timed_stages(args.trace, args.shards, args.workers, args.detail)
    except TraceviewError as err:  # one line, as traceview's own commands say it
        print(f"stages: {err}", file=sys.stderr)
        return 2
    print(" ".join(f"{label}={at:.2f}" for label, at in marks), f"total={total:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
