"""Nsight Systems input: SQLite exports (and .nsys-rep reports through nsys) in Kineto's shape.

Every number asserted on the real before/after pair (../shared/traces/public/nsys-mfu-2gpu)
is derived here with Python's sqlite3 from the export's own tables, never from traceview:
rows per kind and device, runtime calls joined to GPU work on (process, correlationId), and
launches per NVTX step by the rule docs/counting.md states. Synthetic exports hold what the
real pair lacks (CUDA graph launches, reports, broken layouts), with counts known by construction.
"""

from __future__ import annotations

import bisect
import json
import re
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import public_trace

from traceview import analyze, diff_counts
from traceview.cli.app import run
from traceview.engine import open_trace
from traceview.engine.export import canonical_copy
from traceview.engine.formats import inspect_file
from traceview.engine.nsys import tables
from traceview.errors import TraceLoadError

FOLDER = "nsys-mfu-2gpu"
GPU_TABLES = {"kernel": "CUPTI_ACTIVITY_KIND_KERNEL", "memcpy": "CUPTI_ACTIVITY_KIND_MEMCPY",
              "memset": "CUPTI_ACTIVITY_KIND_MEMSET"}
# Step markers among the real pair's NVTX ranges: FSDP's per-block pre-forward hook (a plain
# annotation) and flash-attention's autograd function (an emit_nvtx op range, "…, op_id = N").
MARKERS = ("^FSDP::pre_forward", "^FlashAttnFunc")
GPU_SQL = """select extract_arg(arg_set_id, 'args.device') as device,
                    case category when 'kernel' then 'kernel' when 'gpu_memcpy' then 'memcpy' else 'memset' end as kind
             from slice where category in ('kernel', 'gpu_memcpy', 'gpu_memset')"""


def _pid(global_id: int) -> int:
    return (global_id >> 24) & 0xFFFFFF  # nsys: (hw << 48) | (pid << 24) | tid


def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)


@dataclass
class Derived:
    """What the export holds, read with sqlite3 alone."""

    gpu: list[tuple[str, int, int, int | None]]  # (kind, device, pid, correlationId) per GPU row
    launches: dict[tuple[int, int], int]  # (pid, correlationId) -> start of its (first) runtime call
    nvtx: list[tuple[str, int, int]]  # (text, start, end) of every finished NVTX range
    calls: int  # runtime/driver calls that carry a correlation id

    def per_kind_device(self) -> Counter:
        return Counter((kind, device) for kind, device, _, _ in self.gpu)

    def launched(self) -> list[int | None]:
        """Start of each GPU row's launch call (None: not in the trace)."""
        return [self.launches.get((pid, corr)) for _, _, pid, corr in self.gpu]

    def per_step(self, marker: str) -> tuple[list[int], dict[str, int]]:
        """Launches per step and outside steps by reason, by docs/counting.md: a GPU event belongs to
        the latest step starting at or before its launch call, if the call starts before it ends."""
        steps = sorted((start, end) for text, start, end in self.nvtx if re.search(marker, text))
        starts = [start for start, _ in steps]
        counts, outside = [0] * len(steps), Counter()
        for ts in self.launched():
            if ts is None:
                outside["no_launch"] += 1
                continue
            i = bisect.bisect_right(starts, ts) - 1
            if i >= 0 and ts < steps[i][1]:
                counts[i] += 1
            elif ts < starts[0]:
                outside["before_first_step"] += 1
            elif ts >= max(end for _, end in steps):
                outside["after_last_step"] += 1
            else:
                outside["between_steps"] += 1
        return counts, dict(outside)


def derive(path: Path) -> Derived:
    with _db(path) as db:
        gpu = [(kind, device, _pid(gpid), corr) for kind, table in GPU_TABLES.items()
               for device, gpid, corr in db.execute(f"select deviceId, globalPid, correlationId from {table}")]
        launches: dict[tuple[int, int], int] = {}
        for tid, corr, start in db.execute("select globalTid, correlationId, start from CUPTI_ACTIVITY_KIND_RUNTIME "
                                           "order by rowid"):
            launches.setdefault((_pid(tid), corr), start)
        nvtx = db.execute("select coalesce(n.text, s.value), n.start, n.end from NVTX_EVENTS n "
                          "left join StringIds s on s.id = n.textId where n.end is not null").fetchall()
        (calls,) = db.execute("select count(correlationId) from CUPTI_ACTIVITY_KIND_RUNTIME").fetchone()
    return Derived(gpu, launches, nvtx, calls)


@pytest.fixture(scope="module")
def before() -> Path:
    return public_trace(FOLDER, "mfu_2gpu_before.sqlite")


@pytest.fixture(scope="module")
def after() -> Path:
    return public_trace(FOLDER, "mfu_2gpu_after.sqlite")


def test_export_is_detected_and_every_row_lands_in_kineto_shape(before: Path) -> None:
    derived = derive(before)
    with _db(before) as db:
        runtime = Counter(re.sub(r"_v\d+$", "", name) for (name,) in db.execute(
            "select s.value from CUPTI_ACTIVITY_KIND_RUNTIME r join StringIds s on s.id = r.nameId"))
        kernels = sorted(db.execute("select start, end - start from CUPTI_ACTIVITY_KIND_KERNEL").fetchall())
    assert inspect_file(before).format == "nsys-sqlite"
    with open_trace(before) as trace:
        gpu = trace.query(f"select kind, device, count(*) as n from ({GPU_SQL}) group by 1, 2")
        calls = trace.query("select name, count(*) as n from slice where category in ('cuda_runtime', 'cuda_driver') "
                            "group by 1")
        ts = trace.query("select ts, dur from slice where category = 'kernel' order by ts, dur")
        base, stats, problems = trace.time_base_ns, trace.load_stats, trace.load_problems
    # Rows per kind and device: kernels 1,993 + 2,017, memcpys 510 + 510, memsets 133 + 136 (PROVENANCE.md).
    assert {(k, int(d)): int(n) for k, d, n in gpu.itertuples(index=False)} == derived.per_kind_device()
    assert sum(derived.per_kind_device().values()) == 4010 + 1020 + 269
    # Every runtime/driver call, named as CUPTI names it (cudaLaunchKernel_v7000 -> cudaLaunchKernel).
    assert dict(zip(calls.name, calls.n.astype(int))) == runtime and sum(runtime.values()) == 7466
    # Integer ns both ways: each kernel's start and duration exactly as exported.
    assert [(int(t) + base, int(d)) for t, d in ts.itertuples(index=False)] == kernels
    assert stats == [] and problems == []


def test_pids_and_tids_unpack_from_global_ids(before: Path) -> None:
    with _db(before) as db:
        processes = dict(db.execute("select globalPid, pid from PROCESSES"))
        threads = db.execute("select distinct globalTid from CUPTI_ACTIVITY_KIND_RUNTIME").fetchall()
    # The export's own PROCESSES table says which pid each globalPid packs.
    assert all(tables.pid_of(gpid) == pid for gpid, pid in processes.items())
    expected = Counter((tables.pid_of(t), tables.tid_of(t)) for (t,) in threads)
    with open_trace(before) as trace:
        found = trace.query("""select distinct p.pid, t.tid from slice s join thread_track tt on s.track_id = tt.id
                               join thread t using (utid) join process p using (upid)
                               where s.category = 'cuda_runtime'""")
    assert Counter(map(tuple, found.values.tolist())) == expected and len(expected) == 4  # 2 ranks x 2 threads
    assert {pid for pid, _ in expected} <= set(processes.values())


def test_correlation_ids_are_scoped_by_process(before: Path) -> None:
    derived = derive(before)
    pids = {pid for _, _, pid, _ in derived.gpu}
    shared = {c for p, c in derived.launches if p == min(pids)} & {c for p, c in derived.launches if p == max(pids)}
    assert len(pids) == 2 and shared  # both ranks use some of the same ids: unscoped, they would mix
    expected = Counter((device, pid) for (_, device, pid, corr) in derived.gpu if (pid, corr) in derived.launches)
    with open_trace(before) as trace:
        pairs = trace.query("""
            with gpu as (select extract_arg(arg_set_id, 'args.device') as device,
                                extract_arg(arg_set_id, 'args.correlation') as c
                         from slice where category in ('kernel', 'gpu_memcpy', 'gpu_memset')),
                 call as (select p.pid, extract_arg(s.arg_set_id, 'args.correlation') as c
                          from slice s join thread_track tt on s.track_id = tt.id join thread using (utid)
                          join process p using (upid) where s.category in ('cuda_runtime', 'cuda_driver'))
            select device, pid, count(*) as n from gpu join call using (c) group by 1, 2""")
    assert {(int(d), int(p)): int(n) for d, p, n in pairs.itertuples(index=False)} == expected


@pytest.mark.parametrize("marker", MARKERS)
def test_launches_per_nvtx_step_match_the_export(before: Path, marker: str) -> None:
    per_step, outside = derive(before).per_step(marker)
    counts = analyze(before, step_marker=marker)
    assert counts.steps["launches"].tolist() == per_step and len(per_step) > 10
    assert counts.per_step().sum(axis=1).tolist() == per_step
    assert {k: v for k, v in counts.outside_steps().items() if v} == outside
    assert counts.steps["graph_replayed"].sum() == 0  # the pair has no CUDA graphs


def test_whole_trace_counts_and_cli_commands(before: Path, capsys: pytest.CaptureFixture) -> None:
    derived = derive(before)
    launched = sum(ts is not None for ts in derived.launched())
    kinds = Counter(kind for kind, _, _, _ in derived.gpu)
    assert run(["info", str(before), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["format"], info["gpu_kernels"], info["gpu_memcpy"], info["gpu_memset"], info["gpu_devices"]) == \
        ("nsys-sqlite", kinds["kernel"], kinds["memcpy"], kinds["memset"], 2)
    assert info["launch_calls"] == derived.calls
    assert run(["counts", str(before), "--format", "json"]) == 0  # no marker: the whole trace is one step
    doc = json.loads(capsys.readouterr().out)
    assert [s["total"] for s in doc["steps"]] == [launched] and 0 < launched < len(derived.gpu)
    assert run(["kernels", str(before), "--format", "json"]) == 0
    assert sum(row["launches"] for row in json.loads(capsys.readouterr().out)) == launched
    sql = "select count(*) as n from slice where category = 'gpu_memset'"
    assert run(["sql", str(before), sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", str(kinds["memset"])]
    assert run(["steps", str(before), "--step-marker", MARKERS[0], "--format", "json"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert [s["launches"] for s in steps] == derived.per_step(MARKERS[0])[0]
    assert run(["check", str(before), "--expect", f"total={launched}"]) == 0
    assert run(["check", str(before), "--expect", f"total={launched - 1}"]) == 1


def test_diff_of_the_pair(before: Path, after: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = MARKERS[1]
    totals = [derive(path).per_step(marker)[0] for path in (before, after)]
    means = [sum(t) / len(t) for t in totals]
    result = diff_counts(analyze(before, step_marker=marker), analyze(after, step_marker=marker))
    total = result.categories.set_index("category").loc["total"]
    assert (total.before_mean, total.after_mean) == pytest.approx(means, abs=1e-12)
    assert total.delta_mean == pytest.approx(means[1] - means[0], abs=1e-12)
    assert run(["diff", str(before), str(after), "--step-marker", marker, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["before"]["steps"], doc["after"]["steps"]) == (len(totals[0]), len(totals[1]))
    assert doc["categories"]["total"]["delta"] == pytest.approx(means[1] - means[0], abs=1e-12)
    out = tmp_path / "report.html"
    assert run(["report", str(before), str(after), "--step-marker", marker, "-o", str(out)]) == 0
    assert out.stat().st_size > 0 and "mfu_2gpu_after" in out.read_text(encoding="utf-8")


def test_open_gets_the_translated_trace(before: Path, tmp_path: Path) -> None:
    copy = canonical_copy(before, tmp_path)  # what `traceview open` serves to the Perfetto UI
    events = json.loads(copy.read_bytes())["traceEvents"]
    kinds = Counter(e["cat"] for e in events if e.get("ph") == "X")
    expected = Counter(kind for kind, _, _, _ in derive(before).gpu)
    assert (kinds["kernel"], kinds["gpu_memcpy"], kinds["gpu_memset"]) == \
        (expected["kernel"], expected["memcpy"], expected["memset"])


# --- synthetic exports: what the real pair lacks ---------------------------------------------------

SCHEMA = """
create table StringIds (id integer primary key, value text not null);
create table CUPTI_ACTIVITY_KIND_RUNTIME (start integer not null, end integer not null, eventClass integer,
    globalTid integer, correlationId integer, nameId integer not null, returnValue integer);
create table CUPTI_ACTIVITY_KIND_KERNEL (start integer not null, end integer not null, deviceId integer not null,
    contextId integer, streamId integer not null, correlationId integer, globalPid integer,
    demangledName integer not null, shortName integer not null, graphNodeId integer);
create table NVTX_EVENTS (start integer not null, end integer, eventType integer not null, text text,
    globalTid integer, textId integer);
"""
EPOCH = 1_700_000_000_123_456_789  # epoch-scale ns: must come back exact


def _gid(pid: int, tid: int = 0) -> int:
    return (1 << 48) | (pid << 24) | tid


def graph_export(path: Path) -> Path:
    """Two processes. Step 0 (process 100's ProfilerStep#1): cudaLaunchKernel (corr 5, 1 kernel),
    cudaGraphLaunch (corr 6, 3 replayed kernels), and process 200's cudaLaunchKernel with the same
    corr 6, called just before the graph launch, its kernel running after it (matching ids by time
    alone would give it to the graph). Step 1 (process 200's, a registered string): one kernel.
    One kernel's launch is not in the trace (corr 99)."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("insert into StringIds values (?, ?)", [
        (1, "cudaLaunchKernel_v7000"), (2, "cudaGraphLaunch_v10000"), (3, "void fill_kernel<float>(float*)"),
        (4, "fill_kernel"), (5, "ampere_sgemm_128x64_nn"), (6, "ProfilerStep#2")])
    a, b = _gid(100, 100), _gid(200, 201)
    db.executemany("insert into CUPTI_ACTIVITY_KIND_RUNTIME values (?, ?, 0, ?, ?, ?, 0)", [
        (EPOCH + 2000, EPOCH + 2100, a, 5, 1), (EPOCH + 3000, EPOCH + 3100, a, 6, 2),
        (EPOCH + 2900, EPOCH + 2950, b, 6, 1), (EPOCH + 21000, EPOCH + 21100, b, 7, 1)])
    db.executemany("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, ?, 1, ?, ?, ?, ?, ?, ?)", [
        (EPOCH + 2500, EPOCH + 2600, 0, 7, 5, _gid(100), 3, 4, None),
        *[(EPOCH + 3500 + 200 * i, EPOCH + 3600 + 200 * i, 0, 7, 6, _gid(100), 5, 5, 40 + i) for i in range(3)],
        (EPOCH + 3400, EPOCH + 3500, 1, 9, 6, _gid(200), 3, 4, None),
        (EPOCH + 21500, EPOCH + 21600, 1, 9, 7, _gid(200), 3, 4, None),
        (EPOCH + 500, EPOCH + 600, 0, 7, 99, _gid(100), 3, 4, None)])
    db.executemany("insert into NVTX_EVENTS values (?, ?, ?, ?, ?, ?)", [
        (EPOCH + 1000, EPOCH + 10000, 59, "ProfilerStep#1", a, None),
        (EPOCH + 20000, EPOCH + 30000, 59, None, b, 6),  # registered string (textId)
        (EPOCH + 2050, None, 34, "a mark", a, None)])
    db.commit()
    db.close()
    return path


def test_graph_launches_scoped_ids_and_missing_optional_tables(tmp_path: Path) -> None:
    path = graph_export(tmp_path / "graph.sqlite")  # no memcpy/memset/enum/process tables at all
    counts = analyze(path)
    # Step 0: 3 graph-replayed + 2 direct (process 200's corr 6 is its own call); step 1: 1 direct.
    assert counts.steps[["launches", "graph_replayed", "direct"]].values.tolist() == [[5, 3, 2], [1, 0, 1]]
    assert counts.outside_steps()["no_launch"] == 1
    with open_trace(path) as trace:
        rows = trace.query("select ts, dur, name, extract_arg(arg_set_id, 'args.graph_node') as node from slice "
                           "where category = 'kernel' order by ts")
        base = trace.time_base_ns
    assert [int(t) + base for t in rows.ts] == [EPOCH + 500, EPOCH + 2500, EPOCH + 3400, EPOCH + 3500, EPOCH + 3700,
                                                EPOCH + 3900, EPOCH + 21500]
    assert rows.node.dropna().astype(int).tolist() == [40, 41, 42] and set(rows.dur) == {100}


def test_driver_table_calls_launch_too(tmp_path: Path) -> None:
    path = graph_export(tmp_path / "driver.sqlite")
    with sqlite3.connect(path) as db:  # one cuLaunchKernelEx of process 100 in step 0, and its kernel
        db.execute("create table CUPTI_ACTIVITY_KIND_DRIVER (start integer not null, end integer not null, "
                   "globalTid integer, correlationId integer, nameId integer not null)")
        db.execute("insert into StringIds values (7, 'cuLaunchKernelEx')")
        db.execute("insert into CUPTI_ACTIVITY_KIND_DRIVER values (?, ?, ?, 8, 7)", (EPOCH + 4500, EPOCH + 4600,
                                                                                     _gid(100, 100)))
        db.execute("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, 0, 1, 7, 8, ?, 3, 4, NULL)",
                   (EPOCH + 5000, EPOCH + 5100, _gid(100)))
    counts = analyze(path)
    assert counts.steps[["launches", "graph_replayed", "direct"]].values.tolist() == [[6, 3, 3], [1, 0, 1]]
    apis = counts.launches.groupby("launch_api")["launches"].sum()
    assert apis.to_dict() == {"cuLaunchKernelEx": 1, "cudaGraphLaunch": 3, "cudaLaunchKernel": 3}


def test_enum_tables_of_the_real_export_agree_with_the_mapping(before: Path) -> None:
    with _db(before) as db:
        copies = dict(db.execute("select id, name from ENUM_CUDA_MEMCPY_OPER"))
        memory = dict(db.execute("select id, label from ENUM_CUDA_MEM_KIND"))
        events = dict(db.execute("select name, id from ENUM_NSYS_EVENT_TYPE"))
    short = {i: re.sub(r"^CUDA_MEMCPY_KIND_(UVM_)?(\w)TO(\w)$", lambda m: f"{m[2]}to{m[3]}" + (" (UVM)" if m[1]
             else ""), name) for i, name in copies.items()}
    assert {i: s for i, s in short.items() if i} == {i: s for i, s in tables.COPY_KINDS.items() if i}
    assert memory == tables.MEMORY_KINDS
    assert {n: events[n] for n in tables.RANGE_TYPES} == tables.RANGE_TYPES
    assert {n: events[n] for n in tables.MARK_TYPES} == tables.MARK_TYPES


def _one_line_refusal(path: Path, reason: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(TraceLoadError) as info:
        open_trace(path).close()
    message = str(info.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
    assert run(["info", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"traceview: {message}"


def test_bad_sqlite_inputs_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("create table measurements (x integer)")
    _one_line_refusal(other, "nor an Nsight Systems export", capsys)
    layout = graph_export(tmp_path / "layout.sqlite")
    with sqlite3.connect(layout) as db:
        db.execute("alter table CUPTI_ACTIVITY_KIND_KERNEL drop column deviceId")
    _one_line_refusal(layout, "CUPTI_ACTIVITY_KIND_KERNEL has no deviceId column", capsys)
    empty = tmp_path / "empty.sqlite"
    with sqlite3.connect(empty) as db:
        db.executescript(SCHEMA)
    _one_line_refusal(empty, "holds no kernel, memcpy, memset, CUDA API or NVTX rows", capsys)


# --- .nsys-rep reports ---------------------------------------------------------------------------


def _fake_nsys(bin_dir: Path, source: Path, log: Path, fail: bool = False) -> None:
    """An ``nsys`` that logs its arguments and "exports" by copying ``source`` to ``--output``."""
    bin_dir.mkdir()
    script = bin_dir / "nsys"
    body = ("import sys; sys.stderr.write('Error: report is damaged\\n'); sys.exit(3)" if fail else
            f"import shutil, sys\nargs = sys.argv[1:]\nopen({str(log)!r}, 'a').write(' '.join(args) + '\\n')\n"
            f"shutil.copyfile({str(source)!r}, args[args.index('--output') + 1])")
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(0o755)


def test_report_without_nsys_says_how_to_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "run.nsys-rep"
    report.write_bytes(b"not readable without nsys")
    monkeypatch.setenv("PATH", str(tmp_path))
    _one_line_refusal(report, "nsys is not on PATH to export it: run "
                              "`nsys export --type sqlite --output run.sqlite run.nsys-rep`", capsys)


def test_report_is_exported_once_and_counted(before: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "nsys.log"
    _fake_nsys(tmp_path / "bin", before, log)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(tmp_path / "cache"))
    report = tmp_path / "run.nsys-rep"
    report.write_bytes(b"report bytes " * 100)
    file = inspect_file(report)
    assert (file.format, file.path, file.size) == ("nsys-rep", report, 1300)
    per_step, _ = derive(before).per_step(MARKERS[0])
    assert analyze(report, step_marker=MARKERS[0]).steps["launches"].tolist() == per_step
    with open_trace(report) as trace:
        assert trace.query("select count(*) as n from slice where category = 'kernel'").n[0] == 4010
    calls = log.read_text().splitlines()  # three loads, one export
    assert len(calls) == 1 and calls[0].startswith("export --type sqlite --output ")
    assert calls[0].endswith(f" {report}") and list((tmp_path / "cache" / "nsys").iterdir()) == [file.read_path]


def test_failed_export_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    _fake_nsys(tmp_path / "bin", tmp_path, tmp_path / "log", fail=True)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(tmp_path / "cache"))
    report = tmp_path / "broken.qdrep"
    report.write_bytes(b"damaged")
    _one_line_refusal(report, "`nsys export --type sqlite` failed (exit 3): Error: report is damaged", capsys)
    assert list((tmp_path / "cache" / "nsys").iterdir()) == []  # nothing half-written is kept
