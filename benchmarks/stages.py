"""Where one count spends its time: stage boundaries of ``analyze``, in seconds since the call.

    python -m benchmarks.stages benchmarks/data/realshape_1GB.json            # processors and decoders: auto
    python -m benchmarks.stages TRACE --shards 1 --workers 16

Wraps the loader's and the model's stage functions (decode, plan, feed, conservation check, steps, SQL)
and prints when each started and ended. The compiled trace processor is assumed cached (run once before).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from traceview.cache import wasm_dir
from traceview.engine import EngineConfig, api
from traceview.engine.kineto import pipeline
from traceview.model import counts

STAGES = ((pipeline, "_decode_all", "decode"), (pipeline, "_plan", "plan"), (api, "feed", "feed"),
          (api, "_check_conservation", "conserve"), (counts, "find_steps", "steps"), (counts, "launch_groups", "sql"))


def timed_stages(path: Path, shards: int | None, workers: int | None) -> tuple[list[tuple[str, float]], float]:
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    for module, name, label in STAGES:
        real = getattr(module, name)

        def wrapper(*args, _real=real, _label=label, **kwargs):
            marks.append((f"{_label} start", time.perf_counter() - start))
            try:
                return _real(*args, **kwargs)
            finally:
                marks.append((f"{_label} end", time.perf_counter() - start))
        setattr(module, name, wrapper)
    counts.analyze(path, config=EngineConfig(cache_dir=wasm_dir(), shards=shards, workers=workers))
    return marks, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--shards", type=int, default=None, help="trace processors (default: by size)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: by size)")
    args = parser.parse_args(argv)
    marks, total = timed_stages(args.trace, args.shards, args.workers)
    print(" ".join(f"{label}={at:.2f}" for label, at in marks), f"total={total:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
