"""rocprof inputs (rocprofv3 CSV/JSON/rocpd, rocprof v1) land in the processor in Kineto's shape.

Fixtures: tests/data/rocprof/, written by make_fixtures.py, hold ONE workload in
every format: 3 ProfilerStep#N roctx ranges; in each, HIP launches of a fill, a
bf16->f32 cast, an MLA metadata kernel (hipExtModuleLaunchKernel), a
fillBufferAligned from hipMemsetAsync and a hipGraphLaunch of 3 kernels (one
correlation id) = 7 GPU events, plus one host-to-device copy in step 2 only
(8); then one kernel launched after the last step.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import public_trace

from traceview.cli.app import run
from traceview.engine import open_trace
from traceview.engine.formats import inspect_file
from traceview.engine.rocprof import iter_chunks
from traceview.errors import TraceLoadError
from traceview.model.counts import count_launches

DATA = Path(__file__).resolve().parent / "data" / "rocprof"
FIXTURES = [  # (path under DATA, detected format)
    ("csv", "rocprofv3-csv"),
    ("csv/4242_kernel_trace.csv", "rocprofv3-csv"),
    ("csv/4242_marker_api_trace.csv", "rocprofv3-csv"),
    ("4242_results.json", "rocprofv3-json"),
    ("4242_results.db", "rocpd"),
    ("kineto_rocm.json", "json"),
]
# GPU events per step whose launch call starts inside the step: 1 fill + 1 cast + 1 MLA metadata
# + 1 memset fill + 3 graph kernels = 7; step 2 adds the host-to-device copy = 8.
PER_STEP = [7, 8, 7]
OUTSIDE = 1  # the FillFunctor launched after ProfilerStep#3 ends

STEP_COUNTS_SQL = """
with steps as (select ts, ts + dur as te from slice
               where category = 'user_annotation' and name glob 'ProfilerStep#*'),
     launch as (select ts, extract_arg(arg_set_id, 'args.correlation') as c from slice
                where category = 'cuda_runtime'),
     gpu as (select extract_arg(arg_set_id, 'args.correlation') as c from slice
             where category in ('kernel', 'gpu_memcpy', 'gpu_memset'))
select (select count(*) from gpu join launch using (c) where launch.ts >= s.ts and launch.ts < s.te) as n
from steps s order by s.ts"""


@pytest.mark.parametrize("name,fmt", FIXTURES)
def test_fixture_loads_with_detected_format(name: str, fmt: str) -> None:
    with open_trace(DATA / name) as trace:
        cats = trace.query("select category, count(*) as n from slice group by 1")
        assert trace.file.format == fmt and trace.load_stats == []
    # Per step 7 kernels and 7 HIP calls (hipGetDevice, 2 hipLaunchKernel, hipExtModuleLaunchKernel,
    # hipMemsetAsync, hipGraphLaunch, hipStreamSynchronize) and 2 roctx ranges; step 2 adds
    # hipMemcpyAsync and its copy; after the steps 1 hipLaunchKernel and its kernel.
    counts = dict(zip(cats.category.astype(str), cats.n))
    assert counts == {"kernel": 3 * 7 + 1, "gpu_memcpy": 1, "cuda_runtime": 3 * 7 + 1 + 1,
                      "user_annotation": 3 * 2}


@pytest.mark.parametrize("name,fmt", FIXTURES)
def test_per_step_gpu_events_identical_across_formats(name: str, fmt: str) -> None:
    with open_trace(DATA / name) as trace:
        assert trace.query(STEP_COUNTS_SQL).n.tolist() == PER_STEP
        counts = count_launches(trace)  # the model layer reads the converted trace unchanged
    assert counts.per_step().sum(axis=1).tolist() == PER_STEP
    assert sum(counts.outside_steps().values()) == OUTSIDE and counts.warnings == []


def test_categories_per_step_match_the_kineto_trace() -> None:
    with open_trace(DATA / "kineto_rocm.json") as trace:
        expected = count_launches(trace).per_step()
    for name, _ in FIXTURES:
        with open_trace(DATA / name) as trace:
            got = count_launches(trace).per_step()
        assert got.equals(expected), name


@pytest.mark.parametrize("name", ["csv", "4242_results.json", "4242_results.db"])
def test_kineto_shape_pids_tids_args_and_exact_ns(name: str) -> None:
    sql = """select s.category, s.name, s.ts, s.dur, t.tid, p.pid,
                    extract_arg(s.arg_set_id, 'args.correlation') as corr,
                    extract_arg(s.arg_set_id, 'args.device') as device,
                    extract_arg(s.arg_set_id, 'args.stream') as stream
             from slice s join thread_track tt on s.track_id = tt.id join thread t using (utid)
             join process p using (upid) order by s.ts, s.category limit 6"""
    with open_trace(DATA / name) as trace:
        rows = trace.query(sql).astype(object).where(lambda f: f.notna(), None).values.tolist()
    # ProfilerStep#1 starts at T0 = 5e12 ns; first kernel (FillFunctor, correlation 4) at T0 + 9 us.
    assert rows[0][:6] == ["user_annotation", "ProfilerStep#1", 5_000_000_000_000, 100_000, 4242, 4242]
    assert rows[2][:7] == ["cuda_runtime", "hipGetDevice", 5_000_000_002_000, 500, 4242, 4242, 3]
    fill = rows[4]
    assert fill[0] == "kernel" and "FillFunctor" in fill[1]
    assert fill[2:] == [5_000_000_009_000, 2_000, 1, 0, 4, 0, 0]  # tid = queue 1, pid = GPU 0


def test_directory_prefers_rocpd_and_merges_csv_runs(tmp_path: Path) -> None:
    assert inspect_file(DATA).format == "rocpd"  # the folder holds rocpd, JSON and Kineto files
    run_dir = tmp_path / "run"
    shutil.copytree(DATA / "csv", run_dir)
    (run_dir / "4242_hip_api_trace.csv").unlink()  # kernels without launch calls still load: all 22
    with open_trace(run_dir / "4242_kernel_trace.csv") as trace:
        frame = trace.query("select category, count(*) as n from slice group by 1 order by 1")
    assert frame.values.tolist() == [["gpu_memcpy", 1], ["kernel", 22], ["user_annotation", 6]]


def test_overlapping_gpu_work_is_kept_on_extra_lanes(tmp_path: Path) -> None:
    lines = (DATA / "csv" / "4242_kernel_trace.csv").read_text().splitlines()
    header, first = lines[0], lines[1]
    second = first.replace(",5000000009000,5000000011000,", ",5000000010000,5000000012000,")
    (tmp_path / "9_kernel_trace.csv").write_text("\n".join([header, first, second]) + "\n")
    with open_trace(tmp_path / "9_kernel_trace.csv") as trace:
        frame = trace.query("select t.tid, t.name from slice s join thread_track tt on s.track_id = tt.id "
                            "join thread t using (utid) order by s.ts")
        assert trace.load_stats == []  # nothing dropped as an overlapping complete event
    # Agent 1 without agent_info.csv: GPU index 1. The second kernel starts 1 us before
    # the first ends, so it moves to lane 1 of queue 1 (tid 1 + 10_000_000).
    assert frame.values.tolist() == [[1, "queue 1"], [10_000_001, "queue 1 (overlap lane 1)"]]


def test_conversion_streams_in_chunks() -> None:
    info = inspect_file(DATA / "4242_results.json")
    seen: list[tuple[int, int]] = []
    chunks = list(iter_chunks(info, lambda done, total: seen.append((done, total)), chunk_bytes=2048))
    assert len(chunks) > 3
    events = json.loads(b"".join(chunks))["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == 22 + 1 + 23 + 6  # kernels, copy, HIP calls, ranges
    assert seen[-1] == (info.size, info.size)


def _broken_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    run_dir = tmp_path / "run"
    shutil.copytree(DATA / "csv", run_dir)
    hip = run_dir / "4242_hip_api_trace.csv"
    hip.write_text(hip.read_text().replace(",4242,4242,4,", ",4242,4242,four,"))
    header_only = tmp_path / "1_kernel_trace.csv"
    header_only.write_text((DATA / "csv" / "4242_kernel_trace.csv").read_text().splitlines()[0] + "\n")
    agents = tmp_path / "agents"
    agents.mkdir()
    shutil.copy(DATA / "csv" / "4242_agent_info.csv", agents)
    two = tmp_path / "two"
    two.mkdir()
    for prefix in ("11", "12"):
        shutil.copy(DATA / "csv" / "4242_kernel_trace.csv", two / f"{prefix}_kernel_trace.csv")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table t (a)")
    text = (DATA / "4242_results.json").read_text()
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) // 2])
    bad_record = tmp_path / "bad_record.json"
    bad_record.write_text(text.replace('"start_timestamp": 5000000009000', '"start_timestamp": "soon"', 1))
    return {
        "bad integer": (run_dir, "4242_hip_api_trace.csv, line 3: column Correlation_Id is not an integer"),
        "header only": (header_only, "holds no rocprof trace rows"),
        "agent info only": (agents / "4242_agent_info.csv", "holds no rocprofv3 trace table"),
        "two runs": (two, "holds rocprofv3 CSV output of 2 runs"),
        "other SQLite": (other, "neither rocpd"),
        "truncated JSON": (truncated, "malformed rocprofv3 JSON"),
        "bad record": (bad_record, "malformed kernel_dispatch record"),
    }


def test_bad_rocprof_inputs_raise_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = _broken_inputs(tmp_path)
    cases["empty directory"] = (empty, "is a directory without rocprofv3 output")
    for label, (path, reason) in cases.items():
        with pytest.raises(TraceLoadError) as info:
            open_trace(path).close()
        message = str(info.value)
        assert message.startswith(f"{path}: ") and reason in message and "\n" not in message, label
        assert run(["info", str(path)]) == 2, label
        assert capsys.readouterr().err.strip() == f"traceview: {message}", label


def test_counts_command_on_a_rocpd_database(capsys: pytest.CaptureFixture) -> None:
    assert run(["counts", str(DATA / "4242_results.db"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [step["total"] for step in doc["steps"]] == PER_STEP


# Public traces: numbers from each PROVENANCE.md ("Facts computed from the file").
def test_public_rocprofv3_json() -> None:
    path = public_trace("rocprofv3-json-train-mi350x", "908_results.json.gz")
    with open_trace(path) as trace:
        row = trace.query("""
            select count(*) as n, count(distinct name) as names,
                   count(distinct extract_arg(arg_set_id, 'args.device')) as gpus,
                   sum(name like '%fill%') as fill, sum(name like '%copy%') as copy,
                   sum(name like '%cast%') as cast_, (max(ts + dur) - min(ts)) / 1000000 as span_ms
            from slice where category = 'kernel'""").iloc[0].tolist()
        assert trace.load_stats == []
    # 43,915 kernel_dispatch records, 80 distinct kernels, all on one MI350X; names containing
    # 'fill' 5,483, 'copy' 16,221, 'cast' 4,200 (any case); dispatch span 15,122 ms.
    assert row == [43915, 80, 1, 5483, 16221, 4200, 15122]


def test_public_rocprofv3_kernel_trace_csv() -> None:
    path = public_trace("rocprofv3-kernel-trace-csv-mi300", "ps_file_kernel_trace.csv")
    with open_trace(path) as trace:
        frame = trace.query("select name, count(*) as n, sum(dur) as dur_ns, "
                            "group_concat(extract_arg(arg_set_id, 'args.correlation')) as corr from slice")
    # 3 KERNEL_DISPATCH rows of vecCopy, correlation ids 1-3, summed duration 19,308 ns.
    assert frame.values.tolist() == [["vecCopy(double*, double*, double*, int, int)", 3, 19308, "1,2,3"]]


@pytest.mark.parametrize("name", ["results.csv", "results.db"])
def test_public_rocprof_v1(name: str) -> None:
    path = public_trace("rocprof-v1-stencils-mi250x", name)
    with open_trace(path) as trace:
        frame = trace.query("select name, count(*) as n, sum(dur) as dur_ns from slice "
                            "where category = 'kernel' group by name")
        gpus = trace.query("select count(distinct extract_arg(arg_set_id, 'args.device')) as n from slice").n[0]
    counts = dict(zip(frame.name, frame.n))
    # 1,023 dispatches of 13 kernels: 10 compute_fd_* x 100, 12 fillBufferAligned (quotes of
    # results.db's KernelName stripped), 10 max_absval_gpu_kernel, 1 initialize_polynomial_kernel;
    # compute_fd_z_kernel totals 546.86 ms; one gpu-id.
    assert sum(counts.values()) == 1023 and len(counts) == 13 and gpus == 1
    assert counts["__amd_rocclr_fillBufferAligned.kd"] == 12 and counts["max_absval_gpu_kernel"] == 10
    assert sorted(n for k, n in counts.items() if k.startswith("compute_fd_")) == [100] * 10
    assert frame.set_index("name").dur_ns["compute_fd_z_kernel"] == 546_863_066
