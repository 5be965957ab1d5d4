"""traceview next to its peers on the same Kineto traces: HolisticTraceAnalysis, orjson + Python, a bare orjson.loads.

Two trace shapes, each at 100 MB, 500 MB, 1 GB and 2.5 GB by default: *real*
(``benchmarks/realshape.py``: a real public A100 trace's events replicated to the
size) and *generated* (``benchmarks/gen_kineto.py``). On each trace every tool
runs in a fresh process, one at a time, and we record the process's wall time,
CPU time (user + sys) and peak RSS (``os.wait4``'s rusage of that one child).
The tools:

- ``orjson``: ``orjson.loads`` of the file's bytes, the floor of any JSON reader;
- ``orjson_count``: ``orjson.loads`` plus plain Python computing the same per-step
  kernel counts (ProfilerStep windows, launch calls joined on correlation id);
- ``traceview_cold``: ``traceview.model.counts.analyze(path)`` (the compiled
  wasm module is cached by a warm-up run first; no result cache is involved);
- ``traceview_fill`` / ``traceview_warm``: ``traceview.cache.cached_analyze``
  twice, in two processes, against an empty result cache: the first computes
  and stores, the second is the cache hit a rerun gets;
- ``traceview_cli_warm``: the command a user reruns, ``traceview counts TRACE -f json``,
  on the cache the fill left (its JSON is checked: every GPU launch of each step);
- ``traceview_cli_warm_diff``: ``traceview diff TRACE TRACE -f json``, the trace against itself on
  the same cache: a re-diff reads two cached results, summarizes both, bootstraps the latency CI
  (its JSON is checked: both sides' steps and GPU launches per step = expected, every delta 0);
- ``cli_imports``: a bare interpreter importing every non-stdlib module that warm re-diff loaded
  (pandas, pyarrow, typer, pydantic, rich, ...; listed by one more, untimed, diff): what any
  command built on these libraries pays before it does anything, the floor under the re-diff;
- ``hta``: ``TraceAnalysis(trace_dir=<dir holding only this file>)`` plus the
  per-step kernel counts read from the frame it builds (skipped above --hta-max).

The per-step kernel counts of every counting tool are compared with each other
and with the trace's ``<trace>.expected.json``. The *ranks* scenario counts N
hard links of one real-shaped trace with the CLI, one rank alone and then the
directory with ``--jobs N``; then, pinned with CPU affinity, one rank on one core
against N ranks on N cores, beside the same pair for the orjson + Python count.

    python -m benchmarks.bench_peers                          # everything (an hour or more on 2 cores)
    python -m benchmarks.bench_peers --shapes real --sizes 100MB --tools orjson_count traceview_cold
    python -m benchmarks.bench_peers --scenarios ranks --ranks 8 --rank-size 500MB
    python -m benchmarks.bench_peers --render-only            # RESULTS.md from the last run's JSON
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from importlib.util import cache_from_source, find_spec
from pathlib import Path

from benchmarks.peers_render import REPO, RESULTS_MD, render, write_section

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
LOGS = DATA / "peers_logs"
RESULTS_JSON = DATA / "peers_results.json"
TOOLS = ("orjson", "orjson_count", "traceview_cold", "traceview_fill", "traceview_warm", "traceview_cli_warm",
         "traceview_cli_warm_diff", "cli_imports", "hta")
SHAPES = ("real", "generated")
SIZES = ("100MB", "500MB", "1GB", "2.5GB")
SCENARIOS = ("peers", "ranks")
# What the goals compare: the median of --repeats runs.
CACHE_TOOLS = ("traceview_fill", "traceview_warm", "traceview_cli_warm", "traceview_cli_warm_diff",
               "cli_imports")  # need the cache
REPEATED = ("orjson_count", "traceview_cold", "traceview_warm", "traceview_cli_warm", "traceview_cli_warm_diff",
            "cli_imports")
# Run in a child with the bench's env: a warm ``traceview diff`` of the trace with itself, then the names of the
# modules it loaded that are neither the standard library's nor this repository's, as JSON.
LIST_DIFF_IMPORTS = """\
import sys, json
from traceview.cli.app import run
trace, out, listed = sys.argv[1:]
if run(["diff", trace, trace, "-f", "json", "-o", out]) != 0:
    sys.exit("the warm diff failed")
local = sys.stdlib_module_names | {"traceview", "benchmarks", "__main__"}
names = sorted(n for n, m in sys.modules.items() if m is not None and n.split(".")[0] not in local)
with open(listed, "w") as f:
    json.dump(names, f)
"""
# The timed floor: those modules imported by a bare interpreter (a few cannot be imported by name: skipped),
# which then ends without the module teardown, as the CLI does (cli/app.py: main).
IMPORT_LISTED = """\
import importlib, json, os, sys
for name in json.load(open(sys.argv[1])):
    try:
        importlib.import_module(name)
    except Exception:
        pass
os._exit(0)
"""
# Run in a child process when a trace is made (not in this one, whose peak RSS a tool's ru_maxrss would inherit).
GENERATORS = {"real": ("benchmarks.realshape", "realshape"), "generated": ("benchmarks.gen_kineto", "kineto")}
DEFAULT_TIMEOUT_S = 480  # "more than ~8 minutes" is recorded as such, not waited for
LAUNCH_CATS = ("cuda_runtime", "cuda_driver")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") >> 10
# Peak RSS per byte of trace of the tools that hold the parsed file in Python objects (measured: 6.5-8.3),
# with some margin: a tool that would not fit in the memory available is skipped, not run into the OOM killer.
RSS_PER_BYTE = {"orjson": 8.5, "orjson_count": 8.5, "hta": 8.5}


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


def kernels_per_step_orjson(path: Path) -> dict[str, int]:
    """The count written by hand: ``orjson.loads`` of the whole file, one pass over the events, then a join.

    Steps are the ProfilerStep#N user_annotation windows [ts, ts + dur); a kernel's launch call is the
    cuda_runtime/cuda_driver event with its ``args.correlation``; the kernel counts in the step whose
    window holds that call's ts.
    """
    import orjson

    steps, launch_ts, kernel_corrs = [], {}, []
    for event in orjson.loads(path.read_bytes())["traceEvents"]:
        if event.get("ph") != "X":
            continue
        cat = event.get("cat")
        if cat == "kernel":
            kernel_corrs.append(event.get("args", {}).get("correlation"))
        elif cat in LAUNCH_CATS:
            corr = event.get("args", {}).get("correlation")
            if corr is not None:
                launch_ts[corr] = event["ts"]
        elif cat == "user_annotation" and event["name"].startswith("ProfilerStep#"):
            steps.append((event["ts"], event["ts"] + event["dur"], event["name"]))
    steps.sort()
    starts = [start for start, _, _ in steps]
    per_step = {name: 0 for _, _, name in steps}
    for corr in kernel_corrs:
        ts = launch_ts.get(corr)
        if ts is None:
            continue  # no launch call in the trace: outside every step
        i = bisect_right(starts, ts) - 1
        if i >= 0 and ts < steps[i][1]:
            per_step[steps[i][2]] += 1
    return per_step


def run_tool(tool: str, path: Path) -> dict:
    """Runs one tool on ``path`` in this process; returns what it found (per-step counts or event count)."""
    if tool == "orjson":
        import orjson

        return {"events": len(orjson.loads(path.read_bytes())["traceEvents"])}
    if tool == "orjson_count":
        return {"per_step": kernels_per_step_orjson(path)}
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


# ---------------------------------------------------------------- traces and their expected counts

def cache_available() -> bool:
    """Whether traceview/cache.py (cached_analyze) exists in this checkout."""
    try:
        from traceview.cache import cached_analyze  # noqa: F401
    except ImportError:
        return False
    return True


def sidecar_of(path: Path) -> dict:
    return json.loads(Path(str(path) + ".expected.json").read_text())


def ensure_trace(label: str, shape: str = "generated") -> Path:
    """benchmarks/data/<kineto|realshape>_<label>.json, generated unless an up-to-date one with its sidecar is there."""
    name, prefix = GENERATORS[shape]
    module = import_module(name)
    path = DATA / f"{prefix}_{label}.json"
    target = module.parse_size(label)
    if path.exists() and Path(str(path) + ".expected.json").exists():
        expected = sidecar_of(path)
        if (expected.get("target_bytes") == target and expected.get("bytes") == path.stat().st_size
                and expected.get("generator_version") == module.GENERATOR_VERSION):
            return path
    if shape == "real" and not module.SOURCE.exists():
        raise SystemExit(f"{path} needs its source trace, which is missing: {module.SOURCE}")
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", name, label, str(path)], cwd=REPO, check=True, stdout=sys.stderr)
    return path


def expected_counts(sidecar: dict) -> dict:
    """Either generator's sidecar as compare() needs it.

    ``kernels_per_step``: kernels per step name; ``gpu_per_step``: every GPU launch of the step (kernels,
    memcpys, memsets: what traceview's ``total`` counts); ``outside``: GPU launches outside every step
    (real shape only); ``steps`` and ``kernels``: totals.
    """
    columns = sidecar["per_step"]
    if "step" in columns:  # gen_kineto: one list per count, in step order
        kernels = dict(zip(columns["step"], columns["kernels"]))
        gpu = {s: k + m for s, k, m in zip(columns["step"], columns["kernels"], columns["memcpy"])}
        outside = None
    else:  # realshape: {step name: {"kernel": n, "memcpy": n, "memset": n}}
        kernels = {s: c["kernel"] for s, c in columns.items()}
        gpu = {s: sum(c.values()) for s, c in columns.items()}
        outside = sum(sidecar["outside_steps"].values())
    return {"kernels_per_step": kernels, "gpu_per_step": gpu, "outside": outside, "steps": len(kernels),
            "kernels": sum(kernels.values())}


def check_diff_sides(sides: dict, expected: dict) -> dict:
    """A trace diffed with itself against its sidecar: both sides' step counts and mean GPU launches
    per step (a diff reports means, not steps one by one), and every delta 0."""
    want_mean = sum(expected["gpu_per_step"].values()) / expected["steps"]
    matches = (sides["steps"] == [expected["steps"]] * 2 and sides["deltas"] == [0.0]
               and all(abs(mean - want_mean) < 1e-6 for mean in sides["total_per_step"]))
    return {**sides, "expected_steps": expected["steps"], "expected_per_step": want_mean, "matches": matches}


def compare(per_step: dict[str, int], want: dict[str, int]) -> dict:
    """Per-step counts against the expected ones: steps that differ, missing or extra."""
    differ = {s: [per_step.get(s, 0), n] for s, n in want.items() if per_step.get(s, 0) != n}
    extra = sorted(set(per_step) - set(want))
    return {"steps": len(want), "differ": len(differ), "first_differences": dict(list(differ.items())[:5]),
            "extra_steps": extra[:5], "total": sum(per_step.values()), "expected_total": sum(want.values())}


def _read_through(path: Path) -> None:
    """Reads the file once so every tool starts with it in the page cache (the first would pay the disk)."""
    with path.open("rb") as fh:
        while fh.read(16 << 20):
            pass


# ---------------------------------------------------------------- measuring one process

def _mem_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) >> 10
    return -1


def _tree_rss_kib(root: int) -> int:
    """Summed resident memory of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
        except (OSError, IndexError, ValueError):
            pass
    return total


def _reset_own_peak_rss() -> int | None:
    """Resets this process's peak RSS to its current RSS and returns that (MiB), where Linux lets it.

    A child's ru_maxrss starts at its parent's peak: exec keeps the larger of the old and the new
    address space's high-water mark, and a child starts in (vfork) or as a copy of (fork) the parent's.
    Without the reset every tool would read at least the biggest this benchmark process ever was.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) >> 10 for line in status.splitlines() if line.startswith("VmRSS:"))


def measure_command(cmd: list[str], timeout_s: float, env: dict[str, str], log: Path, tree: bool = False,
                    cpus: list[int] | None = None) -> dict:
    """One fresh process running ``cmd`` (output to ``log``); wall, CPU and peak RSS from that child (wait4).

    CPU and ``ru_maxrss`` include the children it waited for (the maximum over them, not a sum); with
    ``tree`` the whole process tree's summed RSS is also sampled every 0.25 s. ``cpus`` pins the process
    (and so its children) to those CPUs. On timeout the child's process group (it runs in a session of
    its own) is killed.
    """
    record = {"load_avg_before": round(os.getloadavg()[0], 2), "mem_available_mib_before": _mem_available_mib(),
              "bench_rss_mib": _reset_own_peak_rss()}
    timed_out, peak_tree, sampled, waited = False, 0, 0.0, (0, 0, None)
    with log.open("w") as log_fh:
        start = time.perf_counter()
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=pin)
        try:
            while not (waited := os.wait4(proc.pid, os.WNOHANG))[0]:
                now = time.perf_counter()
                if tree and now - sampled >= 0.25:
                    peak_tree, sampled = max(peak_tree, _tree_rss_kib(proc.pid)), now
                if now - start > timeout_s:
                    timed_out = True
                    break
                time.sleep(0.05)
        finally:
            if not waited[0]:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                waited = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    _, status, usage = waited
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    record.update(wall_s=round(wall, 2), cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
                  sys_s=round(usage.ru_stime, 2),
                  peak_rss_mib=usage.ru_maxrss >> 10, exit_code=proc.returncode, timed_out=timed_out,
                  load_avg_after=round(os.getloadavg()[0], 2), log=str(log.relative_to(REPO)))
    if tree:
        record["peak_tree_rss_mib"] = max(peak_tree >> 10, record["peak_rss_mib"])
    if proc.returncode != 0:
        record["error_tail"] = log.read_text(errors="replace").strip().splitlines()[-3:]
    return record


def measure(tool: str, path: Path, timeout_s: float, env: dict[str, str], log: Path) -> dict:
    """One fresh process running ``tool`` on ``path`` (this module's --worker); its record and what it found."""
    out = log.with_suffix(".json")
    out.unlink(missing_ok=True)
    if tool == "traceview_cli_warm":
        cmd = [sys.executable, "-m", "traceview", "counts", str(path), "-f", "json", "-o", str(out)]
    elif tool == "traceview_cli_warm_diff":
        cmd = [sys.executable, "-m", "traceview", "diff", str(path), str(path), "-f", "json", "-o", str(out)]
    elif tool == "cli_imports":
        listed = log.with_suffix(".modules.json")
        subprocess.run([sys.executable, "-c", LIST_DIFF_IMPORTS, str(path), str(out), str(listed)], env=env,
                       timeout=timeout_s, check=True, stdout=subprocess.DEVNULL)
        cmd = [sys.executable, "-c", IMPORT_LISTED, str(listed)]
        out.unlink()  # the listing diff's; this command writes nothing
    else:
        cmd = [sys.executable, "-m", "benchmarks.bench_peers", "--worker", tool, str(path), str(out)]
    record = {"tool": tool, **measure_command(cmd, timeout_s, env, log, tree=True)}
    if tool == "cli_imports":
        record["modules"] = len(json.loads(listed.read_text()))
    elif record["exit_code"] == 0 and out.exists():
        found = json.loads(out.read_text())
        if tool == "traceview_cli_warm":  # the CLI's JSON: every GPU launch of each step
            record["gpu_per_step"] = {step["name"]: step["total"] for step in found["steps"]}
        elif tool == "traceview_cli_warm_diff":  # a diff's JSON has each side's steps and mean per step
            record["diff_sides"] = {"steps": [found["before"]["steps"], found["after"]["steps"]],
                                    "total_per_step": [found["categories"]["total"]["before"],
                                                       found["categories"]["total"]["after"]],
                                    "deltas": sorted({c["delta"] for c in found["categories"].values()})}
        else:
            record.update(found)
    elif "error_tail" not in record:
        record["error_tail"] = log.read_text(errors="replace").strip().splitlines()[-3:]
    return record


# ---------------------------------------------------------------- the peers scenario

def _parse_size(label: str) -> int:
    return import_module("benchmarks.gen_kineto").parse_size(label)


def _skip_reason(tool: str, path: Path, label: str, hta_max: str) -> str | None:
    """Why ``tool`` is not run on this trace, if it is not."""
    if tool in CACHE_TOOLS and not cache_available():
        return "n/a (cache not available)"
    if tool == "hta" and _parse_size(label) > _parse_size(hta_max):
        return f"skipped: {label} > --hta-max {hta_max} (HTA holds 6-8× the file in RAM)"
    need_mib = int(path.stat().st_size * RSS_PER_BYTE.get(tool, 0)) >> 20
    if need_mib > (available := _mem_available_mib()) > 0:  # an OOM kill could take another process instead
        return f"skipped: needs ~{need_mib:,} MiB ({RSS_PER_BYTE[tool]}× the file), {available:,} MiB available"
    return None


def _median_run(records: list[dict]) -> dict:
    """The run with the median wall time (finished runs first), with every run's wall time beside it."""
    ranked = sorted(records, key=lambda r: (not (r["exit_code"] == 0 and not r["timed_out"]), r["wall_s"]))
    chosen = dict(ranked[(len(ranked) - 1) // 2] if all(r["exit_code"] == 0 for r in ranked) else ranked[-1])
    if len(records) > 1:
        chosen["walls"] = [r["wall_s"] for r in records]
    return chosen


def bench_size(label: str, tools: list[str], timeout_s: float, shape: str = "generated",
               hta_max: str = "1GB", repeats: int = 1) -> dict:
    """All tools on one trace; the per-step counts are replaced by their comparison with expected.json.
    The tools of REPEATED run ``repeats`` times and keep the median run (the goals compare them)."""
    path = ensure_trace(label, shape)
    sidecar = sidecar_of(path)
    expected = expected_counts(sidecar)
    _read_through(path)
    LOGS.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-cache-") as cache:
        env = {**os.environ, "TRACEVIEW_CACHE_DIR": cache}  # an empty result cache; the wasm module stays warm
        for tool in tools:
            if reason := _skip_reason(tool, path, label, hta_max):
                results.append({"tool": tool, "skipped": reason})
                continue
            runs = repeats if tool in REPEATED else 1
            logs = [LOGS / f"{path.stem}.{tool}{f'.{i}' if runs > 1 else ''}.log" for i in range(runs)]
            record = _median_run([measure(tool, path, timeout_s, env, log) for log in logs])
            if "per_step" in record:
                record["per_step_check"] = compare(record["per_step"], expected["kernels_per_step"])
            if "gpu_per_step" in record:
                record["per_step_check"] = {**compare(record.pop("gpu_per_step"), expected["gpu_per_step"]),
                                            "unit": "GPU launches"}
            if "diff_sides" in record:
                record["diff_check"] = check_diff_sides(record.pop("diff_sides"), expected)
            results.append(record)
            print(json.dumps({"shape": shape, **{k: v for k, v in record.items() if k != "per_step"}}), flush=True)
    _cross_check(results)
    for record in results:
        record.pop("per_step", None)
    return {"shape": shape, "label": label, "path": str(path.relative_to(REPO)), "bytes": path.stat().st_size,
            "copies": sidecar.get("copies"), "steps": expected["steps"], "kernels": expected["kernels"],
            "hta_max": hta_max, "timeout_s": timeout_s, "tools": results}


def _cross_check(results: list[dict]) -> None:
    """Marks each counting tool with the steps where it disagrees with traceview cold."""
    base = next((r["per_step"] for r in results if r["tool"] == "traceview_cold" and "per_step" in r), None)
    for record in results:
        if base is not None and "per_step" in record and record["tool"] != "traceview_cold":
            steps = set(base) | set(record["per_step"])
            record["differs_from_traceview_cold"] = sum(
                base.get(s, 0) != record["per_step"].get(s, 0) for s in steps)


# ---------------------------------------------------------------- the ranks scenario

def _link_ranks(path: Path, directory: Path, n: int) -> str:
    """rank0.json ... rank<n-1>.json in ``directory``: hard links of ``path``, or copies where linking fails."""
    how = "hard links"
    for rank in range(n):
        target = directory / f"rank{rank}.json"
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
            how = "copies"
    return how


def _cli_env(cache: Path, warm_up: Path, timeout_s: float) -> dict[str, str]:
    """An empty result cache whose wasm/ is the user's compiled-module cache, warmed by one CLI run.

    The CLI keeps its compiled module under $TRACEVIEW_CACHE_DIR/wasm, so an empty cache dir alone
    would make it compile the module again; only the result cache is to be empty.
    """
    from traceview.engine.formats import default_cache_dir

    modules = default_cache_dir() / "wasm"
    modules.mkdir(parents=True, exist_ok=True)
    try:
        (cache / "wasm").symlink_to(modules, target_is_directory=True)
    except OSError:
        shutil.copytree(modules, cache / "wasm")
    env = {**os.environ, "TRACEVIEW_CACHE_DIR": str(cache)}
    out = LOGS / "ranks.warm_up.out.json"
    cmd = [sys.executable, "-m", "traceview", "counts", str(warm_up), "--no-cache", "-f", "json", "-o", str(out)]
    warm = measure_command(cmd, timeout_s, env, LOGS / "ranks.warm_up.log")
    if warm["exit_code"] != 0:
        raise RuntimeError(f"the CLI warm-up failed: {warm.get('error_tail')}")
    for entry in cache.iterdir():  # whatever the warm-up left besides the modules
        if entry.name == "wasm":
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return env


def check_ranks(payload: dict, n: int, expected: dict) -> dict:
    """The CLI's JSON against the sidecar: N traces, each with every step's GPU launches and those outside steps."""
    docs = payload["ranks"] if "ranks" in payload else {Path(payload["trace"]).stem: payload}
    mismatched = {}
    for rank, doc in docs.items():
        check = compare({s["name"]: s["total"] for s in doc["steps"]}, expected["gpu_per_step"])
        if check["differ"] or check["extra_steps"] or doc["outside_steps"] != expected["outside"]:
            mismatched[rank] = {**check, "outside_steps": [doc["outside_steps"], expected["outside"]]}
    return {"traces": len(docs), "expected_traces": n, "matching": len(docs) - len(mismatched),
            "steps": expected["steps"], "gpu_per_rank": sum(expected["gpu_per_step"].values()),
            "outside_per_rank": expected["outside"], "first_mismatches": dict(list(mismatched.items())[:2])}


def bench_ranks(n: int, label: str, timeout_s: float, warm_up: Path, repeats: int = 3) -> dict:
    """`traceview counts` on one rank, then on the directory of N ranks with --jobs N, in fresh processes."""
    path = ensure_trace(label, "real")
    expected = expected_counts(sidecar_of(path))
    _read_through(path)
    LOGS.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-ranks-", dir=DATA) as ranks, \
            tempfile.TemporaryDirectory(prefix="bench-peers-cache-") as cache:
        how = _link_ranks(path, Path(ranks), n)
        env = _cli_env(Path(cache), warm_up, timeout_s)
        share = str(max(1, len(os.sched_getaffinity(0)) // n))  # the cores each rank gets in the batch
        for run, target, shown, extra, count in (
                ("one_alone", Path(ranks) / "rank0.json", "rank0.json", [], 1),
                ("one", Path(ranks) / "rank0.json", "rank0.json", ["--jobs", share], 1),
                ("all", Path(ranks), f"<dir of {n}>", ["--jobs", str(n)], n)):
            out = LOGS / f"ranks.{run}.out.json"
            out.unlink(missing_ok=True)
            cmd = [sys.executable, "-m", "traceview", "counts", str(target), *extra, "--no-cache", "-f", "json",
                   "-o", str(out)]
            cores = f"{share} core{'s' if share != '1' else ''}"
            run_label = {"one_alone": "one rank, all cores", "one": f"one rank, {cores} (its share)",
                         "all": f"all {n} ranks"}[run]
            record = {"run": run, "label": run_label,
                      "command": " ".join(["traceview counts", shown, *extra, "--no-cache -f json"]),
                      **measure_command(cmd, timeout_s, env, LOGS / f"ranks.{run}.log", tree=True)}
            if record["exit_code"] == 0 and out.exists():
                record["check"] = check_ranks(json.loads(out.read_text()), count, expected)
            runs.append(record)
            print(json.dumps(record), flush=True)
        pinned = bench_ranks_pinned(n, Path(ranks), path, env, expected, timeout_s, repeats)
    return {"ranks": n, "label": label, "path": str(path.relative_to(REPO)), "bytes": path.stat().st_size,
            "links": how, "steps": expected["steps"], "nproc": os.cpu_count(), "timeout_s": timeout_s, "runs": runs,
            "pinned": pinned}


def one_cpu_per_core(n: int) -> list[int] | None:
    """``n`` CPUs of this process's affinity on ``n`` different cores (SMT siblings skipped), or None."""
    cores, chosen = set(), []
    for cpu in sorted(os.sched_getaffinity(0)):
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        core = siblings.read_text().strip() if siblings.exists() else str(cpu)
        if core not in cores:
            cores.add(core)
            chosen.append(cpu)
    return chosen[:n] if len(chosen) >= n else None


def bench_ranks_pinned(n: int, ranks: Path, source: Path, env: dict[str, str], expected: dict, timeout_s: float,
                       repeats: int) -> dict | None:
    """The goal as worded: N ranks on N cores against one rank on one core, each run ``repeats`` times
    (the median counts), beside the same pair for the orjson + Python count, which shows how this
    machine itself scales N side-by-side Python processes that parse JSON, and for a pure-Python loop
    that shares nothing but the cores."""
    cpus = one_cpu_per_core(n)
    if cpus is None:
        return None
    one, every, sidecar = ranks / "rank0.json", sorted(ranks.glob("rank*.json")), str(source) + ".expected.json"
    parallel = [sys.executable, "-m", "benchmarks.bench_peers", "--parallel", "orjson_count", sidecar]
    runs = {
        "traceview_one": ([sys.executable, "-m", "traceview", "counts", str(one), "--jobs", "1", "--no-cache", "-f",
                           "json", "-o", str(LOGS / "pinned.traceview_one.out.json")], cpus[:1], 1),
        "traceview_all": ([sys.executable, "-m", "traceview", "counts", str(ranks), "--jobs", str(n), "--no-cache",
                           "-f", "json", "-o", str(LOGS / "pinned.traceview_all.out.json")], cpus, n),
        "orjson_one": ([*parallel, str(one)], cpus[:1], 1),
        "orjson_all": ([*parallel, *map(str, every)], cpus, n),
        "spin_one": ([sys.executable, "-m", "benchmarks.bench_peers", "--spin", "1"], cpus[:1], 1),
        "spin_all": ([sys.executable, "-m", "benchmarks.bench_peers", "--spin", str(n)], cpus, n),
    }
    out: dict = {"cpus": cpus, "repeats": repeats, "runs": {}}
    for name, (cmd, pin, count) in runs.items():
        records = []
        for attempt in range(repeats):
            record = measure_command(cmd, timeout_s, env, LOGS / f"pinned.{name}.{attempt}.log", cpus=pin)
            if record["exit_code"] == 0 and name.startswith("traceview"):
                record["check"] = check_ranks(json.loads(Path(cmd[cmd.index("-o") + 1]).read_text()), count,
                                              expected)
            records.append(record)
            print(json.dumps({"pinned": name, **record}), flush=True)
        out["runs"][name] = records
    return out


SPIN_STEPS = 60_000_000  # ~4 s of one core on the 16-core host


def _spin_once() -> int:
    total = 0
    for i in range(SPIN_STEPS):  # integers and the interpreter only: no memory traffic to share
        total = (total + i * i) & 0xFFFF
    return total


def _spin(n: int) -> int:
    """The same pure-Python arithmetic in ``n`` processes at once: how this machine's cores scale when
    nothing but the cores is shared (frequency, SMT, neighbours). The floor under any N-rank ratio."""
    procs = [subprocess.Popen([sys.executable, "-c", "from benchmarks.bench_peers import _spin_once; _spin_once()"],
                              cwd=REPO) for _ in range(n)]
    return 1 if any(proc.wait() != 0 for proc in procs) else 0


def _parallel(tool: str, sidecar: Path, paths: list[Path]) -> int:
    """``tool`` on each path in its own process, all at once; 0 when every one found the per-step kernels
    of ``sidecar`` (the paths are links of one trace)."""
    want = expected_counts(json.loads(sidecar.read_text()))["kernels_per_step"]
    procs = []
    for i, path in enumerate(paths):
        out = LOGS / f"parallel.{i}.json"
        out.unlink(missing_ok=True)
        procs.append((path, out, subprocess.Popen([sys.executable, "-m", "benchmarks.bench_peers", "--worker", tool,
                                                   str(path), str(out)])))
    failed = 0
    for path, out, proc in procs:
        if proc.wait() != 0 or compare(json.loads(out.read_text())["per_step"], want)["differ"]:
            failed += 1
    return 1 if failed else 0


# ---------------------------------------------------------------- main

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
    # BENCH_COMMIT: where the tree was copied without its history (a lent machine).
    commit = os.environ.get("BENCH_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()
    # Whether traceview's sources, and pandas' (which every traceview and HTA process imports), were
    # byte-compiled ahead, as `pip install` leaves a package; if not (and PYTHONDONTWRITEBYTECODE is set),
    # every run compiles them again: ~0.45 s of each warm re-count on the 16-core host.
    compiled = Path(cache_from_source(str(REPO / "traceview" / "cli" / "app.py"))).exists()
    pandas_spec = find_spec("pandas")  # a top-level spec: found without importing pandas here
    deps_compiled = bool(pandas_spec and pandas_spec.origin and Path(cache_from_source(
        str(Path(pandas_spec.origin).parent / "core" / "frame.py"))).exists())
    return {"nproc": os.cpu_count(), "ram_gib": round(mem_kib / (1 << 20), 1), "cpu": cpu, "byte_compiled": compiled,
            "deps_byte_compiled": deps_compiled,
            "python": platform.python_version(), "os": platform.platform(), "versions": versions,
            "commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _merge(old: dict | None, new_entry: dict) -> list[dict]:
    """(shape, size) entries from earlier runs are kept unless this run measured them again."""
    key = (new_entry.get("shape", "generated"), new_entry["label"])
    kept = [e for e in (old or {}).get("sizes", []) if (e.get("shape", "generated"), e["label"]) != key]
    order = {label: i for i, label in enumerate(SIZES)}
    return sorted(kept + [new_entry], key=lambda e: (SHAPES.index(e.get("shape", "generated")),
                                                     order.get(e["label"], len(order)), e["bytes"]))


def _save(results: dict | None, timeout_s: float, entry: dict | None = None, ranks: dict | None = None) -> dict:
    """The results with this entry (or ranks run) in, written to RESULTS_JSON; the rest of the old ones kept."""
    now = machine()
    stamp = {"date": now["date"], "commit": now["commit"]}  # the code the traceview rows ran: HEAD now
    new = {"machine": now, "timeout_s": timeout_s,
           "sizes": _merge(results, {**entry, **stamp}) if entry else (results or {}).get("sizes", []),
           "ranks": {**ranks, **stamp} if ranks else (results or {}).get("ranks")}
    RESULTS_JSON.write_text(json.dumps(new, indent=1))
    return new


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES,
                        help="trace shapes for the peers scenario (default: %(default)s)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="trace sizes (default: %(default)s)")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--hta-max", default="1GB", help="skip HTA on traces above this size (default: %(default)s)")
    parser.add_argument("--ranks", type=int, default=8, help="ranks in the ranks scenario (default: %(default)s)")
    parser.add_argument("--rank-size", default="500MB", help="each rank's real-shaped trace (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per run before it is killed")
    parser.add_argument("--render-only", action="store_true", help="rewrite RESULTS.md from the last JSON")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of orjson + Python count, traceview cold and each pinned ranks command; "
                             "the median counts (default: %(default)s)")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "TRACE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--parallel", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--spin", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for size in (*args.sizes, args.hta_max, args.rank_size):
        try:
            _parse_size(size)
        except ValueError as err:
            parser.error(str(err))
    if args.ranks < 1 or args.repeats < 1:
        parser.error("--ranks and --repeats must be at least 1")
    return args


def run(args: argparse.Namespace, results: dict | None) -> dict | None:
    """Measures what the arguments ask for, saving the results after each trace."""
    DATA.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    warm_up = ensure_trace("2MB")  # compiles and caches the wasm module, so "cold" means no result cache only
    measure("traceview_cold", warm_up, args.timeout, dict(os.environ), DATA / "peers_warm_up.log")
    if "peers" in args.scenarios:
        for shape in args.shapes:
            for label in args.sizes:
                entry = bench_size(label, args.tools, args.timeout, shape, args.hta_max, args.repeats)
                results = _save(results, args.timeout, entry=entry)
    if "ranks" in args.scenarios:
        results = _save(results, args.timeout,
                        ranks=bench_ranks(args.ranks, args.rank_size, args.timeout, warm_up, args.repeats))
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.worker:
        return _worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
    if args.spin:
        return _spin(args.spin)
    if args.parallel:
        return _parallel(args.parallel[0], Path(args.parallel[1]), [Path(p) for p in args.parallel[2:]])
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else None
    if not args.render_only:
        results = run(args, results)
    if results is None:
        print(f"{RESULTS_JSON}: no results yet", file=sys.stderr)
        return 2
    text = render(results)
    if args.no_write:
        print(text)
    else:
        write_section(text, RESULTS_MD)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
