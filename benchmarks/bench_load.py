"""Load benchmarks: traceview's engine against json.load and orjson.loads.

Each measurement runs in a fresh process (``benchmarks.load_child``), one at a
time (the reference machine has 2 cores). Traces are generated under
``benchmarks/data/`` (git-ignored) when missing. Results go to stdout as a
markdown table and, with ``--write``, into their section of
``benchmarks/RESULTS.md``.

    python -m benchmarks.bench_load load --write            # 100MB, 500MB, 1GB: engine cold/warm, json, orjson
    python -m benchmarks.bench_load big --write             # 1GB, 1.5GB (both builds), 2GB (memory64)
    python -m benchmarks.bench_load load --sizes 100MB --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import gen_kineto
from benchmarks.report import machine_lines, markdown_table, replace_section
from traceview.engine.config import MEMORY64_THRESHOLD_BYTES

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
WARM_CACHE = DATA / "wasm-cache"
RESULTS = HERE / "RESULTS.md"


@dataclass(frozen=True)
class Case:
    """One row of a table: which tool loads which trace, how."""

    label: str  # what the table calls it
    mode: str  # load_child mode: engine | json | orjson
    cache: str = "warm"  # engine only: warm | cold
    memory64: str = "auto"  # engine only: auto | on | off


LOAD_CASES = (Case("traceview, cold cache", "engine", "cold"), Case("traceview, warm cache", "engine"),
              Case("json.load", "json"), Case("orjson.loads", "orjson"))
BIG_CASES = (Case("traceview, warm cache", "engine"), Case("traceview, warm cache, memory64 forced", "engine",
                                                           memory64="on"))


def _cases_for(cases: tuple[Case, ...], expected: dict) -> list[Case]:
    """Drops a forced-memory64 case where the automatic choice is memory64 already."""
    auto64 = expected["bytes"] > MEMORY64_THRESHOLD_BYTES
    return [c for c in cases if not (c.memory64 == "on" and auto64)]


def trace_for(label: str) -> tuple[Path, dict]:
    """benchmarks/data/kineto_<label>.json and its expected counts, generated if missing or stale."""
    path = DATA / f"kineto_{label}.json"
    sidecar = Path(str(path) + ".expected.json")
    if path.exists() and sidecar.exists():
        expected = json.loads(sidecar.read_text())
        if (expected.get("generator_version") == gen_kineto.GENERATOR_VERSION
                and expected.get("target_bytes") == gen_kineto.parse_size(label)
                and expected.get("bytes") == path.stat().st_size):
            return path, expected
    print(f"generating {path} ...", file=sys.stderr, flush=True)
    return path, gen_kineto.generate(path, gen_kineto.parse_size(label))


def _warm_cache() -> Path:
    """A module cache holding both builds, compiled by a throwaway load."""
    tiny, _ = trace_for("2MB")
    for memory64 in ("off", "on"):
        _child(Case("warm-up", "engine", memory64=memory64), tiny, WARM_CACHE)
    return WARM_CACHE


def _child(case: Case, trace: Path, cache: Path | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.load_child", case.mode, str(trace), "--memory64", case.memory64]
    if cache is not None:
        cmd += ["--cache", str(cache)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_seconds"] = round(time.perf_counter() - start, 3)
    out["load_avg"] = os.getloadavg()[0]
    return out


def measure(case: Case, trace: Path, repeat: int) -> dict:
    """Best wall time of ``repeat`` fresh processes (the least disturbed run), its
    CPU time, and the highest peak RSS seen."""
    runs = []
    for _ in range(repeat):
        if case.mode == "engine" and case.cache == "cold":
            cold = Path(tempfile.mkdtemp(prefix="tv-cold-"))
            try:
                runs.append(_child(case, trace, cold))
            finally:
                shutil.rmtree(cold, ignore_errors=True)
        else:
            runs.append(_child(case, trace, WARM_CACHE if case.mode == "engine" else None))
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_rss_kib": max(r["peak_rss_kib"] for r in runs), "runs": runs}


def _row(label: str, case: Case, expected: dict, m: dict) -> list[str]:
    size_mb = expected["bytes"] / 1e6
    rss_mib = m["peak_rss_kib"] / 1024
    want = expected["totals"]["slices" if case.mode == "engine" else "trace_events"]
    check = "ok" if m["result"] == want else f"MISMATCH (expected {want})"
    tool = case.label + (f" [{m['backend']}]" if case.mode == "engine" and case.memory64 == "auto" else "")
    return [label, f"{size_mb:,.0f}", tool, f"{m['seconds']:.1f}", f"{size_mb / m['seconds']:.0f}",
            f"{m['cpu_seconds']:.1f}", f"{rss_mib:,.0f}", f"{rss_mib * 1048576 / expected['bytes']:.2f}",
            f"{m['result']:,} {check}", f"{m['load_avg']:.1f}"]


HEADER = ["trace", "size MB", "tool", "wall s", "MB/s", "CPU s", "peak RSS MiB", "RSS / size", "result",
          "load avg"]


def run(sizes: list[str], cases: tuple[Case, ...], repeat: int, raw_out: Path) -> list[list[str]]:
    _warm_cache()
    rows, raw = [], []
    for label in sizes:
        trace, expected = trace_for(label)
        for case in _cases_for(cases, expected):
            m = measure(case, trace, repeat)
            rows.append(_row(label, case, expected, m))
            raw.append({"trace": label, "case": case.label, **m})
            print("| " + " | ".join(rows[-1]) + " |", file=sys.stderr, flush=True)
    raw_out.write_text(json.dumps(raw, indent=1) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=["load", "big"])
    parser.add_argument("--sizes", nargs="+", help="default: 100MB 500MB 1GB (load), 1GB 1.5GB 2GB (big)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per cell; the best wall time is kept")
    parser.add_argument("--write", action="store_true", help=f"update the section in {RESULTS.name}")
    args = parser.parse_args(argv)
    big = args.section == "big"
    sizes = args.sizes or (["1GB", "1.5GB", "2GB"] if big else ["100MB", "500MB", "1GB"])
    cases = BIG_CASES if big else LOAD_CASES
    rows = run(sizes, cases, args.repeat, DATA / f"results-{args.section}.json")
    body = "\n".join(machine_lines(args.repeat)) + "\n\n" + markdown_table(HEADER, rows) + "\n"
    print(body)
    if args.write:
        replace_section(RESULTS, "Big traces" if big else "Load", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
