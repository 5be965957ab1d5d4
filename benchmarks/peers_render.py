"""The "## Peers" section of RESULTS.md, rendered from ``benchmarks/data/peers_results.json``.

``benchmarks/bench_peers.py`` measures and calls ``render`` / ``write_section``;
nothing here runs a tool. An entry of ``results["sizes"]`` is one trace (shape,
size label) with one record per tool; ``results["ranks"]`` is the ranks scenario.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_MD = HERE / "RESULTS.md"
SECTION = "## Peers"
SHAPES = ("real", "generated")  # the order of the tables
GOAL_SMALL, GOAL_SIZE, GOAL_BIG = "100MB", "1GB", "2.5GB"

TOOL_LABELS = {"orjson": "orjson.loads (floor)", "orjson_count": "orjson + Python count",
               "traceview_cold": "traceview cold", "traceview_fill": "traceview, cache fill",
               "traceview_warm": "traceview warm (cache hit)",
               "traceview_cli_warm": "`traceview counts` warm (cache hit)",
               "traceview_cli_warm_diff": "`traceview diff` of the trace with itself, warm (cache hit)",
               "cli_imports": "the re-diff's third-party imports alone (floor)",
               "hta": "HolisticTraceAnalysis"}
NOTES = """\
How to read it: every row is one fresh `python` process, run one after another on an otherwise shared machine
(the load average column says how busy it was; CPU time is the less disturbed number). *wall* includes interpreter
start-up and imports; *CPU* is that process's user + sys time, with the children it waited for (traceview decodes
big files in worker processes); the × columns divide by traceview cold on the same trace. Memory, two ways: *peak
RSS, largest process* is `ru_maxrss` from `os.wait4`, the maximum over the process and its waited-for children,
not their sum; *peak RSS, summed* adds up the resident memory of the whole process tree (from /proc, sampled every
0.25 s, so a shorter peak can be missed; shared pages count once per process; never below the first), and the
RSS / file column divides that one by the file size. A child's `ru_maxrss` never reads below its parent's RSS
when it was started (Linux carries the parent's high-water mark across exec), so the benchmark makes its traces
in child processes and resets its own high-water mark before each run; a cell that reads no more than the
benchmark's RSS then (about 50-105 MiB) is shown as a bound, `≤ N`. Tables measured before commit 0df348d lack
that reset: their small rows read the benchmark's own peak (297-368 MiB where it had made a trace in-process).
The trace file was read once before the first row, so every tool starts with it in the page cache.

- **Trace shapes.** *real-shaped* (`benchmarks/realshape.py`): the events of HolisticTraceAnalysis's public A100
  trace (`hta-a100-cudagraph-steps/rank0.json.gz`: 5 ProfilerSteps of 1,075 kernels and 300 memcpys/memsets,
  CUDA-graph launches, improperly nested calls, 705 kernels without a launch call outside the steps), written N
  times byte for byte, each copy shifted in time, ids and step numbers; its `<trace>.expected.json` comes from a
  plain Python join on correlation ids over the source trace, times the copies. *generated*
  (`benchmarks/gen_kineto.py`): a synthetic LLM decode loop (32 decoder layers a step, ~1 MB a step, `record_shapes`
  args, Triton and CUDA-graph launches), with the counts the generator wrote as its `<trace>.expected.json`.
- **orjson.loads**: `orjson.loads(path.read_bytes())`, no analysis: the floor for any reader that builds Python
  objects (its RSS holds the file's bytes and the parsed events together).
- **orjson + Python count**: the same per-step kernel counts written by hand: `orjson.loads` of the whole file,
  one pass over the events collecting the ProfilerStep#N user_annotation windows [ts, ts + dur), each
  cuda_runtime/cuda_driver call's ts by `args.correlation`, and each kernel's correlation id; then each kernel goes
  to the step whose window holds its launch call's ts (a bisect over the sorted windows).
- **traceview cold**: `traceview.model.counts.analyze(path)`: load into the wasm trace processor, find steps,
  attribute and categorize every GPU event. The compiled wasm module was cached by a warm-up run; no result cache.
- **traceview, cache fill / warm**: `traceview.cache.cached_analyze(path)` twice against an empty
  `TRACEVIEW_CACHE_DIR`: the fill computes, hashes the file and writes the entry; *warm* is the next process,
  which finds the file's SHA-256 remembered under the file's identity (inode, size, mtime, ctime; the fill hashed
  every byte) and reads the entry back. Both run in this benchmark's worker process, which ends the ordinary way.
  *`traceview counts` warm* is the command a user reruns, `traceview counts TRACE -f json -o OUT`, on the cache the
  fill left; it ends without the interpreter's module teardown (`cli/app.py: main`), and its JSON is checked step
  by step against the sidecar (every GPU launch of the step). *`traceview diff` of the trace with itself, warm* is
  `traceview diff TRACE TRACE -f json -o OUT` on the same cache: two cached results read, both sides summarized,
  the latency intervals bootstrapped; its JSON must give both sides the sidecar's steps and GPU launches per step,
  every delta 0. The warm goal reads these two rows where they were measured. *The re-diff's third-party imports
  alone* is the floor under both: one more (untimed) warm diff lists every module it loaded that is neither the
  standard library's nor traceview's (pandas, numpy, pyarrow, typer and its pydantic, rich, ...), then a bare
  `python -c` imports just those, by name, and exits without the module teardown, as the CLI does: what any
  command built on these libraries pays before its own work.
- **HolisticTraceAnalysis**: `TraceAnalysis(trace_dir=<a directory holding only this trace>,
  include_last_profiler_step=True)` (HTA's default drops the last step), with HTA's default parser backend
  (`json.loads` of the whole file), then kernels (`cat == "kernel"`) grouped by the `iteration` column HTA assigns
  while loading: a GPU event gets the ProfilerStep that holds the start of the CPU call sharing its correlation id.
  Where HTA's time goes (cProfile of the 100 MB generated load): about half is that `iteration` column, because
  `hta/common/trace.py: add_iteration` finds each CPU event's step with a Python loop over every step
  (`df["ts"].apply(_get_profiler_step)`), so it grows with events × steps: 10× the trace is ~100× that stage.
  It is skipped above `--hta-max` (it holds 6-8× the file in RAM).
- **per-step kernels**: for each ProfilerStep, the GPU kernels (memcpys and memsets excluded) whose launching
  runtime/driver call starts inside it, compared step by step with the trace's `<trace>.expected.json`
  and between the tools. Runs longer than the limit are killed and shown as `> limit`.
- **ranks**: N hard links `rank0.json` ... of one real-shaped trace in a temporary directory (so the N reads share
  one copy in the page cache; copies where linking fails, as the title says), counted by the CLI in fresh
  processes: one rank with all the cores, one rank with the cores it gets in the batch (`--jobs C/N` on C
  CPUs: its decoding processes and trace processors), then the directory with `--jobs N`. Then the goal as
  worded, pinned with CPU affinity to one CPU per core (SMT siblings skipped): one rank on one core with
  `--jobs 1` against the directory on N cores with `--jobs N` (one core each), each run repeated and the medians
  compared; beside it the same pair for the orjson + Python count (one process, then N processes at once, one
  rank each), which shows how far the machine itself lets N side-by-side Python processes that parse JSON
  scale, and for a pure-Python loop of fixed work (`--spin`: integer arithmetic, no memory traffic), which
  shares nothing but the cores and so is the floor under any N-rank ratio there. All with `--no-cache` and an empty
  `TRACEVIEW_CACHE_DIR` whose `wasm/` is the compiled-module cache (warmed by one CLI run first); the memory
  columns as above. The check compares every rank's JSON, step by step, with the sidecar: all GPU launches of the
  step (`total`: kernels, memcpys, memsets) and those outside any step."""


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}×" if value is not None and base else "–"


def _done(record: dict | None) -> bool:
    return bool(record) and record.get("exit_code") == 0 and not record.get("timed_out")


# HTA logs the end of its own stages: json.loads, the events -> DataFrame build, then the whole parse
# (which adds fwd/bwd links, correlation indices and step numbers to the frame).
HTA_STAGES = (("json.loads done at", re.compile(r"^Parsed \S+ time = ([\d.]+) seconds")),
              ("DataFrame at", re.compile(r"^Parsed \S+ backend=\S+ in ([\d.]+) seconds")),
              ("links/correlation/steps at", re.compile(r"^Overall parsing of \S+ in ([\d.]+) seconds")))


def hta_stages(log: Path) -> str:
    """'json.loads done at 14 s, DataFrame at 28 s, ...': when HTA logged each stage's end (seconds since load
    start)."""
    if not log.exists():
        return ""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        for name, pattern in HTA_STAGES:
            if match := pattern.match(line):
                found.append(f"{name} {float(match.group(1)):.0f} s")
    return ", ".join(found)


def check_matches(check: dict | None) -> bool:
    return check is not None and check["differ"] == 0 and not check["extra_steps"]


def _check_text(check: dict, unit: str | None = None) -> str:
    unit = unit or check.get("unit", "kernels")  # a check of the CLI's JSON counts every GPU launch
    if check_matches(check):
        return f"= expected in all {check['steps']} steps ({check['total']:,} {unit})"
    first = ", ".join(f"{s}: {got} vs {want}" for s, (got, want) in check["first_differences"].items())
    return (f"**differs from expected in {check['differ']} of {check['steps']} steps** "
            f"({check['total']:,} vs {check['expected_total']:,} {unit}; {first}"
            f"{'; extra steps ' + ', '.join(check['extra_steps']) if check['extra_steps'] else ''})")


def _diff_check_text(check: dict) -> str:
    if check["matches"]:
        return (f"both sides = expected: {check['expected_steps']} steps, {check['expected_per_step']:,.0f} GPU "
                "launches per step, every delta 0")
    return (f"**differs from expected**: steps {check['steps']} vs {check['expected_steps']}, per step "
            f"{check['total_per_step']} vs {check['expected_per_step']:,.0f}, deltas {check['deltas']}")


def _check_cell(record: dict) -> str:
    if "events" in record:
        return f"n/a (parse only; {record['events']:,} events)"
    if "diff_check" in record:
        return _diff_check_text(record["diff_check"])
    if "modules" in record:
        return f"n/a (imports only: the {record['modules']:,} non-stdlib modules the warm re-diff loaded)"
    stages = hta_stages(REPO / record["log"]) if record["tool"] == "hta" else ""
    stages = f" (HTA's log: {stages})" if stages else ""
    check = record.get("per_step_check")
    if check is None:
        return ("not finished" + stages) if record.get("timed_out") else "–"
    text = _check_text(check)
    if "differs_from_traceview_cold" in record:
        n = record["differs_from_traceview_cold"]
        text += "; = traceview cold" if n == 0 else f"; **differs from traceview cold in {n} steps**"
    return text + stages


def tree_rss_mib(record: dict) -> int:
    """Peak summed RSS of the process tree; records from before it was sampled have ru_maxrss only."""
    return record.get("peak_tree_rss_mib", record["peak_rss_mib"])


def _rss_bound(record: dict, mib: int) -> str:
    """"≤ " where an RSS reads no more than the benchmark's own RSS when it started the run: a child's
    ru_maxrss starts there (bench_peers: _reset_own_peak_rss), so only that bound is known."""
    bench = record.get("bench_rss_mib")
    return "≤ " if bench is not None and mib <= bench else ""


def _row(record: dict, base: dict, size: int, timeout_s: float) -> str:
    label = TOOL_LABELS.get(record["tool"], record["tool"])
    if "skipped" in record:
        return f"| {label} | {record['skipped']} | | | | | | | | |"
    done = _done(record)
    if not done and not record["timed_out"]:
        failed = f"failed (exit {record['exit_code']})"
        return f"| {label} | {failed} | | | | | | | | {'; '.join(record.get('error_tail', []))[-200:]} |"
    # A killed run's numbers are what it had used when killed: lower bounds.
    at_least = "" if done else "≥ "
    tree = tree_rss_mib(record)
    wall = f"{record['wall_s']:.1f}" if done else f"> {timeout_s:.0f} (killed)"
    if record.get("walls"):
        wall += f" (median of {_walls(record, 1)})"
    tree_at_most = at_least + _rss_bound(record, tree)
    cells = [label, wall,
             at_least.replace("≥", ">") + _ratio(record["wall_s"], base.get("wall_s")),
             at_least + f"{record['cpu_s']:.1f}", at_least + _ratio(record["cpu_s"], base.get("cpu_s")),
             at_least + _rss_bound(record, record["peak_rss_mib"]) + f"{record['peak_rss_mib']:,}",
             tree_at_most + f"{tree:,}", tree_at_most + f"{(tree << 20) / size:.2f}",
             f"{record['load_avg_before']}→{record['load_avg_after']}", _check_cell(record)]
    return "| " + " | ".join(cells) + " |"


def _all_records(results: dict) -> list[dict]:
    records = [r for e in results.get("sizes", []) for r in e["tools"]]
    return records + list((results.get("ranks") or {}).get("runs", []))


def _load_line(results: dict) -> str:
    loads = [r[k] for r in _all_records(results) for k in ("load_avg_before", "load_avg_after") if k in r]
    if not loads:
        return ""
    span = f"1-minute load average {min(loads)}–{max(loads)} on {results['machine']['nproc']} CPUs during these runs"
    if max(loads) < 1.5:  # the benchmark's own process is 1
        return (f"The machine was otherwise idle ({span}). traceview's CPU time runs above its wall time: a reader "
                "thread prepares the next chunk while the trace processor parses this one.")
    return f"The machine was shared with other jobs ({span}), so wall times run above CPU times."


def _header(results: dict) -> list[str]:
    m, v = results["machine"], results["machine"]["versions"]
    intro = ("traceview next to HolisticTraceAnalysis, a hand-written orjson + Python count and a bare "
             "`orjson.loads`, on real-shaped traces (copies of a real A100 trace, `benchmarks/realshape.py`) and "
             "generated ones (`benchmarks/gen_kineto.py`), plus N ranks counted at once "
             "(`python -m benchmarks.bench_peers`; raw numbers in `benchmarks/data/peers_results.json`, logs in "
             "`benchmarks/data/peers_logs/`).")
    where = (f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}; "
             f"traceview {v['traceview']} (each table names the commit it ran on), "
             f"HolisticTraceAnalysis {v['holistictraceanalysis']}, orjson {v['orjson']}, pandas {v['pandas']}, "
             f"numpy {v['numpy']}, wasmtime {v['wasmtime']}. Time limit per run: {results['timeout_s']:.0f} s "
             f"(the last run's; a table's own limit shows in its killed rows). {_load_line(results)}")
    compiled = [name for name, key in (("traceview's sources", "byte_compiled"),
                                       ("its dependencies' (pandas, numpy, pyarrow, ...)", "deps_byte_compiled"))
                if m.get(key)]
    if compiled:
        where += (f" {' and '.join(compiled)} were byte-compiled before the runs (`python -m compileall`), as "
                  "`pip install` leaves an installed package.")
    return [SECTION, "", intro, "", where, ""]


def shape_of(entry: dict) -> str:
    return entry.get("shape", "generated")  # entries written before there were shapes were generated traces


def _title(entry: dict) -> str:
    if shape_of(entry) == "real":
        what = f"real-shaped (HTA A100 trace ×{entry.get('copies', '?')} copies), {entry['label']}"
    else:
        what = f"generated (`gen_kineto.py`), {entry['label']}"
    return (f"### {what}: {entry['bytes']:,} bytes, {entry['steps']} steps, {entry['kernels']:,} kernels in steps; "
            f"measured {entry['date']} on commit {entry.get('commit', '?')}")


def _table(entry: dict, timeout_s: float) -> list[str]:
    base = next((r for r in entry["tools"] if r["tool"] == "traceview_cold" and _done(r)), {})
    head = ("| tool | wall s | × tv cold | CPU s | × tv cold (CPU) | peak RSS MiB, largest process "
            "| peak RSS MiB, summed | summed RSS / file size | load avg | per-step kernels |")
    timeout_s = entry.get("timeout_s", timeout_s)
    rows = [_row(r, base, entry["bytes"], timeout_s) for r in entry["tools"]]
    return [_title(entry), "", head, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|", *rows, ""]


def _ranks_check_cell(run: dict) -> str:
    check = run.get("check")
    if check is None:
        return "–"
    text = (f"{check['traces']} trace(s) in the JSON (expected {check['expected_traces']}); "
            f"{check['matching']} of {check['traces']} ranks = expected in all {check['steps']} steps "
            f"({check['gpu_per_rank']:,} GPU launches in steps, {check['outside_per_rank']:,} outside, per rank)")
    for rank, bad in check["first_mismatches"].items():
        text += f"; **{rank}: {_check_text(bad, 'GPU launches')}, outside {bad['outside_steps'][0]:,} vs " \
                f"{bad['outside_steps'][1]:,}**"
    return text if check["traces"] == check["expected_traces"] else f"**{text}**"


def ranks_ratio(entry: dict | None, key: str = "wall_s") -> float | None:
    """All ranks at once over one rank counted with the cores it gets among them (N ranks on C cores:
    C/N each), when both finished: how far counting N traces side by side is from N times one."""
    runs = {r["run"]: r for r in (entry or {}).get("runs", [])}
    one, every = runs.get("one"), runs.get("all")
    return every[key] / one[key] if _done(one) and _done(every) and one[key] else None


def _ranks_table(entry: dict) -> list[str]:
    title = (f"### ranks: {entry['ranks']} {entry['links']} of the real-shaped {entry['label']} trace "
             f"({entry['bytes']:,} bytes, {entry['steps']} steps each), measured {entry['date']} on commit "
             f"{entry.get('commit', '?')}")
    head = ("| run | command | wall s | CPU s | peak RSS MiB, largest process | peak RSS MiB, summed "
            "| load avg | check |")
    rows = []
    for run in entry["runs"]:
        if _done(run):
            numbers = [f"{run['wall_s']:.1f}", f"{run['cpu_s']:.1f}", f"{run['peak_rss_mib']:,}",
                       f"{run['peak_tree_rss_mib']:,}"]
        else:
            state = (f"> {entry['timeout_s']:.0f} (killed)" if run["timed_out"]
                     else f"failed (exit {run['exit_code']})")
            numbers = [state, "", "", ""]
        rows.append(f"| {run['label']} | `{run['command']}` | " + " | ".join(numbers) +
                    f" | {run['load_avg_before']}→{run['load_avg_after']} | {_ranks_check_cell(run)} |")
    wall, cpu = ranks_ratio(entry), ranks_ratio(entry, "cpu_s")
    ratio = (f"All {entry['ranks']} ranks over one rank with its share of the cores: {wall:.2f}× the wall time, "
             f"{cpu:.2f}× the CPU time ({entry['ranks']} ranks on {entry['nproc']} CPUs)." if wall is not None else
             "All ranks over one rank: not available (a run did not finish).")
    return [title, "", head, "|---|---|---:|---:|---:|---:|---|---|", *rows, "", ratio, "", *_pinned_table(entry)]


PINNED_LABELS = {"traceview_one": ("traceview, one rank on one core", "traceview counts rank0.json --jobs 1"),
                 "traceview_all": ("traceview, {n} ranks on {n} cores", "traceview counts <dir of {n}> --jobs {n}"),
                 "orjson_one": ("orjson + Python count, one rank on one core", "1 process"),
                 "orjson_all": ("orjson + Python count, {n} ranks on {n} cores", "{n} processes at once"),
                 "spin_one": ("pure-Python loop (no trace), one on one core", "1 process"),
                 "spin_all": ("pure-Python loop (no trace), {n} on {n} cores", "{n} processes at once")}


def _pinned_table(entry: dict) -> list[str]:
    pinned = entry.get("pinned")
    if not pinned:
        return []
    n = entry["ranks"]
    rows = []
    for name, records in pinned["runs"].items():
        label, command = (text.format(n=n) for text in PINNED_LABELS[name])
        walls = " / ".join(f"{r['wall_s']:.1f}" if _done(r) else "failed" for r in records)
        cpu = " / ".join(f"{r['cpu_s']:.1f}" for r in records)
        sys_s = " / ".join(f"{r.get('sys_s', 0):.1f}" for r in records)
        checks = [r.get("check") for r in records]
        check = ("–" if not name.startswith("traceview") else
                 _ranks_check_cell(records[-1]) if all(checks) else "**a run has no JSON**")
        if name.startswith("orjson"):
            check = "per-step kernels = expected in every process" if all(_done(r) for r in records) else \
                "**a process failed or differs from expected**"
        if name.startswith("spin"):
            check = "the same fixed work in each process" if all(_done(r) for r in records) else "**a run failed**"
        rows.append(f"| {label} | `{command}` | {walls} | {cpu} | {sys_s} | "
                    f"{records[0]['load_avg_before']}→{records[-1]['load_avg_after']} | {check} |")
    walls = pinned_medians(entry)
    lines = [f"Pinned as the goal is worded (CPU affinity: one CPU per core, CPUs {pinned['cpus']}), each run "
             f"{pinned['repeats']} times one after another:", "",
             "| run | command | wall s | CPU s | of which system s | load avg | check |",
             "|---|---|---|---|---|---|---|", *rows, ""]
    for tool, name in (("traceview", "traceview"), ("orjson", "orjson + Python count"),
                       ("spin", "pure-Python loop")):
        if f"{tool}_one" in walls and f"{tool}_all" in walls:
            lines.append(f"- {name}: {n} ranks on {n} cores over one rank on one core, median wall: "
                         f"{walls[f'{tool}_all'] / walls[f'{tool}_one']:.2f}×.")
    return [*lines, ""]


# ---------------------------------------------------------------- goals (real shape)

def _record(results: dict, label: str, tool: str, shape: str = "real") -> dict | None:
    """The record of ``tool`` on the (shape, label) trace, finished or not; None when not measured."""
    entry = next((e for e in results.get("sizes", []) if shape_of(e) == shape and e["label"] == label), None)
    return next((r for r in entry["tools"] if r["tool"] == tool), None) if entry else None


def _entry_bytes(results: dict, label: str, shape: str = "real") -> int | None:
    return next((e["bytes"] for e in results.get("sizes", []) if shape_of(e) == shape and e["label"] == label), None)


def _verdict(met: bool | None) -> str:
    return "–" if met is None else ("yes" if met else "**no**")


def _goal_scaling(results: dict) -> tuple[str, bool | None]:
    small, big = _record(results, GOAL_SMALL, "traceview_cold"), _record(results, GOAL_SIZE, "traceview_cold")
    if not (_done(small) and _done(big)):
        return "not measured", None
    ratio = big["wall_s"] / small["wall_s"]
    sizes = _entry_bytes(results, GOAL_SIZE) / _entry_bytes(results, GOAL_SMALL)
    inner = big["in_process_s"] / small["in_process_s"]
    return (f"{ratio:.1f} ({big['wall_s']:.1f} s / {small['wall_s']:.1f} s wall; in-process {inner:.1f}; "
            f"the files differ {sizes:.2f}×)", ratio <= 11)


def _speedup(results: dict, peer: str) -> tuple[float | None, str]:
    """How many times traceview cold's wall time ``peer`` took at GOAL_SIZE, and what to say when unknown."""
    tv, other = _record(results, GOAL_SIZE, "traceview_cold"), _record(results, GOAL_SIZE, peer)
    if not _done(tv) or other is None:
        return None, "not measured"
    if "skipped" in other:
        return None, f"not measured ({other['skipped']})"
    if other.get("timed_out"):
        return other["wall_s"] / tv["wall_s"], "≥"  # killed: a lower bound
    if other.get("exit_code") != 0:
        return None, f"{TOOL_LABELS[peer]} failed (exit {other['exit_code']})"
    return other["wall_s"] / tv["wall_s"], ""


def _goal_vs(results: dict, peer: str, goal: float, strict: bool = False,
             aim: float | None = None) -> tuple[str, bool | None]:
    """traceview cold at least ``goal`` times as fast as ``peer`` (more than, when ``strict``)."""
    speedup, note = _speedup(results, peer)
    if speedup is None:
        return note, None
    if speedup >= 1:
        text = f"{note}{speedup:.2f}× faster"
    else:
        text = f"{note.replace('≥', '≤')}{1 / speedup:.2f}× slower"
    if aim is not None and speedup > goal:
        text += f" (aim {aim}× {'met' if speedup >= aim else 'not met'})"
    met = speedup > goal if strict else speedup >= goal
    if note == "≥" and not met:
        return text + f" ({TOOL_LABELS[peer]} was killed: a lower bound)", None
    return text, met


def _goal_rss(results: dict) -> tuple[str, bool | None]:
    tv = _record(results, GOAL_SIZE, "traceview_cold")
    if not _done(tv):
        return "not measured", None
    ratio = (tree_rss_mib(tv) << 20) / _entry_bytes(results, GOAL_SIZE)
    return (f"{ratio:.2f} ({tree_rss_mib(tv):,} MiB summed over its processes; largest process "
            f"{tv['peak_rss_mib']:,} MiB)", ratio <= 1.5)


def _walls(record: dict, decimals: int = 2) -> str:
    """Every run's wall time, ``1.07 / 1.08 / 1.03``."""
    return " / ".join(f"{w:.{decimals}f}" for w in record["walls"])


def _median_of(record: dict) -> str:
    return f", median of {_walls(record)}" if record.get("walls") else ""


def _goal_warm(results: dict) -> tuple[str, bool | None]:
    # The commands a user reruns, where measured; before they were, the cached count in the worker process.
    warm = _record(results, GOAL_SIZE, "traceview_cli_warm") or _record(results, GOAL_SIZE, "traceview_warm")
    if not _done(warm):
        return "not measured", None
    how = (f"`traceview counts`; {_check_text(warm['per_step_check'])}"
           if warm["tool"] == "traceview_cli_warm" else f"{warm['in_process_s']:.2f} s in-process")
    text = f"{warm['wall_s']:.2f} s wall{_median_of(warm)} ({how})"
    met = warm["wall_s"] < 1 and check_matches(warm["per_step_check"])
    rediff = _record(results, GOAL_SIZE, "traceview_cli_warm_diff")
    if not _done(rediff):
        return text + "; re-diff not measured", None if met else False
    text += (f"; re-diff {rediff['wall_s']:.2f} s wall{_median_of(rediff)} "
             f"(`traceview diff`; {_diff_check_text(rediff['diff_check'])})")
    floor = _record(results, GOAL_SIZE, "cli_imports")
    if _done(floor):
        text += (f"; a bare interpreter importing the re-diff's {floor['modules']:,} third-party modules (pandas, "
                 f"pyarrow, typer, pydantic, rich, ...) takes {floor['wall_s']:.2f} s{_median_of(floor)} of that")
    return text, met and rediff["wall_s"] < 1 and rediff["diff_check"]["matches"]


def _goal_big(results: dict) -> tuple[str, bool | None]:
    tv = _record(results, GOAL_BIG, "traceview_cold")
    if tv is None:
        return "not measured", None
    if not _done(tv):
        return ("killed at the time limit" if tv.get("timed_out") else f"failed (exit {tv['exit_code']})"), False
    check = tv.get("per_step_check")
    text = (f"exit 0 in {tv['wall_s']:.0f} s, peak RSS {tree_rss_mib(tv):,} MiB summed; per-step kernels "
            f"{_check_text(check) if check else 'not checked'}")
    return text, check_matches(check)


def pinned_medians(entry: dict | None) -> dict[str, float]:
    """Median wall time of each pinned run that finished every repeat (run name -> seconds)."""
    runs = ((entry or {}).get("pinned") or {}).get("runs", {})
    return {name: statistics.median(r["wall_s"] for r in records)
            for name, records in runs.items() if records and all(_done(r) for r in records)}


def pinned_checks_ok(entry: dict) -> bool:
    """Every pinned traceview run's JSON held every rank, each = expected in every step."""
    return all(r.get("check") and r["check"]["matching"] == r["check"]["expected_traces"] == r["check"]["traces"]
               for name, records in entry["pinned"]["runs"].items() if name.startswith("traceview")
               for r in records)


def _goal_ranks(results: dict) -> tuple[str, bool | None]:
    """The goal as worded: N ranks on N cores against one rank on one core (medians of the pinned runs)."""
    entry = results.get("ranks")
    walls = pinned_medians(entry)
    if "traceview_one" not in walls or "traceview_all" not in walls:
        return "not measured", None
    ratio = walls["traceview_all"] / walls["traceview_one"]
    runs_ok = pinned_checks_ok(entry)
    reference = "".join(f"; {name}, pinned the same way: {walls[f'{tool}_all'] / walls[f'{tool}_one']:.2f}"
                        for tool, name in (("orjson", "orjson + Python count"), ("spin", "pure-Python loop"))
                        if f"{tool}_one" in walls and f"{tool}_all" in walls)
    text = (f"{ratio:.2f} ({walls['traceview_all']:.1f} s / {walls['traceview_one']:.1f} s, medians of "
            f"{entry['pinned']['repeats']}; {entry['ranks']} × {entry['label']}{reference})"
            f"{'' if runs_ok else '; **a rank differs from expected**'}")
    return text, ratio <= 1.2 and runs_ok


def goals(results: dict) -> list[str]:
    """The goals table: each goal, its target, what the real-shaped runs measured and whether it is met."""
    rows = [
        (f"traceview cold: time({GOAL_SIZE}) / time({GOAL_SMALL})", "≤ 11", _goal_scaling(results)),
        (f"traceview cold vs orjson + Python count, {GOAL_SIZE}", "faster (aim 1.5×)",
         _goal_vs(results, "orjson_count", 1.0, strict=True, aim=1.5)),
        (f"traceview cold vs HolisticTraceAnalysis, {GOAL_SIZE}", "≥ 10× faster", _goal_vs(results, "hta", 10.0)),
        (f"traceview cold: peak RSS / file size, {GOAL_SIZE}", "≤ 1.5", _goal_rss(results)),
        (f"warm re-count and re-diff (cache hit), {GOAL_SIZE}", "< 1 s", _goal_warm(results)),
        (f"{GOAL_BIG} trace loads (traceview cold)", "exit 0, per-step counts = expected", _goal_big(results)),
        ("ranks: N traces on N cores / one trace on one core, wall", "≤ 1.2", _goal_ranks(results)),
    ]
    lines = ["### Goals (real-shaped traces)", "", "| goal | target | measured | met |", "|---|---|---|---|"]
    lines += [f"| {goal} | {target} | {text} | {_verdict(met)} |" for goal, target, (text, met) in rows]
    return [*lines, "", "Times are wall times of fresh processes (interpreter start-up included).", ""]


# ---------------------------------------------------------------- the section

def render(results: dict) -> str:
    """The Peers section of RESULTS.md: goals, one table per (shape, size) (real shape first), ranks, notes."""
    lines = _header(results) + goals(results)
    for entry in sorted(results.get("sizes", []), key=lambda e: SHAPES.index(shape_of(e))):  # stable: size order kept
        lines += _table(entry, results["timeout_s"])
    if results.get("ranks"):
        lines += _ranks_table(results["ranks"])
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
