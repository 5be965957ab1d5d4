"""The model's SQL, file by file, at 1x, 2x and 4x the trace: does any of it grow faster than the trace?

Issue 16 was a quadratic join that a generated trace hid (``correlation IN (SELECT ...)`` and the joins of
``launches.sql`` scanned: x3.5 per doubling). This loads real-shaped traces of three sizes (``realshape.py``)
into one trace processor each (``shards=1``: every query sees the whole trace, as on a small machine), runs
``analyze`` with each SQL stage of the model timed (``model/sql/*.sql`` and the queries ``model/launches.py``
and ``model/steps.py`` build), and reports each stage's seconds and its growth from 1x to 4x: linear is 4,
quadratic 16. Best of --repeat runs per size, after one warm-up count (the compiled processor is cached).

    python -m benchmarks.bench_sql                      # 50MB, 100MB, 200MB
    python -m benchmarks.bench_sql --base 100MB --repeat 3 --write
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.bench_peers import ensure_trace
from benchmarks.gen_kineto import parse_size
from benchmarks.report import machine_lines, markdown_table, replace_section
from traceview.cache import wasm_dir
from traceview.engine import EngineConfig
from traceview.errors import TraceviewError
from traceview.model import counts, launches

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
TITLE = "Model SQL at 1×, 2× and 4× the trace (issue 16)"
WARM_UP = HERE.parent / "sample_traces" / "demo_eager_before.pt.trace.json.gz"
# (module, function, label); run_sql_file is labelled by the file it runs.
STAGES = ((counts, "find_steps", "find_steps (step-marker queries, model/steps.py)"),
          (launches, "_create_step_table", "tv_step table (the chosen steps)"),
          (launches, "_correlated_share", "correlated share (launch calls vs GPU events)"),
          (launches, "_create_user_frame_table", "user-frame table (model/launches.py)"),
          (launches, "run_sql_file", None))
LINEAR, QUADRATIC = 4.0, 16.0  # growth from 1x to 4x


def _size_label(size_bytes: int) -> str:
    return f"{size_bytes // 1_000_000}MB"


def timed_sql(path: Path) -> dict[str, float]:
    """Seconds per SQL stage of one ``analyze(path)`` on one trace processor (summed over calls)."""
    spent: dict[str, float] = defaultdict(float)
    originals = [(module, name, getattr(module, name)) for module, name, _ in STAGES]
    for (module, name, real), (_, _, label) in zip(originals, STAGES):
        def wrapper(*args, _real=real, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _real(*args, **kwargs)
            finally:
                spent[_label or str(args[1])] += time.perf_counter() - start
        setattr(module, name, wrapper)
    try:
        counts.analyze(path, config=EngineConfig(cache_dir=wasm_dir(), shards=1))
    finally:
        for module, name, real in originals:
            setattr(module, name, real)
    return dict(spent)


def growth_rows(per_size: list[dict[str, float]]) -> list[tuple[str, list[float], float]]:
    """(stage, seconds at each size, growth first -> last size) for every stage seen, slowest at the top size
    first. A stage absent at a size counts 0 there; growth is NaN where the first size took no time."""
    stages = {stage for timings in per_size for stage in timings}
    rows = []
    for stage in stages:
        seconds = [timings.get(stage, 0.0) for timings in per_size]
        rows.append((stage, seconds, seconds[-1] / seconds[0] if seconds[0] > 0 else float("nan")))
    return sorted(rows, key=lambda row: (-row[1][-1], row[0]))


def _verdict(growth: float, seconds_at_top: float) -> str:
    if seconds_at_top < 0.005:
        return "too small to tell"
    if growth != growth:  # NaN
        return "–"
    return "linear" if growth <= LINEAR * 1.5 else ("**faster than linear**" if growth < QUADRATIC * 0.75
                                                    else "**quadratic**")


def render(sizes: list[int], files: list[int], per_size: list[dict[str, float]], totals: list[float],
           repeat: int) -> str:
    header = ["SQL stage", *(f"{_size_label(s)} s" for s in sizes), "growth 1× → 4×", "reading"]
    rows = [[stage, *(f"{s:.3f}" for s in seconds), f"{growth:.1f}", _verdict(growth, seconds[-1])]
            for stage, seconds, growth in growth_rows(per_size)]
    rows.append(["whole count (load included)", *(f"{t:.2f}" for t in totals), f"{totals[-1] / totals[0]:.1f}", ""])
    lines = machine_lines(repeat)[:2] + [  # the third line describes fresh-process tables
        f"- `python -m benchmarks.bench_sql --base {_size_label(sizes[0])}`: real-shaped traces of "
        f"{', '.join(f'{_size_label(s)} ({b:,} bytes)' for s, b in zip(sizes, files))}: whole copies of the source "
        f"trace's step block, so the largest is {files[-1] / files[0]:.2f}× the smallest; one trace processor each. "
        "Each stage's seconds (the query, and for a file that returns rows, reading them into pandas) are summed "
        f"over its calls in one count, best of {repeat} runs per stage. "
        "Growth 1× → 4×: linear is 4, quadratic 16.", "",
        markdown_table(header, rows, text_columns=("SQL stage", "reading"))]
    return "\n".join(lines)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of runs, at least 1, expected: {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=parse_size, default="50MB", help="the 1x size (2x and 4x follow), e.g. 100MB")
    parser.add_argument("--repeat", type=_at_least_one, default=3,
                        help="counts per size; the best time per stage is kept")
    parser.add_argument("--write", action="store_true", help=f"put the table into '{TITLE}' of RESULTS.md")
    args = parser.parse_args(argv)
    sizes = [args.base, 2 * args.base, 4 * args.base]
    try:
        counts.analyze(WARM_UP, config=EngineConfig(cache_dir=wasm_dir(), shards=1))  # compiles the processor once
        per_size, totals, files = [], [], []
        for size in sizes:
            path = ensure_trace(_size_label(size), "real")
            files.append(path.stat().st_size)
            best: dict[str, float] = {}
            best_total = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                timings = timed_sql(path)
                best_total = min(best_total, time.perf_counter() - start)
                for stage, seconds in timings.items():
                    best[stage] = min(best.get(stage, float("inf")), seconds)
            per_size.append(best)
            totals.append(best_total)
            print(f"{path.name}: {best_total:.2f} s", file=sys.stderr)
    except TraceviewError as err:  # one line, as traceview's own commands say it
        print(f"bench_sql: {err}", file=sys.stderr)
        return 2
    body = render(sizes, files, per_size, totals, args.repeat)
    print(body)
    if args.write:
        replace_section(RESULTS, TITLE, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
