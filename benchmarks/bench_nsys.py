"""Ingestion throughput of Nsight Systems SQLite exports (engine/nsys/).

Three stages, each timed on the real export (../shared/traces/public/nsys-mfu-2gpu) and on
larger nsys-shaped exports made from it: its GPU, API and NVTX rows replicated N times, each
copy shifted past the previous one in time and in correlation ids (``benchmarks/data/``,
git-ignored):

- translate: the export read row by row and written as Kineto JSON (``nsys.iter_chunks``);
- load: ``open_trace`` (translation, the Kineto pipeline, every event into the trace processor);
- count: ``analyze`` (a lean load plus the model's SQL), what ``traceview counts`` runs.

MB/s is of the export file, rows/s of the rows read (GPU work, API calls, NVTX events).

    python -m benchmarks.bench_nsys --copies 10 100 --write
    python -m benchmarks.bench_nsys --copies 1 --repeat 1
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from pathlib import Path

from benchmarks.report import machine_lines, markdown_table, replace_section
from traceview import analyze, open_trace
from traceview.engine import nsys
from traceview.engine.formats import inspect_file

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "RESULTS.md"
REAL = HERE.parent.parent / "shared" / "traces" / "public" / "nsys-mfu-2gpu" / "mfu_2gpu_before.sqlite"
SECTION = "Nsight Systems ingestion (issue 21)"
# The tables traceview reads rows from; the rest of an export (enums, labels) is not replicated.
ROW_TABLES = ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET",
              "CUPTI_ACTIVITY_KIND_RUNTIME", "NVTX_EVENTS")
TIME_COLUMNS = ("start", "end")


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f'pragma table_info("{table}")')]


def replicate(source: Path, copies: int) -> Path:
    """``benchmarks/data/nsys_x<copies>.sqlite``: ``source`` with its row tables ``copies`` times over."""
    out = DATA / f"nsys_x{copies}.sqlite"
    if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
        return out
    DATA.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    shutil.copyfile(source, partial)
    partial.chmod(0o644)
    db = sqlite3.connect(partial)
    bounds = [db.execute(f'select min(start), max("end") from {t}').fetchone() for t in ROW_TABLES]
    lo = min(b[0] for b in bounds if b[0] is not None)
    hi = max(b[1] for b in bounds if b[1] is not None)
    time_step = (hi - lo) + 1_000_000  # each copy starts 1 ms after the previous one ends
    corr_step = max(db.execute(f"select max(correlationId) from {t}").fetchone()[0] or 0
                    for t in ROW_TABLES if "correlationId" in _columns(db, t)) + 1
    for table in ROW_TABLES:
        columns = _columns(db, table)
        rows = db.execute(f"select max(rowid) from {table}").fetchone()[0] or 0
        for k in range(1, copies):
            shifted = [f'"{c}" + {k * time_step}' if c in TIME_COLUMNS else
                       f'"{c}" + {k * corr_step}' if c == "correlationId" else f'"{c}"' for c in columns]
            names = ", ".join(f'"{c}"' for c in columns)
            db.execute(f"insert into {table} ({names}) select {', '.join(shifted)} from {table} where rowid <= {rows}")
    db.commit()
    db.execute("vacuum")
    db.close()
    partial.replace(out)
    return out


def rows_of(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return sum(db.execute(f"select count(*) from {t}").fetchone()[0] for t in ROW_TABLES)


def _translate(path: Path) -> int:
    """Bytes of JSON written."""
    return sum(len(chunk) for chunk in nsys.iter_chunks(inspect_file(path)))


def _load(path: Path) -> int:
    with open_trace(path) as trace:
        return int(trace.query("select count(*) as n from slice").n[0])


def _count(path: Path) -> int:
    return analyze(path).total_gpu_events


def _best(fn, path: Path, repeat: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - start)
    return min(times), result


def measure(paths: list[Path], repeat: int) -> list[list[str]]:
    _load(REAL)  # the wasm module compiled and cached before anything is timed
    rows = []
    for path in paths:
        size, n = path.stat().st_size, rows_of(path)
        for stage, fn in (("translate", _translate), ("load", _load), ("count", _count)):
            seconds, result = _best(fn, path, repeat)
            what = {"translate": f"{result / 1e6:,.1f} MB of JSON", "load": f"{result:,} slices",
                    "count": f"{result:,} GPU events"}[stage]
            rows.append([path.name, f"{size / 1e6:,.1f}", f"{n:,}", stage, f"{seconds:.2f}",
                         f"{size / 1e6 / seconds:,.1f}", f"{n / seconds:,.0f}", what])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[10, 100],
                        help="synthetic exports of the real one's rows this many times over (1 = the real export)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the best is reported")
    parser.add_argument("--write", action="store_true", help=f"rewrite '{SECTION}' in RESULTS.md")
    args = parser.parse_args()
    if not REAL.exists():
        raise SystemExit(f"{REAL} is absent: the benchmark replicates that real export")
    paths = [REAL] + [replicate(REAL, c) for c in args.copies if c > 1]
    rows = measure(paths, args.repeat)
    table = markdown_table(["trace", "export MB", "rows", "stage", "s", "MB/s", "rows/s", "result"], rows)
    body = "\n".join(machine_lines(args.repeat)[:2] + [
        f"- Each cell: best of {args.repeat} runs in one process, the wasm module compiled beforehand. "
        "`python -m benchmarks.bench_nsys --copies " + " ".join(map(str, args.copies)) + " --write`.", "", table])
    print(body)
    if args.write:
        replace_section(RESULTS, SECTION, body)


if __name__ == "__main__":
    main()
