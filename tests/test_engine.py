"""Engine: every input kind, chunked/gzip loading, bad inputs, backend selection."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import wasmtime
from conftest import public_trace, write_trace
from kineto import KinetoTrace

from traceview.cli.app import run
from traceview.engine import (
    EngineConfig,
    backends,
    open_trace,
    wasm_imports,
    wasm_traps,
    watchdog,
)
from traceview.engine import api as engine_api
from traceview.engine.config import processor_ready, resolve_shell
from traceview.engine.formats import inspect_file, iter_chunks, prefetch
from traceview.engine.kineto.pipeline import CanonicalJson, JsonLoadOptions
from traceview.errors import EngineError, TraceLoadError


def small_trace() -> KinetoTrace:
    trace = KinetoTrace()
    trace.annotation("ProfilerStep#1", ts=0, dur=100)
    trace.op("aten::fill_", ts=10, dur=10)
    trace.launch(ts=12, kernels=["void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>"])
    trace.op("aten::mm", ts=30, dur=10)
    trace.launch(ts=32, kernels=["ampere_sgemm_128x64_nn"])
    return trace


def pftrace_bytes() -> bytes:
    """A Perfetto protobuf trace: one track with two nested TrackEvent slices."""
    from perfetto.trace_builder.proto_builder import TraceProtoBuilder

    builder = TraceProtoBuilder()
    packet = builder.add_packet()
    packet.track_descriptor.uuid = 42
    packet.track_descriptor.name = "demo track"
    for ts, kind, name in [(1000, 1, "outer"), (2000, 1, "inner"), (3000, 2, None), (4000, 2, None)]:
        packet = builder.add_packet()
        packet.timestamp = ts
        packet.trusted_packet_sequence_id = 1
        packet.track_event.type = kind  # 1 = TYPE_SLICE_BEGIN, 2 = TYPE_SLICE_END
        packet.track_event.track_uuid = 42
        if name:
            packet.track_event.name = name
    return builder.serialize()


@pytest.mark.parametrize("gz", [False, True])
def test_kineto_json_loads(tmp_path: Path, gz: bool) -> None:
    path = write_trace(tmp_path / ("t.json.gz" if gz else "t.json"), small_trace().events, gz=gz)
    with open_trace(path) as trace:
        assert trace.file.format == "json" and trace.file.compressed is gz
        frame = trace.query("select category, count(*) as n from slice group by 1 order by 1")
    # 1 annotation + 2 cpu_ops + 2 launch calls + 2 kernels, as written above.
    assert dict(zip(frame.category, frame.n)) == {"cpu_op": 2, "cuda_runtime": 2, "kernel": 2, "user_annotation": 1}
    assert str(frame.n.dtype) == "int64"


@pytest.mark.parametrize("suffix", [".pftrace", ".perfetto-trace.gz", ".bin"])
def test_perfetto_protobuf_loads_by_content(tmp_path: Path, suffix: str) -> None:
    data = pftrace_bytes()
    path = tmp_path / f"trace{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with open_trace(path) as trace:
        assert trace.file.format == "perfetto-proto"
        frame = trace.query("select name, dur, depth from slice order by ts")
    assert frame.to_dict("list") == {"name": ["outer", "inner"], "dur": [3000, 1000], "depth": [0, 1]}


def canonical_text(path: Path, chunk_bytes: int = 1 << 20, **options) -> bytes:
    """What the loader feeds the processor for ``path``."""
    info = inspect_file(path)
    loaded = CanonicalJson(lambda: iter_chunks(info, chunk_bytes=chunk_bytes), path, info.size,
                           JsonLoadOptions(**options))
    return b"".join(loaded.chunks())


def test_chunked_load_matches_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_trace(tmp_path / "t.json.gz", small_trace().events, gz=True)
    # Pieces of 64 bytes: nearly every event is a piece of its own.
    assert canonical_text(path, 7, piece_bytes=64) == canonical_text(path)
    # Load through 7-byte chunks: the processor must see the same trace.
    monkeypatch.setattr(engine_api, "iter_chunks", lambda info, progress=None: iter_chunks(info, progress, 7))
    seen: list[tuple[int, int]] = []
    with open_trace(path, on_progress=lambda done, total: seen.append((done, total))) as trace:
        assert trace.query("select count(*) as n from slice").n.iloc[0] == 7
    assert seen and seen[-1][0] == seen[-1][1] == path.stat().st_size


def test_python_function_events_do_not_hide_steps(tmp_path: Path) -> None:
    # with_stack traces: `profiler.py: step` starts before ProfilerStep#2 and ends
    # inside it. Left on the same thread, the processor drops ProfilerStep#2.
    trace = small_trace()
    trace.events.append({"ph": "X", "cat": "python_function", "name": "torch/profiler/profiler.py(838): step",
                         "pid": 100, "tid": 100, "ts": 95, "dur": 10, "args": {}})
    trace.annotation("ProfilerStep#2", ts=100, dur=50)
    path = write_trace(tmp_path / "stack.json", trace.events)
    with open_trace(path) as loaded:
        steps = loaded.query("select name from slice where name like 'ProfilerStep%' order by ts").name.tolist()
        assert not [s for s in loaded.load_stats if s.name == "slice_drop_overlapping_complete_event"]
    assert steps == ["ProfilerStep#1", "ProfilerStep#2"]


def test_public_kineto_trace_has_every_event(tmp_path: Path) -> None:
    path = public_trace("xdit-flux1-aiter-mi300x", "profile_trace_rank_0.json.gz")
    with open_trace(path) as trace:
        frame = trace.query("select category, count(*) as n from slice group by 1")
    counts = dict(zip(frame.category.astype(object), frame.n))
    # PROVENANCE.md: kernel=7830, cpu_op=6409, user_annotation=6 complete events in the JSON;
    # all survive because python_function events get their own thread.
    assert (counts["kernel"], counts["cpu_op"], counts["user_annotation"]) == (7830, 6409, 6)


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = gzip.compress(json.dumps({"traceEvents": small_trace().events}).encode())
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "text.txt").write_text("hello, this is not a trace\n")
    (tmp_path / "truncated.json.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "not_kineto.json").write_text('{"name": "package.json", "version": "1.0"}')
    (tmp_path / "garbage.gz").write_bytes(b"\x1f\x8b" + os.urandom(64))
    return {
        "missing": (tmp_path / "nope.json", "no such file"),
        "empty": (tmp_path / "empty.json", "file is empty"),
        "not a trace": (tmp_path / "text.txt", "not a trace"),
        "truncated gzip": (tmp_path / "truncated.json.gz", "truncated gzip"),
        "JSON but not a trace": (tmp_path / "not_kineto.json", "no Chrome/Kineto trace events"),
        "corrupt gzip": (tmp_path / "garbage.gz", "gzip"),
        "directory": (tmp_path, "is a directory"),
    }


def test_bad_inputs_raise_trace_load_error(tmp_path: Path) -> None:
    for label, (path, reason) in _bad_inputs(tmp_path).items():
        with pytest.raises(TraceLoadError) as info:
            open_trace(path).close()
        assert reason in str(info.value), label
        assert str(path) in str(info.value) and "\n" not in str(info.value), label


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for label, (path, reason) in _bad_inputs(tmp_path).items():
        for command in (["info", str(path)], ["sql", str(path), "select 1"]):
            assert run(command) == 2, label
            err = capsys.readouterr().err.strip()
            assert err.startswith("traceview: ") and reason in err and len(err.splitlines()) == 1, (label, err)
            assert "Traceback" not in err


def test_sql_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    assert run(["sql", str(path), "select nope from no_such_table"]) == 2
    assert capsys.readouterr().err.strip() == f"traceview: {path}: no such table: no_such_table"


def test_explicit_binary_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    with pytest.raises(EngineError, match="does not exist"):
        open_trace(path, EngineConfig(tp_bin=str(tmp_path / "missing_tp"))).close()
    assert run(["info", str(path), "--tp-bin", str(tmp_path / "missing_tp")]) == 2
    assert "trace processor binary does not exist" in capsys.readouterr().err


def test_backend_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shell = tmp_path / "bin" / "trace_processor_shell"
    shell.parent.mkdir()
    shell.write_text("#!/bin/sh\necho v99\n")
    shell.chmod(0o755)
    monkeypatch.delenv("TRACEVIEW_TP_BIN", raising=False)
    monkeypatch.setenv("PATH", str(shell.parent))
    assert resolve_shell(EngineConfig()) == str(shell)  # b. PATH
    assert resolve_shell(EngineConfig(wasm_only=True)) is None  # c. wasm
    other = tmp_path / "explicit_tp"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv("TRACEVIEW_TP_BIN", str(other))
    assert resolve_shell(EngineConfig()) == str(other)  # a. explicit wins
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("TRACEVIEW_TP_BIN")
    assert resolve_shell(EngineConfig()) is None


def test_info_reports_engine_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    assert run(["info", str(path), "--format", "json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["engine"] == "wasm" and facts["perfetto_version"].startswith("v")
    assert (facts["gpu_kernels"], facts["launch_calls"], facts["step_markers"]) == (2, 2, ["torch-profiler-step: 1"])


def test_import_does_not_pull_torch_and_module_runs(tmp_path: Path) -> None:
    code = "import sys, traceview, traceview.cli.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    path = write_trace(tmp_path / "t.json", small_trace().events)
    done = subprocess.run([sys.executable, "-m", "traceview", "info", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and "gpu_kernels" in done.stdout


def test_lean_load_drops_shapes_and_flows_only(tmp_path: Path) -> None:
    trace = small_trace()
    trace.events[1]["args"].update({"Input type": ["float", "Scalar"], "Input Dims": [[8, 4], []],
                                    "Input Strides": [[4, 1], []]})
    trace.events.insert(3, {"ph": "s", "id": 1, "pid": 100, "tid": 100, "ts": 12, "cat": "ac2g", "name": "ac2g"})
    # The fill kernel launched at 12 runs at 17 on stream 7: the flow binds launch -> kernel.
    trace.events.append({"ph": "f", "id": 1, "pid": 0, "tid": 7, "ts": 17, "cat": "ac2g", "name": "ac2g", "bp": "e"})
    path = tmp_path / "t.json"
    # Kineto's own layout: one key per line inside each event.
    path.write_text('{"traceEvents": [\n' + ",\n".join(json.dumps(e, indent=2) for e in trace.events) + "\n]}")
    sql = ("select (select count(*) from slice) as slices, (select count(*) from flow) as flows, "
           "(select count(*) from args where key like 'args.Input Dims%') as dims, "
           "(select count(*) from args where key like 'args.Input type%') as types")
    with open_trace(path) as full, open_trace(path, EngineConfig(lean=True)) as lean:
        # 7 slices; 1 flow; the dims [[8, 4], []] are 2 leaf args; 2 Input type args.
        assert full.query(sql).iloc[0].tolist() == [7, 1, 2, 2]
        assert lean.query(sql).iloc[0].tolist() == [7, 0, 0, 2]




def test_lean_load_keeps_exactly_what_counts_read() -> None:
    path = Path(__file__).parent / "data" / "kineto_layouts.json"
    lean = json.loads(canonical_text(path, lean=True))
    kept = [(e["name"], e.get("args")) for e in lean["traceEvents"] if e["ph"] == "X"]
    assert kept == [
        # aten::copy_ and aten::select launch nothing themselves: left out. aten::mm holds the launch call.
        ("aten::mm", {"Input type": ["float", "float"]}),
        ("cudaLaunchKernel", {"correlation": 77}),
        # The quoted key inside the name is only part of the name.
        ('void k<"External id": 1, >()', {"correlation": 77, "device": 0, "stream": 7}),
        # A kernel without a launch call is a GPU event all the same.
        ("rocm_kernel", {"correlation": 17375, "device": 2, "stream": 0}),
    ]
    full = json.loads(canonical_text(path))
    assert [e["args"] for e in full["traceEvents"] if e["ph"] == "X"] == \
        [e["args"] for e in json.loads(path.read_bytes())["traceEvents"]]  # a full load keeps every arg


def test_memory64_is_chosen_by_the_json_fed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "WasmBackend", lambda memory64, cache_dir: memory64)
    gib = 1 << 30
    # The processor's heap is ~2x the JSON it is fed: memory64 above 1.5 GiB of it, lean or not
    # (a lean load feeds less of the same file).
    for config in (EngineConfig(wasm_only=True), EngineConfig(wasm_only=True, lean=True)):
        assert [backends.select_backend(config, size) for size in (gib, 2 * gib)] == [False, True]
    assert backends.select_backend(EngineConfig(wasm_only=True, memory64=False), 4 * gib) is False


def test_out_of_memory_crash_log_reads_as_out_of_wasm_memory() -> None:
    # What the v52 processor logs when its heap cannot grow: the reason, then a pre-crash log that ends in a marker.
    stderr = ["[1120.562] ... PERFETTO_CHECK(res) (errno: 48, Out of memory)",
              "-----BEGIN PERFETTO PRE-CRASH LOG-----\ntrace_uuid: 5cf1\nLoading trace 1536.00 MB\n"
              "-----END PERFETTO PRE-CRASH LOG-----\n"]
    logged = wasm_traps.meaningful_log_lines(stderr)
    assert logged == ["[1120.562] ... PERFETTO_CHECK(res) (errno: 48, Out of memory)"]
    message = wasm_traps.wasmtime_message(RuntimeError("wasm trap: wasm `unreachable` executed"))
    reason = wasm_traps.trap_reason(message, logged)
    # The reason names the heap: the processor logged its allocation failure before it aborted.
    assert reason == "trace processor ran out of wasm memory ([1120.562] ... PERFETTO_CHECK(res) (errno: 48, Out of memory))"


def test_host_functions_get_i32_arguments_unsigned() -> None:
    import wasmtime

    seen = []
    i32 = wasmtime.ValType.i32()
    typed = wasm_imports.typed(lambda size: seen.append(size) or size, wasmtime.FuncType([i32], [i32]))
    # wasmtime-py passes a 3 GiB heap request as -1073741824; the handler must see 3221225472, and an i32
    # result above 2**31 goes back signed.
    assert typed(-(1 << 30)) == -(1 << 30)
    assert seen == [3 << 30]


def test_prefetch_hands_over_chunks_errors_and_stops_early() -> None:
    closed = []

    def source(fail_after: int | None = None):
        try:
            for i in range(100):
                if i == fail_after:
                    raise TraceLoadError(None, "corrupt gzip data")
                yield bytes([i])
        finally:
            closed.append(True)

    assert b"".join(prefetch(source())) == bytes(range(100))
    with pytest.raises(TraceLoadError, match="corrupt gzip"):
        list(prefetch(source(fail_after=3)))
    chunks = prefetch(source())
    assert next(chunks) == b"\x00"
    chunks.close()  # the consumer gave up (the processor failed): the reader thread ends, the file closes
    assert closed == [True, True, True]
    assert not [t for t in threading.enumerate() if t.name == "traceview-prefetch"]


SPIN = "(module (func (export \"spin\") (loop (br 0))) (func (export \"idle\") (param i32) (result i32) local.get 0))"


def spinning_module():
    engine_config = wasmtime.Config()
    engine_config.epoch_interruption = True
    engine = wasmtime.Engine(engine_config)
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, SPIN), []).exports(store)
    return engine, store, exports


def test_the_watchdog_stops_a_spinning_processor_by_its_cpu_time() -> None:
    engine, store, exports = spinning_module()
    dog = watchdog.CpuWatchdog(engine)
    try:
        start = time.thread_time()
        with pytest.raises(wasmtime.Trap) as trap, dog.guard(store, budget_cpu_seconds=0.3):
            exports["spin"](store)
        assert watchdog.is_interrupt(trap.value)
        assert time.thread_time() - start >= 0.3 - 2 * watchdog.TICK_CPU_SECONDS  # its CPU budget, not less
        with dog.guard(store, budget_cpu_seconds=None):  # a query: no deadline to run into
            assert exports["idle"](store, 7) == 7
    finally:
        dog.stop()


def test_a_load_gets_a_budget_and_a_query_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budgets = []
    real_guard = watchdog.CpuWatchdog.guard

    def recording_guard(self, store, budget_cpu_seconds):
        budgets.append(budget_cpu_seconds)
        return real_guard(self, store, budget_cpu_seconds)

    monkeypatch.setattr(watchdog.CpuWatchdog, "guard", recording_guard)
    path = write_trace(tmp_path / "t.json", small_trace().events)
    with open_trace(path, EngineConfig(wasm_only=True)) as trace:
        budgets.clear()
        trace.query("select count(*) from slice")
        assert budgets and set(budgets) == {None}
    budgets.clear()
    with open_trace(path, EngineConfig(wasm_only=True)):
        pass
    # 60 CPU-s, plus 600 per GB fed: the appends and the finalize of a few hundred bytes.
    assert [b for b in budgets if b is not None] and all(60 <= b < 61 for b in budgets if b is not None)


@pytest.mark.parametrize("size", [0, 3, 127, 128, 300, 1 << 20])
def test_hand_framed_append_request_equals_protobuf(size: int) -> None:
    from perfetto.trace_processor.platform import PlatformDelegate
    from perfetto.trace_processor.protos import ProtoFactory

    from traceview.engine.backends import append_request

    protos = ProtoFactory(PlatformDelegate())
    stream = protos.TraceProcessorRpcStream()
    message = stream.msg.add()
    message.request = protos.TraceProcessorRpc.TPM_APPEND_TRACE_DATA
    chunk = bytes(range(256)) * (size // 256) + bytes(size % 256)
    message.append_trace_data = chunk
    assert append_request(chunk) == stream.SerializeToString()


def test_first_load_compiles_the_processor_once_and_says_so(tmp_path: Path) -> None:
    from traceview.cli.common import _loading

    config = EngineConfig(wasm_only=True, cache_dir=tmp_path / "wasm")
    path = write_trace(tmp_path / "t.json", small_trace().events)
    assert not processor_ready(config)
    assert _loading(path, config) == "loading t.json (and compiling the trace processor: once, ~20 s)"
    with open_trace(path, config) as trace:  # compiled on a thread while the JSON was decoded
        assert trace.query("select count(*) as n from slice").n.iloc[0] == 7
    assert processor_ready(config) and _loading(path, config) == "loading t.json"
    assert [p.suffix for p in (tmp_path / "wasm").iterdir()] == [".cwasm"]  # no temporary file left


def test_a_file_read_by_ranges_feeds_the_same_json_as_a_stream(tmp_path: Path) -> None:
    # An uncompressed file is read by the decoding processes, piece by piece; the same file streamed
    # (as a gzipped one is) must give the same canonical JSON, whatever the piece size.
    trace = small_trace()
    trace.events.append({"ph": "X", "cat": "cpu_op", "name": 'a "}, {" b', "pid": 100, "tid": 100,
                         "ts": 60, "dur": 1, "args": {"x": [{"y": 1}, {"z": 2}]}})  # cuts that are not cuts
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": trace.events, "traceName": "x ] }"}, indent=1))
    streamed = canonical_text(path, 7, piece_bytes=64)
    for piece_bytes in (32, 64, 200, 1 << 20):
        info = inspect_file(path)
        ranged = CanonicalJson(path, path, info.size, JsonLoadOptions(piece_bytes=piece_bytes))
        assert b"".join(ranged.chunks()) == streamed, piece_bytes
