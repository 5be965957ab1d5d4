"""One load measurement, run in a fresh process by bench_load.py.

Prints one JSON object: ``seconds`` (wall time of the measured work only),
``cpu_seconds`` (user + system, same span), ``peak_rss_kib`` (the process's
peak resident set, interpreter and imports included: VmHWM, because
ru_maxrss carries the parent's peak across fork+exec), ``baseline_rss_kib``
(peak before the work started), ``result`` (slices counted, or events parsed)
and, for the engine, the backend that ran.

    python -m benchmarks.load_child engine TRACE --cache DIR [--memory64 auto|on|off]
    python -m benchmarks.load_child json TRACE
    python -m benchmarks.load_child orjson TRACE

Each mode imports only what it needs, so ``json``'s RSS is not inflated by pandas.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def _engine(path: Path, cache: Path | None, memory64: str) -> tuple[int, dict]:
    from traceview.engine import EngineConfig, open_trace

    pinned = {"auto": None, "on": True, "off": False}[memory64]
    config = EngineConfig(memory64=pinned, cache_dir=cache, wasm_only=True)
    with open_trace(path, config) as trace:
        slices = int(trace.query("select count(*) as n from slice").n.iloc[0])
        return slices, {"backend": trace.engine, "perfetto": trace.perfetto_version}


def _json(path: Path) -> tuple[int, dict]:
    with path.open("rb") as fh:
        return len(json.load(fh)["traceEvents"]), {}


def _orjson(path: Path) -> tuple[int, dict]:
    import orjson

    return len(orjson.loads(path.read_bytes())["traceEvents"]), {}


def peak_rss_kib() -> int:
    """VmHWM of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["engine", "json", "orjson"])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--cache", type=Path, default=None, help="compiled-module cache dir (engine)")
    parser.add_argument("--memory64", choices=["auto", "on", "off"], default="auto")
    args = parser.parse_args(argv)
    if args.mode == "engine":  # imports are not part of the measured load
        import traceview.engine  # noqa: F401
    elif args.mode == "orjson":
        import orjson  # noqa: F401
    before, baseline = resource.getrusage(resource.RUSAGE_SELF), peak_rss_kib()
    start = time.perf_counter()
    if args.mode == "engine":
        result, extra = _engine(args.trace, args.cache, args.memory64)
    else:
        result, extra = (_json if args.mode == "json" else _orjson)(args.trace)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"mode": args.mode, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                      "peak_rss_kib": peak_rss_kib(), "baseline_rss_kib": baseline,
                      "result": result, **extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
