"""Cost of diff's latency verdict: the bootstrap of the median step-latency change (analyses/latency.py).

Synthetic steps (lognormal around 40 ms, like a decode step's spread), one side against
another, 10,000 resamples (diff's default), for step counts from a short profile to a long
serving run, with one run a side and with four (the hierarchical bootstrap). Times are wall
seconds of ``bootstrap_latency`` in this process (best of ``--repeat``); every diff computes it
twice (CPU step span and GPU span).

    python -m benchmarks.bench_latency --write
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.report import machine_lines, markdown_table, replace_section
from traceview.analyses.latency import DEFAULT_RESAMPLES, bootstrap_latency

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "Latency verdict: bootstrap cost (issue 19)"


def _side(rng: np.random.Generator, steps: int, runs: int, shift_ms: float) -> list[np.ndarray]:
    return [rng.lognormal(np.log(40.0 + shift_ms), 0.05, size=steps // runs) for _ in range(runs)]


def measure(steps: int, runs: int, repeat: int) -> float:
    rng = np.random.default_rng(1)
    before, after = _side(rng, steps, runs, 0.0), _side(rng, steps, runs, -1.0)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        bootstrap_latency(before, after, resamples=DEFAULT_RESAMPLES)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 100, 956, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"write the table into {RESULTS.name}")
    args = parser.parse_args()
    rows = []
    for steps in args.steps:
        one, four = measure(steps, 1, args.repeat), measure(steps, 4, args.repeat) if steps >= 4 else float("nan")
        rows.append([f"{steps:,}", f"{one:.3f}", f"{four:.3f}"])
        print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    body = "\n".join([*machine_lines(args.repeat)[:2],
                      f"- Each cell: best wall time of {args.repeat} calls in one process; 1-minute load average "
                      f"after the runs: {load:.1f} (other jobs share this machine: upper bounds).", "",
                      f"Seconds for one verdict ({DEFAULT_RESAMPLES:,} resamples a side); steps per side:", "",
                      markdown_table(["steps per side", "1 run a side (s)", "4 runs a side (s)"], rows)])
    if args.write:
        replace_section(RESULTS, SECTION, body)
    print(body)


if __name__ == "__main__":
    main()
