"""traceview next to its peers on the same Kineto traces: HolisticTraceAnalysis, a bare orjson.loads.

For each generated trace (``benchmarks/gen_kineto.py``; 100 MB, 500 MB, 1 GB by
default) every tool runs in a fresh process, one at a time, and we record the
process's wall time, CPU time (user + sys) and peak RSS (``os.wait4``'s rusage
of that one child). The tools:

- ``orjson``: ``orjson.loads`` of the file's bytes, the floor of any JSON reader;
- ``hta``: ``TraceAnalysis(trace_dir=<dir holding only this file>)`` plus the
  per-step kernel counts read from the frame it builds;
- ``traceview_cold``: ``traceview.model.counts.analyze(path)`` (the compiled
  wasm module is cached by a warm-up run first; no result cache is involved);
- ``traceview_fill`` / ``traceview_warm``: ``traceview.cache.cached_analyze``
  twice, in two processes, against an empty result cache: the first computes
  and stores, the second is the cache hit a rerun gets.

HTA's and traceview's per-step kernel counts are compared with each other and
with the generator's ``<trace>.expected.json``.

    python -m benchmarks.bench_peers                          # all sizes, all tools
    python -m benchmarks.bench_peers --sizes 100MB --tools orjson traceview_cold
    python -m benchmarks.bench_peers --render-only            # RESULTS.md from the last run's JSON
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks import gen_kineto

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSON = DATA / "peers_results.json"
TOOLS = ("orjson", "traceview_cold", "traceview_fill", "traceview_warm", "hta")
SIZES = ("100MB", "500MB", "1GB")
DEFAULT_TIMEOUT_S = 480  # "more than ~8 minutes" is recorded as such, not waited for
SECTION = "## Peers"


# ---------------------------------------------------------------- worker side (one tool, one process)

def _kernels_per_step_hta(path: Path) -> dict[str, int]:
    """HTA's answer: kernels grouped by the ``iteration`` column HTA assigns while loading.

    HTA gives a CPU event the ProfilerStep whose [ts, ts + dur) holds its ts, and a
    GPU event the iteration of the CPU event with its correlation id, i.e. of its
    launching runtime/driver call: exactly the count we compare. The trace sits
    alone in a temporary directory because HTA loads every trace file of ``trace_dir``.
    """
    from hta.trace_analysis import TraceAnalysis

    with tempfile.TemporaryDirectory(prefix="bench-peers-hta-") as tmp:
        (Path(tmp) / path.name).symlink_to(path.resolve())
        # include_last_profiler_step: HTA's default drops the last step as possibly incomplete.
        analysis = TraceAnalysis(trace_dir=tmp, include_last_profiler_step=True)
    frame = analysis.t.get_trace(0)
    kernel_cat = analysis.t.symbol_table.get_sym_id_map()["kernel"]
    kernels = frame[(frame["cat"] == kernel_cat) & (frame["iteration"] >= 0)]
    per_step = kernels.groupby("iteration").size()
    return {f"ProfilerStep#{int(step)}": int(n) for step, n in per_step.items()}


def _kernels_per_step_traceview(counts) -> dict[str, int]:
    """traceview's answer: launches of kind 'kernel' (memcpys excluded) summed per step."""
    launches = counts.launches
    inside = launches[(launches["kind"] == "kernel") & launches["step"].notna()]
    per_step = inside.groupby("step")["launches"].sum()
    return {str(name): int(per_step.get(step, 0)) for step, name in zip(counts.steps["step"], counts.steps["name"])}


def run_tool(tool: str, path: Path) -> dict:
    """Runs one tool on ``path`` in this process; returns what it found (per-step counts or event count)."""
    if tool == "orjson":
        import orjson

        return {"events": len(orjson.loads(path.read_bytes())["traceEvents"])}
    if tool == "hta":
        return {"per_step": _kernels_per_step_hta(path)}
    if tool == "traceview_cold":
        from traceview.model.counts import analyze

        return {"per_step": _kernels_per_step_traceview(analyze(path))}
    if tool in ("traceview_fill", "traceview_warm"):
        from traceview.cache import cached_analyze

        return {"per_step": _kernels_per_step_traceview(cached_analyze(path, use_cache=True))}
    raise ValueError(f"unknown tool {tool!r}")


def _worker(tool: str, path: Path, out: Path) -> int:
    start = time.perf_counter()
    found = run_tool(tool, path)
    found["in_process_s"] = round(time.perf_counter() - start, 3)  # without interpreter start-up
    out.write_text(json.dumps(found))
    return 0


# ---------------------------------------------------------------- parent side (measure, compare, render)

def cache_available() -> bool:
    """Whether traceview/cache.py (cached_analyze) exists in this checkout."""
    try:
        from traceview.cache import cached_analyze  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_trace(label: str) -> Path:
    """benchmarks/data/kineto_<label>.json, generated unless an up-to-date one with its sidecar is there."""
    path = DATA / f"kineto_{label}.json"
    sidecar = Path(str(path) + ".expected.json")
    target = gen_kineto.parse_size(label)
    if path.exists() and sidecar.exists():
        expected = json.loads(sidecar.read_text())
        if (expected.get("target_bytes") == target and expected.get("bytes") == path.stat().st_size
                and expected.get("generator_version") == gen_kineto.GENERATOR_VERSION):
            return path
    gen_kineto.generate(path, target)
    return path


def _read_through(path: Path) -> None:
    """Reads the file once so every tool starts with it in the page cache (the first would pay the disk)."""
    with path.open("rb") as fh:
        while fh.read(16 << 20):
            pass


def _mem_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) >> 10
    return -1


def measure(tool: str, path: Path, timeout_s: float, env: dict[str, str], log: Path) -> dict:
    """One fresh process running ``tool``; wall, CPU and peak RSS come from that child alone (wait4)."""
    out = log.with_suffix(".json")
    out.unlink(missing_ok=True)
    record = {"tool": tool, "load_avg_before": round(os.getloadavg()[0], 2),
              "mem_available_mib_before": _mem_available_mib()}
    cmd = [sys.executable, "-m", "benchmarks.bench_peers", "--worker", tool, str(path), str(out)]
    with log.open("w") as log_fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_fh, stderr=subprocess.STDOUT)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout_s:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    record.update(wall_s=round(wall, 2), cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
                  peak_rss_mib=usage.ru_maxrss >> 10, exit_code=proc.returncode, timed_out=timed_out,
                  load_avg_after=round(os.getloadavg()[0], 2), log=str(log.relative_to(REPO)))
    if proc.returncode == 0 and out.exists():
        record.update(json.loads(out.read_text()))
    else:
        record["error_tail"] = log.read_text(errors="replace").strip().splitlines()[-3:]
    return record


def compare(per_step: dict[str, int], expected: dict) -> dict:
    """Per-step kernel counts against the generator's: steps that differ, missing or extra."""
    want = dict(zip(expected["per_step"]["step"], expected["per_step"]["kernels"]))
    differ = {s: [per_step.get(s, 0), n] for s, n in want.items() if per_step.get(s, 0) != n}
    extra = sorted(set(per_step) - set(want))
    return {"steps": len(want), "differ": len(differ), "first_differences": dict(list(differ.items())[:5]),
            "extra_steps": extra[:5], "total": sum(per_step.values()), "expected_total": sum(want.values())}


def bench_size(label: str, tools: list[str], timeout_s: float) -> dict:
    """All tools on one trace; the per-step counts are replaced by their comparison with expected.json."""
    path = ensure_trace(label)
    expected = json.loads(Path(str(path) + ".expected.json").read_text())
    _read_through(path)
    logs = DATA / "peers_logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-cache-") as cache:
        env = {**os.environ, "TRACEVIEW_CACHE_DIR": cache}  # an empty result cache; the wasm module stays warm
        for tool in tools:
            if tool in ("traceview_fill", "traceview_warm") and not cache_available():
                results.append({"tool": tool, "skipped": "n/a (cache not available)"})
                continue
            record = measure(tool, path, timeout_s, env, logs / f"{path.stem}.{tool}.log")
            if "per_step" in record:
                record["per_step_check"] = compare(record["per_step"], expected)
            results.append(record)
            print(json.dumps({k: v for k, v in record.items() if k != "per_step"}), flush=True)
    _cross_check(results)
    for record in results:
        record.pop("per_step", None)
    return {"label": label, "path": str(path.relative_to(REPO)), "bytes": path.stat().st_size,
            "steps": expected["steps"], "kernels": expected["totals"]["kernels"], "tools": results}


def _cross_check(results: list[dict]) -> None:
    """Marks each counting tool with the steps where it disagrees with traceview cold."""
    base = next((r["per_step"] for r in results if r["tool"] == "traceview_cold" and "per_step" in r), None)
    for record in results:
        if base is not None and "per_step" in record and record["tool"] != "traceview_cold":
            steps = set(base) | set(record["per_step"])
            record["differs_from_traceview_cold"] = sum(
                base.get(s, 0) != record["per_step"].get(s, 0) for s in steps)


def machine() -> dict:
    """What the numbers were measured on."""
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = {}
    for dist in ("traceview", "holistictraceanalysis", "orjson", "pandas", "numpy", "wasmtime", "perfetto"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=False).stdout.strip()
    return {"nproc": os.cpu_count(), "ram_gib": round(mem_kib / (1 << 20), 1), "cpu": cpu,
            "python": platform.python_version(), "os": platform.platform(), "versions": versions,
            "commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ---------------------------------------------------------------- RESULTS.md

TOOL_LABELS = {"orjson": "orjson.loads (floor)", "traceview_cold": "traceview cold",
               "traceview_fill": "traceview, cache fill", "traceview_warm": "traceview warm (cache hit)",
               "hta": "HolisticTraceAnalysis"}
NOTES = """\
How to read it: every row is one fresh `python` process, run one after another on an otherwise shared machine
(the load average column says how busy it was; CPU time is the less disturbed number). *wall* includes interpreter
start-up and imports; *CPU* is that process's user + sys time; *peak RSS* its `ru_maxrss` from `os.wait4`; the ×
columns divide by traceview cold on the same trace. The trace file was read once before the first row, so every
tool starts with it in the page cache.

- **orjson.loads**: `orjson.loads(path.read_bytes())`, no analysis: the floor for any reader that builds Python
  objects (its RSS holds the file's bytes and the parsed events together).
- **traceview cold**: `traceview.model.counts.analyze(path)`: load into the wasm trace processor, find steps,
  attribute and categorize every GPU event. The compiled wasm module was cached by a warm-up run; no result cache.
- **traceview, cache fill / warm**: `traceview.cache.cached_analyze(path)` twice against an empty
  `TRACEVIEW_CACHE_DIR`: the fill computes, hashes the file and writes the entry; *warm* is the next process,
  which finds the file's SHA-256 remembered under the file's identity (inode, size, mtime, ctime; the fill hashed
  every byte) and reads the entry back.
- **HolisticTraceAnalysis**: `TraceAnalysis(trace_dir=<a directory holding only this trace>,
  include_last_profiler_step=True)` (HTA's default drops the last step), with HTA's default parser backend
  (`json.loads` of the whole file), then kernels (`cat == "kernel"`) grouped by the `iteration` column HTA assigns
  while loading: a GPU event gets the ProfilerStep that holds the start of the CPU call sharing its correlation id.
  Where HTA's time goes (cProfile of the 100 MB load): about half is that `iteration` column, because
  `hta/common/trace.py: add_iteration` finds each CPU event's step with a Python loop over every step
  (`df["ts"].apply(_get_profiler_step)`), so it grows with events × steps: 10× the trace is ~100× that stage.
- **per-step kernels**: for each ProfilerStep, the GPU kernels (memcpys excluded) whose launching
  runtime/driver call starts inside it, compared step by step with the generator's `<trace>.expected.json`
  and between the tools. Runs longer than the limit are killed and shown as `> limit`."""


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}×" if value is not None and base else "–"


# HTA logs the end of its own stages: json.loads, the events -> DataFrame build, then the whole parse
# (which adds fwd/bwd links, correlation indices and step numbers to the frame).
HTA_STAGES = (("json.loads done at", re.compile(r"^Parsed \S+ time = ([\d.]+) seconds")),
              ("DataFrame at", re.compile(r"^Parsed \S+ backend=\S+ in ([\d.]+) seconds")),
              ("links/correlation/steps at", re.compile(r"^Overall parsing of \S+ in ([\d.]+) seconds")))


def hta_stages(log: Path) -> str:
    """'json.loads done at 14 s, DataFrame at 28 s, ...': when HTA logged each stage's end (seconds since load start)."""
    if not log.exists():
        return ""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        for name, pattern in HTA_STAGES:
            if match := pattern.match(line):
                found.append(f"{name} {float(match.group(1)):.0f} s")
    return ", ".join(found)


def _check_cell(record: dict) -> str:
    if "events" in record:
        return f"n/a (parse only; {record['events']:,} events)"
    stages = hta_stages(REPO / record["log"]) if record["tool"] == "hta" else ""
    stages = f" (HTA's log: {stages})" if stages else ""
    check = record.get("per_step_check")
    if check is None:
        return ("not finished" + stages) if record.get("timed_out") else "–"
    if check["differ"] == 0 and not check["extra_steps"]:
        text = f"= expected in all {check['steps']} steps ({check['total']:,} kernels)"
    else:
        first = ", ".join(f"{s}: {got} vs {want}" for s, (got, want) in check["first_differences"].items())
        text = (f"**differs from expected in {check['differ']} of {check['steps']} steps** "
                f"({check['total']:,} vs {check['expected_total']:,} kernels; {first}"
                f"{'; extra steps ' + ', '.join(check['extra_steps']) if check['extra_steps'] else ''})")
    if "differs_from_traceview_cold" in record:
        n = record["differs_from_traceview_cold"]
        text += "; = traceview cold" if n == 0 else f"; **differs from traceview cold in {n} steps**"
    return text + stages


def _row(record: dict, base: dict, size: int, timeout_s: float) -> str:
    label = TOOL_LABELS.get(record["tool"], record["tool"])
    if "skipped" in record:
        return f"| {label} | {record['skipped']} | | | | | | | |"
    done = record["exit_code"] == 0 and not record["timed_out"]
    if not done and not record["timed_out"]:
        failed = f"failed (exit {record['exit_code']})"
        return f"| {label} | {failed} | | | | | | | {'; '.join(record.get('error_tail', []))[-200:]} |"
    # A killed run's numbers are what it had used when killed: lower bounds.
    at_least = "" if done else "≥ "
    rss = record["peak_rss_mib"]
    cells = [label, f"{record['wall_s']:.1f}" if done else f"> {timeout_s:.0f} (killed)",
             at_least.replace("≥", ">") + _ratio(record["wall_s"], base.get("wall_s")),
             at_least + f"{record['cpu_s']:.1f}", at_least + _ratio(record["cpu_s"], base.get("cpu_s")),
             at_least + f"{rss:,}", at_least + f"{(rss << 20) / size:.2f}",
             f"{record['load_avg_before']}→{record['load_avg_after']}", _check_cell(record)]
    return "| " + " | ".join(cells) + " |"


def _load_line(results: dict) -> str:
    loads = [r[k] for e in results["sizes"] for r in e["tools"] for k in ("load_avg_before", "load_avg_after") if k in r]
    if not loads:
        return ""
    span = f"1-minute load average {min(loads)}–{max(loads)} on {results['machine']['nproc']} CPUs during these runs"
    if max(loads) < 1.5:  # the benchmark's own process is 1
        return (f"The machine was otherwise idle ({span}). traceview's CPU time runs above its wall time: a reader "
                "thread prepares the next chunk while the trace processor parses this one.")
    return f"The machine was shared with other jobs ({span}), so wall times run above CPU times."


def _header(results: dict) -> list[str]:
    m, v = results["machine"], results["machine"]["versions"]
    intro = ("traceview next to HolisticTraceAnalysis and a bare `orjson.loads`, on the Kineto traces of "
             "`benchmarks/gen_kineto.py` (`python -m benchmarks.bench_peers`; raw numbers in "
             "`benchmarks/data/peers_results.json`, logs in `benchmarks/data/peers_logs/`).")
    where = (f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}; "
             f"traceview {v['traceview']} (each size names the commit it ran on), "
             f"HolisticTraceAnalysis {v['holistictraceanalysis']}, orjson {v['orjson']}, pandas {v['pandas']}, "
             f"numpy {v['numpy']}, wasmtime {v['wasmtime']}. Time limit per run: {results['timeout_s']:.0f} s. "
             f"{_load_line(results)}")
    return [SECTION, "", intro, "", where, ""]


def _table(entry: dict, timeout_s: float) -> list[str]:
    base = next((r for r in entry["tools"] if r["tool"] == "traceview_cold" and r.get("exit_code") == 0
                 and not r.get("timed_out")), {})
    title = (f"### {entry['label']} trace ({entry['bytes']:,} bytes, {entry['steps']} steps, "
             f"{entry['kernels']:,} kernels), measured {entry['date']} on commit {entry.get('commit', '?')}")
    head = ("| tool | wall s | × tv cold | CPU s | × tv cold (CPU) | peak RSS MiB | RSS / file size "
            "| load avg | per-step kernels |")
    rows = [_row(r, base, entry["bytes"], timeout_s) for r in entry["tools"]]
    return [title, "", head, "|---|---:|---:|---:|---:|---:|---:|---|---|", *rows, ""]


def render(results: dict) -> str:
    """The Peers section of RESULTS.md."""
    lines = _header(results)
    for entry in results["sizes"]:
        lines += _table(entry, results["timeout_s"])
    return "\n".join([*lines, NOTES, ""])


def write_section(text: str, path: Path = RESULTS_MD) -> None:
    """Replaces the Peers section (from its heading to the next '## ' heading) and leaves the rest alone."""
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = current.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = current.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + text.rstrip("\n").splitlines() + ([""] + lines[end:] if end < len(lines)
                                                                          else [])) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)


# ---------------------------------------------------------------- main

def _merge(old: dict | None, new_entry: dict) -> list[dict]:
    """Sizes from earlier runs are kept unless this run measured them again."""
    kept = [e for e in (old or {}).get("sizes", []) if e["label"] != new_entry["label"]]
    order = {label: i for i, label in enumerate(SIZES)}
    return sorted(kept + [new_entry], key=lambda e: (order.get(e["label"], len(order)), e["bytes"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="trace sizes (default: %(default)s)")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per run before it is killed")
    parser.add_argument("--render-only", action="store_true", help="rewrite RESULTS.md from the last JSON")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "TRACE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else None
    if not args.render_only:
        warm_up = ensure_trace("2MB")  # compiles and caches the wasm module, so "cold" means no result cache only
        measure("traceview_cold", warm_up, args.timeout, dict(os.environ), DATA / "peers_warm_up.log")
        for label in args.sizes:
            commit = machine()["commit"]  # the code the traceview rows run: HEAD when this size starts
            entry = {**bench_size(label, args.tools, args.timeout), "date": machine()["date"], "commit": commit}
            results = {"machine": machine(), "timeout_s": args.timeout, "sizes": _merge(results, entry)}
            RESULTS_JSON.write_text(json.dumps(results, indent=1))
    if results is None:
        print(f"{RESULTS_JSON}: no results yet", file=sys.stderr)
        return 2
    text = render(results)
    if args.no_write:
        print(text)
    else:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
