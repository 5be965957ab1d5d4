"""Every GPU event in the file reaches the counts (issue 15).

Each case is a small trace built to trigger one way the trace processor's own
JSON import loses events, checked two ways: fed as is, the processor loses the
event (so the fixture really triggers it), and through traceview's loader the
count is exact.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import reference
from conftest import public_trace, write_trace

from traceview.cache import wasm_dir
from traceview.engine import EngineConfig, open_trace
from traceview.engine.backends import select_backend
from traceview.engine.formats import inspect_file, iter_chunks
from traceview.errors import TraceLoadError
from traceview.model.counts import analyze

PID, GPU_PID, STREAM = 100, 0, 7
PUBLIC_KINETO = [
    ("hta-a100-cudagraph-steps", "rank0.json.gz"),
    ("hta-v100-cudagraph-steps", "test.json.gz"),
    ("hta-minitoy-mi250", "mi250_minitoy_train_ROCm6_2_kineto.json.gz"),
    ("kineto-resnet50-v100-legacy", "worker0.1623143089861.pt.trace.json.gz"),
    ("resnet-actckpt-ddp-mi300x", "resnet_act_checkpoint.json.gz"),
    ("sglang-qwen3-8b-decode-mi300x", "sglang_Qwen3-8B_decode.json.gz"),
    ("vllm-decode-fullgraph-mi300x", "graph_execution.json.gz"),
    ("vllm-prefilldecode-piecewise-mi300x", "graph_execution.json.gz"),
    ("xdit-flux1-aiter-mi300x", "profile_trace_rank_0.json.gz"),
]


def x(cat: str, name: str, ts, dur, pid: int = PID, tid: int = PID, **args) -> dict:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def launch_and_kernel(corr: int, launch_ts, kernel_ts, kernel_dur, name: str = "k", cat: str = "kernel") -> list[dict]:
    return [x("cuda_runtime", "cudaLaunchKernel", launch_ts, 1, correlation=corr),
            x(cat, name, kernel_ts, kernel_dur, pid=GPU_PID, tid=STREAM, correlation=corr, device=0, stream=STREAM)]


def processor_alone(path: Path) -> dict[str, int]:
    """Slices per category when the file goes to the trace processor as is (its own JSON import)."""
    backend = select_backend(EngineConfig(wasm_only=True, cache_dir=wasm_dir()), 0)
    try:
        backend.load(iter_chunks(inspect_file(path)))
        frame = backend.query("select category, count(*) as n from slice group by category")
        return dict(zip(frame["category"].astype(object), frame["n"]))
    finally:
        backend.close()


def test_kernels_overlapping_on_one_stream_are_all_counted(tmp_path: Path) -> None:
    # Programmatic dependent launch: the second kernel starts 0.128 us before the first ends.
    events = [x("user_annotation", "ProfilerStep#1", 0, 1000)]
    events += launch_and_kernel(1, 10, 100, 5.0)
    events += launch_and_kernel(2, 20, 104.872, 5.0)
    events += launch_and_kernel(3, 30, 110, 5.0)
    path = write_trace(tmp_path / "pdl.json", events)
    assert processor_alone(path)["kernel"] == 2  # the processor drops the overlapping one
    counts = analyze(path)
    assert counts.steps.launches.tolist() == [3]
    assert any(w.startswith("kept on overlap lanes") and w.endswith(": 1 kernel") for w in counts.warnings)
    with open_trace(path) as trace:  # the lane sits beside its stream, named after it
        names = trace.query("select name from thread where name like '%overlap lane%'").name.tolist()
    assert names == ["7 (overlap lane 1)"]


def test_improperly_nested_launch_call_is_counted(tmp_path: Path) -> None:
    # A cudaMemcpyAsync that starts inside its op and ends after it.
    events = [x("user_annotation", "ProfilerStep#1", 0, 1000), x("cpu_op", "aten::copy_", 100, 10),
              x("cuda_runtime", "cudaMemcpyAsync", 105, 10, correlation=9),
              x("gpu_memcpy", "Memcpy HtoD", 130, 2, pid=GPU_PID, tid=STREAM, correlation=9, device=0)]
    path = write_trace(tmp_path / "nested.json", events)
    assert processor_alone(path).get("cuda_runtime", 0) == 0  # the processor drops the call
    counts = analyze(path)
    assert counts.steps.launches.tolist() == [1]
    assert counts.outside_steps()["no_launch"] == 0


def test_epoch_timestamps_are_exact(tmp_path: Path) -> None:
    # Back to back on one stream: A = [...582.740, ...583.040], B = [...583.040, ...583.240] (us).
    # The processor reads ts through a double (0.25 us apart at this scale): A lands on
    # [...582.848, ...583.148] and B starts at 583.000, inside A, ending after it: B is dropped.
    base = "1712195495505"
    events = [x("user_annotation", "ProfilerStep#1", Decimal(base + "000.000"), Decimal("1000.000"))]
    events += launch_and_kernel(1, Decimal(base + "100.000"), Decimal(base + "582.740"), Decimal("0.300"))
    events += launch_and_kernel(2, Decimal(base + "101.000"), Decimal(base + "583.040"), Decimal("0.200"))
    path = tmp_path / "epoch.json"
    path.write_bytes(msgspec.json.Encoder(decimal_format="number").encode({"traceEvents": events}))
    assert processor_alone(path)["kernel"] == 1
    counts = analyze(path)
    assert counts.steps.launches.tolist() == [2]
    assert counts.warnings == []
    with open_trace(path) as trace:  # times come back exact, relative to the time base
        ts = trace.query("select ts + dur as end_ns from slice where category = 'kernel' order by ts").end_ns
        assert [int(v) + trace.time_base_ns for v in ts] == [1712195495505583040, 1712195495505583240]


def test_processes_that_reuse_correlation_ids(tmp_path: Path) -> None:
    # The same two steps twice: a process, then a copy under another pid 10 ms later, with the same
    # correlation ids. Each copy's 2 kernels per step belong to its own launches: [2, 2, 2, 2].
    one = [x("user_annotation", f"ProfilerStep#{s}", 1000 * s, 900) for s in (1, 2)]
    for s in (1, 2):
        for k in (1, 2):
            corr = 10 * s + k
            one += launch_and_kernel(corr, 1000 * s + 10 * k, 1000 * s + 100 + 10 * k, 5)
    copy = []
    for event in one:
        event = dict(event, ts=event["ts"] + 10_000)
        copy.append(dict(event, pid=200, tid=200) if event["pid"] == PID else event)
    path = write_trace(tmp_path / "two.json", one + copy)
    counts = analyze(path)
    assert counts.steps.launches.tolist() == [2, 2, 2, 2]
    assert any("correlation ids repeat across 2 processes" in w for w in counts.warnings)


def test_correlation_ids_past_the_lookup_table(tmp_path: Path) -> None:
    # Ids of 2**40 and more are matched by sorting, not a table indexed by id (pipeline._LOOKUP_TABLE_MAX).
    # Step 1 launches 3 kernels, step 2 launches 1, and one launch call (id 2**40 + 9) has no kernel.
    big = 1 << 40
    events = [x("user_annotation", f"ProfilerStep#{s}", 1000 * s, 900) for s in (1, 2)]
    for i, (corr, at) in enumerate([(big + 1, 1010), (big + 2, 1020), (7, 1030), (big + 3, 2010)]):
        events += launch_and_kernel(corr, at, at + 100 + i, 5)
    events.append(x("cuda_runtime", "cudaLaunchKernel", 2020, 1, correlation=big + 9))
    counts = analyze(write_trace(tmp_path / "big_ids.json", events))
    assert counts.steps.launches.tolist() == [3, 1]


def test_strict_fails_when_a_gpu_event_cannot_be_loaded(tmp_path: Path) -> None:
    # A kernel without a usable timestamp cannot be placed anywhere: reported, and fatal with strict.
    events = [x("user_annotation", "ProfilerStep#1", 0, 1000)] + launch_and_kernel(1, 10, 100, 5)
    events.append(x("kernel", "k", "soon", 5, pid=GPU_PID, tid=STREAM, correlation=2))
    path = write_trace(tmp_path / "bad_ts.json", events)
    counts = analyze(path)
    assert counts.steps.launches.tolist() == [1]
    assert "1 kernel of 2 was not imported (1 without a usable ts)" in counts.warnings
    with pytest.raises(TraceLoadError, match="--strict: 1 kernel of 2 was not imported"):
        open_trace(path, EngineConfig(strict=True))


def test_ids_the_processor_would_merge_stay_apart(tmp_path: Path) -> None:
    # The processor maps a tid of 0, a negative one and a 64-bit one all to the pid: three threads,
    # one track, and their overlapping events would be dropped. Each keeps its own thread here.
    events = [x("user_annotation", "ProfilerStep#1", 0, 1000, tid=PID)]
    for i, tid in enumerate((0, -1220540864, 139872397534784)):
        events.append(x("cpu_op", f"op{i}", 10 + i, 50, tid=tid))
    path = write_trace(tmp_path / "tids.json", events)
    assert processor_alone(path)["cpu_op"] == 1
    with open_trace(path) as trace:
        frame = trace.query("select t.name as thread from slice s join thread_track tt on tt.id = s.track_id "
                            "join thread t using (utid) where s.category = 'cpu_op' order by s.ts")
    assert frame.thread.tolist() == ["0", "-1220540864", "139872397534784"]


@pytest.mark.parametrize("folder,name", PUBLIC_KINETO)
def test_public_kineto_traces_lose_nothing(folder: str, name: str) -> None:
    path = public_trace(folder, name)
    counts = analyze(path)
    expected = reference.count(path, counts.step_regex or ".^")
    assert counts.steps.launches.tolist() == (expected.per_step or [expected.gpu_events - expected.outside])
    assert sum(counts.outside_steps().values()) == expected.outside
    assert counts.total_gpu_events == expected.gpu_events
    assert not [w for w in counts.warnings if "not imported" in w]


def _reserialized(path: Path, how: str) -> bytes:
    """The same document written another way; numbers keep their exact text (Decimal)."""
    raw = gzip.decompress(path.read_bytes())
    doc = msgspec.json.Decoder(float_hook=Decimal).decode(raw)
    if how == "sorted keys":
        return msgspec.json.Encoder(decimal_format="number", order="sorted").encode(doc)
    encoder = msgspec.json.Encoder(decimal_format="number")
    if how == "compact":
        return encoder.encode(doc)
    rest = {k: v for k, v in doc.items() if k != "traceEvents"}  # one event per line, keys first
    lines = b",\n".join(encoder.encode(e) for e in doc["traceEvents"])
    return encoder.encode(rest)[:-1] + b',\n"traceEvents": [\n' + lines + b"\n]}"


@pytest.mark.parametrize("folder,name", PUBLIC_KINETO)
def test_counts_do_not_depend_on_the_json_layout(tmp_path: Path, folder: str, name: str) -> None:
    path = public_trace(folder, name)
    original = analyze(path)
    for how in ("sorted keys", "compact", "one event per line"):
        variant = tmp_path / f"{how.replace(' ', '_')}.json"
        variant.write_bytes(_reserialized(path, how))
        counts = analyze(variant)
        assert counts.per_step().equals(original.per_step()), how
        assert counts.outside_steps() == original.outside_steps(), how
        assert counts.total_gpu_events == original.total_gpu_events, how


def test_sorted_keys_move_ph_last(tmp_path: Path) -> None:
    # The layout case the old regex rewrite missed: "ph" after "args", compact, and an escaped quote.
    events = [{"args": {}, "cat": "user_annotation", "dur": 1000, "name": "ProfilerStep#1", "ph": "X", "pid": 1,
               "tid": 1, "ts": 0},
              {"args": {"correlation": 5}, "cat": "cuda_runtime", "dur": 1, "name": 'cudaLaunch "x"', "ph": "X",
               "pid": 1, "tid": 1, "ts": 10},
              {"args": {"correlation": 5}, "cat": "kernel", "dur": 2, "name": 'k<"\\"ph\\": \\"s\\"">', "ph": "X",
               "pid": 0, "tid": 7, "ts": 20},
              {"bp": "e", "cat": "ac2g", "id": 5, "name": "ac2g", "ph": "f", "pid": 0, "tid": 7, "ts": 20}]
    path = tmp_path / "sorted.json"
    path.write_text(json.dumps({"traceEvents": events}, separators=(",", ":")))
    assert analyze(path).steps.launches.tolist() == [1]


def test_strict_flag_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from traceview.cli.app import run

    events = [x("user_annotation", "ProfilerStep#1", 0, 1000)] + launch_and_kernel(1, 10, 100, 5)
    events.append(x("kernel", "k", None, 5, pid=GPU_PID, tid=STREAM, correlation=2))  # "ts": null
    path = write_trace(tmp_path / "null_ts.json", events)
    assert run(["counts", str(path), "--no-cache", "-f", "json"]) == 0
    assert "1 kernel of 2 was not imported (1 without a usable ts)" in capsys.readouterr().err
    assert run(["counts", str(path), "--no-cache", "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        f"traceview: {path}: --strict: 1 kernel of 2 was not imported (1 without a usable ts)"]


@pytest.mark.parametrize("folder,name", [
    ("hta-a100-cudagraph-steps", "rank0.json.gz"),  # user annotations, graph launches, no-launch kernels
    ("hta-v100-cudagraph-steps", "test.json.gz"),  # overlap lanes, async_cpu_to_gpu flows
    ("xdit-flux1-aiter-mi300x", "profile_trace_rank_0.json.gz"),  # one step spanning every shard, Python frames
    ("hta-minitoy-mi250", "mi250_minitoy_train_ROCm6_2_kineto.json.gz"),  # an empty step
])
def test_sharded_counts_equal_one_processor(folder: str, name: str) -> None:
    from traceview.cache import wasm_dir

    path = public_trace(folder, name)
    one = analyze(path, config=EngineConfig(cache_dir=wasm_dir(), shards=1))
    three = analyze(path, config=EngineConfig(cache_dir=wasm_dir(), shards=3))
    _assert_same_counts(one, three)


def _assert_same_counts(one, other) -> None:
    assert other.steps.drop(columns="name").equals(one.steps.drop(columns="name"))
    # The group key (launches.GROUP_KEYS): with frame, every row of a trace sorts to one place.
    key = ["step", "outside", "kernel", "kind", "launch_api", "op", "op_type0", "op_type1", "annotation", "frame"]
    frames = [c.launches.sort_values(key, ignore_index=True).astype(str) for c in (one, other)]
    assert frames[0].equals(frames[1])
    assert other.warnings == one.warnings


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("folder,name", [
    ("hta-a100-cudagraph-steps", "rank0.json.gz"),  # 25 MB: 7 pieces of 4 MiB for the decoding processes
    ("xdit-flux1-aiter-mi300x", "profile_trace_rank_0.json.gz"),  # 63 MB: 16 pieces, Python frames
])
def test_decoding_processes_count_as_one_process(tmp_path: Path, folder: str, name: str, compressed: bool) -> None:
    """Pieces decoded by worker processes (and long tracks nested there, in parts) count exactly as
    in this process. Uncompressed, the workers read their byte ranges of the file themselves;
    compressed, they are sent the text."""
    path = public_trace(folder, name)
    if not compressed:
        path = tmp_path / name.removesuffix(".gz")
        path.write_bytes(gzip.decompress(public_trace(folder, name).read_bytes()))
    one = analyze(path, config=EngineConfig(cache_dir=wasm_dir(), workers=1, shards=1))
    pooled = analyze(path, config=EngineConfig(cache_dir=wasm_dir(), workers=3, shards=2))
    _assert_same_counts(one, pooled)


def test_no_shard_is_left_empty(tmp_path: Path) -> None:
    # The step and four launch calls start at the same instant, one call later: asked for 3 shards,
    # the bounds fall on distinct times (2 here), so there are 2 shards and each holds events.
    events = [x("user_annotation", "ProfilerStep#1", 10, 1000)]
    for corr in range(1, 5):
        events += launch_and_kernel(corr, 10, 100 + 10 * corr, 5)
    events += launch_and_kernel(9, 500, 600, 5)
    path = write_trace(tmp_path / "same_ts.json", events)
    from traceview.cache import wasm_dir
    from traceview.engine import open_sharded

    with open_sharded(path, EngineConfig(cache_dir=wasm_dir(), lean=True, shards=3)) as trace:
        assert len(trace.shards) == 2
        kernels = [int(s.query("select count(*) as n from slice where category = 'kernel'").n.iloc[0])
                   for s in trace.shards]
    assert kernels == [4, 1]
    assert analyze(path, config=EngineConfig(cache_dir=wasm_dir(), shards=3)).steps.launches.tolist() == [5]
