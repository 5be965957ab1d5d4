"""Per-step counts: steps, attribution on args.correlation, category rules. Exact counts throughout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import public_trace, write_trace
from kineto import KinetoTrace

from traceview.cli.app import run
from traceview.errors import RulesError
from traceview.model.categories import load_category_rules
from traceview.model.counts import _rows_where, analyze

FILL = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >"
CUDA_COPY = ("void at::native::vectorized_elementwise_kernel<4, at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)"
             "::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, "
             "at::detail::Array<char*, 2> >")
CUDA_CAST_BY_NAME = ("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)"
                     "::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, "
                     "std::array<char*, 2ul>, 4, TrivialOffsetCalculator<1, unsigned int>, TrivialOffsetCalculator<1, "
                     "unsigned int>, at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1> >")
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"
METADATA_TRITON = "kn_get_mla_metadata_v1_demo"


def counts_of(tmp_path: Path, trace: KinetoTrace, **kwargs):
    return analyze(write_trace(tmp_path / "t.json", trace.events), **kwargs)


def eager_steps(n_steps: int = 2) -> KinetoTrace:
    """Per step: 2 fills, 1 bf16->fp32 cast, 1 bf16->bf16 copy, 1 int64->int32 cast, 1 gemm, 1 Triton
    metadata kernel launched through the driver. The three copies share one kernel name (whose
    vectorized path would say "copy"): the launching op's dtypes outrank the name."""
    t = KinetoTrace()
    for s in range(n_steps):
        base = 1000 * s
        t.annotation(f"ProfilerStep#{s}", ts=base, dur=900)
        t.annotation(f"ProfilerStep#{s}", ts=base + 5, dur=900, cat="gpu_user_annotation", tid=7)
        for i in range(2):
            t.op("aten::fill_", ts=base + 10 + 20 * i, dur=10, input_types=["float", "Scalar"])
            t.launch(ts=base + 12 + 20 * i, kernels=[FILL])
        for k, types in enumerate((["float", "c10::BFloat16", "bool"], ["c10::BFloat16", "c10::BFloat16", "bool"],
                                   ["int", "long int", "bool"])):
            t.op("aten::copy_", ts=base + 100 + 20 * k, dur=10, input_types=types)
            t.launch(ts=base + 102 + 20 * k, kernels=[CUDA_COPY])
        t.op("aten::mm", ts=base + 200, dur=10, input_types=["c10::BFloat16", "c10::BFloat16"])
        t.launch(ts=base + 202, kernels=[GEMM])
        t.launch(ts=base + 300, kernels=[METADATA_TRITON], api="cuLaunchKernelEx", cat="cuda_driver")
    return t


def test_eager_counts_and_dtype_trap(tmp_path: Path) -> None:
    counts = counts_of(tmp_path, eager_steps())
    per_step = counts.per_step()
    assert counts.step_marker == "torch-profiler-step"
    assert len(counts.steps) == 2  # ProfilerStep#N is counted once although the GPU copy exists too
    for step in (0, 1):
        row = per_step.loc[step]
        # 2 fill_; casts: bf16->fp32 and int64->int32 (dtypes differ); 1 same-dtype copy; 1 gemm; 1 Triton metadata.
        assert (row["fill"], row["cast"], row["copy"], row["gemm"], row["metadata"]) == (2, 2, 1, 1, 1)
        assert row.sum() == 7
    kernels = counts.kernels()
    casts = kernels[kernels.category == "cast"]
    assert sorted(zip(casts.src_dtype, casts.dst_dtype, casts.per_step)) == [
        ("bfloat16", "float32", 1.0), ("int64", "int32", 1.0)]
    assert counts.steps[["launches", "graph_replayed", "direct"]].values.tolist() == [[7, 0, 7], [7, 0, 7]]
    assert counts.outside_steps() == {"before_first_step": 0, "after_last_step": 0, "between_steps": 0, "no_launch": 0}


def test_in_steps_and_per_step_are_made_once_but_handed_out_as_copies(tmp_path: Path) -> None:
    """Both are kept on the result after the first call (a diff asks 6 and 2 times); what a caller does
    to the frame it got must not reach the next caller."""
    counts = counts_of(tmp_path, eager_steps())
    rows, table = counts.in_steps(), counts.per_step()
    rows.loc[:, "launches"] = 0  # in place, on the caller's copy
    table.loc[:, "fill"] = 99
    assert counts.in_steps()["launches"].sum() == 14  # 7 launches in each of the 2 steps (eager_steps)
    assert counts.per_step()["fill"].tolist() == [2, 2]
    assert counts.summary().at["total", "mean"] == 7.0


@pytest.mark.parametrize("picked", [[1, 2, 3], [0, 1, 2, 3, 4], [0, 2, 4], [4], []])
def test_rows_where_is_the_mask_and_a_block_is_a_slice(picked: list[int]) -> None:
    frame = pd.DataFrame({"step": pd.array([None, 0, 0, 1, 2], dtype="Int64"),
                          "kernel": pd.array(["a", "b", "c", "d", "e"], dtype="string"),
                          "launches": np.arange(5, dtype="int64")})
    mask = pd.Series([i in picked for i in range(5)])
    got = _rows_where(frame, mask)
    pd.testing.assert_frame_equal(got, frame[mask])
    is_block = bool(picked) and picked == list(range(picked[0], picked[-1] + 1))
    # A block is handed out as a slice of the columns (no copy); anything else is picked row by row.
    assert np.shares_memory(got["launches"].to_numpy(), frame["launches"].to_numpy()) == is_block


def test_in_steps_keeps_exactly_the_rows_with_a_step(tmp_path: Path) -> None:
    t = eager_steps()
    t.launch(ts=5000, kernels=[GEMM])  # after the last step: the one launch outside
    counts = counts_of(tmp_path, t)
    pd.testing.assert_frame_equal(counts.in_steps(), counts.launches[counts.launches["step"].notna()])
    assert (len(counts.launches), counts.in_steps()["launches"].sum()) == (len(counts.in_steps()) + 1, 14)


def test_graph_replay_kernels_count_by_name(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.annotation("ProfilerStep#0", ts=0, dur=500)
    # One cudaGraphLaunch replays 3 casts (no aten op above: the name is the evidence), 1 copy, 2 gemms.
    t.launch(ts=10, api="cudaGraphLaunch", kernels=[CUDA_CAST_BY_NAME] * 3 + [CUDA_COPY] + [GEMM] * 2)
    t.op("aten::fill_", ts=100, dur=10, input_types=["float", "Scalar"])
    t.launch(ts=102, kernels=[FILL])
    counts = counts_of(tmp_path, t)
    row = counts.per_step().loc[0]
    # The copy replayed from the graph has no dtypes, but its name is PyTorch's vectorized path,
    # which runs only when no tensor needs a cast: a copy.
    assert (row["cast"], row["copy"], row["copy_dtype_unknown"], row["gemm"], row["fill"]) == (3, 1, 0, 2, 1)
    assert counts.steps[["launches", "graph_replayed", "direct"]].values.tolist() == [[7, 6, 1]]


def test_rocm_names(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.annotation("ProfilerStep#0", ts=0, dur=500)
    t.launch(ts=10, api="hipLaunchKernel", kernels=[
        "void at::native::vectorized_elementwise_kernel<8, at::native::bfloat16tofloat32_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda(c10::BFloat16)#1}>"])
    t.launch(ts=20, api="hipMemsetAsync", kernels=["__amd_rocclr_fillBufferAligned"])
    t.launch(ts=30, api="hipExtModuleLaunchKernel", kernels=["kn_get_mla_metadata_v1_0"])
    t.launch(ts=40, api="hipLaunchKernel", kernels=[
        "void at::native::elementwise_kernel_manual_unroll<128, 4, at::native::gpu_kernel_impl<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}>"])
    t.launch(ts=50, api="hipLaunchKernel", kernels=[
        "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}>"])
    t.launch(ts=60, api="hipGraphLaunch", kernels=["Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT256x32x64"] * 2)
    t.launch(ts=70, api="hipMemsetAsync", kernels=["Memset (Device)"], gpu_cat="gpu_memset")
    row = counts_of(tmp_path, t).per_step().loc[0]
    # named cast + gpu_kernel_impl cast = 2; fillBufferAligned kernel + memset = 2 fills; nocast = copy.
    assert (row["cast"], row["fill"], row["metadata"], row["copy"], row["gemm"]) == (2, 2, 1, 1, 2)


def test_annotation_rule_sees_only_the_launching_thread(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.annotation("ProfilerStep#0", ts=0, dur=500)
    t.annotation("get_mla_metadata", ts=10, dur=20)
    t.launch(ts=15, kernels=[GEMM])  # under the record_function: metadata by the annotation rule
    t.launch(ts=40, kernels=[GEMM])  # same thread, after the annotation ended
    t.launch(ts=16, kernels=[GEMM], tid=200)  # inside its time range, but on a thread without annotations
    counts = counts_of(tmp_path, t)
    row = counts.per_step().loc[0]
    assert (row["metadata"], row["gemm"], row.sum()) == (1, 2, 3)


def test_outside_steps_and_no_launch(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.launch(ts=5, kernels=[GEMM])  # before the first step
    t.annotation("ProfilerStep#0", ts=10, dur=100)
    t.launch(ts=20, kernels=[GEMM])
    t.launch(ts=150, kernels=[GEMM, GEMM])  # between steps (2 kernels, one launch)
    t.annotation("ProfilerStep#1", ts=200, dur=100)
    t.launch(ts=210, kernels=[FILL])
    t.launch(ts=400, kernels=[FILL])  # after the last step
    t.launch(ts=220, kernels=[GEMM], with_launch=False)  # kernel whose launch is not in the trace
    counts = counts_of(tmp_path, t)
    assert counts.outside_steps() == {"before_first_step": 1, "after_last_step": 1, "between_steps": 2,
                                      "no_launch": 1}
    assert counts.steps.launches.tolist() == [1, 1]
    assert counts.total_gpu_events == 7  # nothing lost: 2 in steps + 5 outside
    assert any("1 GPU events have no launch call" in w for w in counts.warnings)


def test_fallback_without_correlation_uses_gpu_annotations(tmp_path: Path) -> None:
    t = KinetoTrace()
    for s in range(2):
        t.annotation(f"ProfilerStep#{s}", ts=1000 * s, dur=500)
        t.annotation(f"ProfilerStep#{s}", ts=1000 * s, dur=600, cat="gpu_user_annotation", tid=7)
        t.gpu_clock = 1000 * s
        t.launch(ts=1000 * s + 10, kernels=[GEMM] * (s + 1), correlation=False)
    counts = counts_of(tmp_path, t)
    assert counts.steps.launches.tolist() == [1, 2]  # by GPU time inside each step's GPU annotation
    assert any("by GPU time" in w for w in counts.warnings)


def test_step_markers_vllm_sglang_custom_and_none(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.annotation("execute_context_0(0)_generation_32(32)", ts=0, dur=100)
    t.launch(ts=10, kernels=[GEMM])
    t.annotation("execute_32_context_0(sq0sk0sqsq0sqsk0)_generation_32(sq32sk55086sqsq32sqsk55086)", ts=200, dur=100)
    t.launch(ts=210, kernels=[GEMM, GEMM])
    t.annotation("step[DECODE bs=32]", ts=400, dur=100)
    t.launch(ts=410, kernels=[FILL])
    counts = counts_of(tmp_path, t)
    assert (counts.step_marker, counts.steps.launches.tolist()) == ("vllm-execute", [1, 2])
    custom = counts_of(tmp_path, t, step_marker=r"^step\[DECODE")
    assert (custom.step_marker, custom.steps.launches.tolist()) == ("custom", [1])
    none = counts_of(tmp_path, t, step_marker="^no_such_marker$")
    assert none.step_marker == "whole-trace" and none.steps.launches.tolist() == [4]
    assert "no step marker found" in none.warnings[0] and "no_such_marker" in none.warnings[0]


def test_legacy_2021_categories(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.annotation("ProfilerStep#5", ts=0, dur=100, cat="Operator")
    t.launch(ts=10, kernels=[GEMM], cat="Runtime", gpu_cat="Kernel")
    t.launch(ts=20, kernels=["Memset (Device)"], api="cudaMemsetAsync", cat="Runtime", gpu_cat="Memset")
    t.launch(ts=30, kernels=["Memcpy HtoD (Pageable -> Device)"], api="cudaMemcpyAsync", cat="Runtime",
             gpu_cat="Memcpy")
    row = counts_of(tmp_path, t).per_step().loc[0]
    assert (row["gemm"], row["fill"], row["copy"]) == (1, 1, 1)


def test_rules_file_replaces_and_errors(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('schema_version = 1\n[[rule]]\ncategory = "mine"\nkernel = "gemm"\n')
    counts = counts_of(tmp_path, eager_steps(1), rules_path=rules)
    assert counts.categories == ["mine", "other"]
    assert counts.per_step().loc[0].to_dict() == {"mine": 1, "other": 6}
    for text, message in [("schema_version = 2\n", "schema_version must be 1"),
                          ('schema_version = 1\n[[rule]]\ncategory = "x"\nkernel = "("\n', "bad regex"),
                          ('schema_version = 1\n[[rule]]\ncategory = "x"\n', "needs at least one condition"),
                          ('schema_version = 1\n[[rule]]\ncategory = "x"\nkind = "gpu"\n', "kind must be"),
                          ("schema_version = [", "invalid TOML")]:
        rules.write_text(text)
        with pytest.raises(RulesError, match=message.replace("(", r"\(")):
            load_category_rules(rules)


def test_counts_cli_json_and_bad_rules(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_trace(tmp_path / "t.json", eager_steps().events)
    assert run(["counts", str(path), "--format", "json", "--skip", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "traceview.counts/2" and len(doc["steps"]) == 2 and doc["outside_steps"] == 0
    assert doc["steps"][0]["categories"]["cast"] == 2 and doc["summary"]["total"]["mean"] == 7.0
    bad = tmp_path / "bad.toml"
    bad.write_text("schema_version = 1\n")
    assert run(["counts", str(path), "--rules", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"traceview: {bad}: needs at least one [[rule]] table"


def test_counts_directory_of_ranks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ranks = tmp_path / "run"
    ranks.mkdir()
    write_trace(ranks / "trace_tp0.pt.trace.json", eager_steps().events)
    write_trace(ranks / "trace_tp1.pt.trace.json", eager_steps(3).events)
    assert run(["counts", str(ranks), "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert list(doc["ranks"]) == ["rank0", "rank1"]
    assert [len(doc["ranks"][r]["steps"]) for r in ("rank0", "rank1")] == [2, 3]
    assert doc["notes"] == []  # same per-step counts on both ranks
    # --skip 2 leaves rank0 (2 steps) nothing: exit 2, as diff and check do, naming the rank's file.
    assert run(["counts", str(ranks), "--format", "json", "--skip", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().endswith(f"{ranks / 'trace_tp0.pt.trace.json'}: --skip 2 leaves no steps: the trace "
                                         "has 2 step(s) (torch-profiler-step)")


# Public traces: numbers from each PROVENANCE.md ("Facts computed from the file").
PUBLIC_CASES = [
    # folder, file, steps, GPU events per step (kernels + memcpy + memset), outside steps
    ("resnet-actckpt-ddp-mi300x", "resnet_act_checkpoint.json.gz", 3, [746 + 122 + 27] * 3, 968),
    ("kineto-resnet50-v100-legacy", "worker0.1623143089861.pt.trace.json.gz", 6, [1462 + 52 + 2] * 6, 0),
    ("hta-minitoy-mi250", "mi250_minitoy_train_ROCm6_2_kineto.json.gz", 2, [14 + 2, 0], 0),
    ("vllm-decode-fullgraph-mi300x", "graph_execution.json.gz", 1, [425 + 9], 0),
    ("xdit-flux1-aiter-mi300x", "profile_trace_rank_0.json.gz", 1, [7830 + 36], 0),
]


@pytest.mark.parametrize("folder,name,n_steps,per_step,outside", PUBLIC_CASES)
def test_public_traces_exact(folder: str, name: str, n_steps: int, per_step: list[int], outside: int) -> None:
    counts = analyze(public_trace(folder, name))
    assert len(counts.steps) == n_steps
    assert counts.steps.launches.tolist() == per_step
    assert sum(counts.outside_steps().values()) == outside


def test_public_a100_graph_replays_and_losses() -> None:
    counts = analyze(public_trace("hta-a100-cudagraph-steps", "rank0.json.gz"))
    # PROVENANCE: per step 1,075 kernels + 250 memcpy + 50 memset = 1,375; 135 kernels in 70 cudaGraphLaunch
    # calls, 14 per step. 872 GPU ops outside steps. The JSON holds 6080 + 1390 + 277 = 7747 GPU events.
    assert counts.total_gpu_events == 7747
    # Read through a double, the epoch-scale timestamps made one cudaMemcpyAsync of ProfilerStep#554 look
    # improperly nested, and the processor dropped it (the step read 1,374). Fed exact, it nests; all 872
    # GPU ops outside the steps have no launch call in the file. One memcpy starts before the previous one
    # on its stream ends: it is kept on an overlap lane, and a note says so.
    assert counts.steps.launches.tolist() == [1375, 1375, 1375, 1375, 1375]
    assert counts.outside_steps()["no_launch"] == 872
    assert any(w.startswith("kept on overlap lanes") and w.endswith(": 1 memcpy") for w in counts.warnings)


def rocprofv3_pftrace(path: Path) -> Path:
    """A .pftrace shaped like rocprofv3's Perfetto output: a roctx range (marker_api), hip_api calls
    and kernel_dispatch slices on a GPU track, linked by the debug.corr_id annotation."""
    from perfetto.trace_builder.proto_builder import TraceProtoBuilder

    builder = TraceProtoBuilder()
    for uuid, name in ((1, "THREAD 0 (100)"), (2, "COMPUTE AGENT [0] STREAM [0] (GPU)")):
        packet = builder.add_packet()
        packet.track_descriptor.uuid = uuid
        packet.track_descriptor.name = name

    def slice_(track: int, category: str, name: str, begin: int, end: int, corr: int | None) -> None:
        for ts, kind in ((begin, 1), (end, 2)):
            packet = builder.add_packet()
            packet.timestamp = ts
            packet.trusted_packet_sequence_id = 1
            packet.track_event.type = kind
            packet.track_event.track_uuid = track
            if kind == 1:
                packet.track_event.name = name
                packet.track_event.categories.append(category)
                if corr is not None:
                    note = packet.track_event.debug_annotations.add()
                    note.name, note.int_value = "corr_id", corr

    slice_(1, "marker_api", "ProfilerStep#1", 1000, 9000, None)
    slice_(1, "hip_api", "hipLaunchKernel", 2000, 2100, 11)
    slice_(1, "hip_api", "hipExtModuleLaunchKernel", 3000, 3100, 12)
    slice_(2, "kernel_dispatch", "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
           5000, 5100, 11)
    slice_(2, "kernel_dispatch", "kn_get_mla_metadata_v1_0", 5200, 5300, 12)
    slice_(1, "hip_api", "hipLaunchKernel", 9500, 9600, 13)  # after the step
    slice_(2, "kernel_dispatch", "Cijk_Alik_Bljk_BBS_BH_MT256x32x64", 9700, 9800, 13)
    path.write_bytes(builder.serialize())
    return path


def test_rocprofv3_pftrace_counts(tmp_path: Path) -> None:
    counts = analyze(rocprofv3_pftrace(tmp_path / "run.pftrace"))
    row = counts.per_step().loc[0]
    # The step holds the two launches at 2000 and 3000 ns; the GEMM's launch (9500) is after it.
    assert (len(counts.steps), row["fill"], row["metadata"], row.sum()) == (1, 1, 1, 2)
    assert counts.outside_steps()["after_last_step"] == 1


def test_output_file_is_written_whole_with_normal_mode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_trace(tmp_path / "t.json", eager_steps().events)
    out = tmp_path / "counts.json"
    old = os.umask(0o022)
    try:
        assert run(["counts", str(path), "-f", "json", "-o", str(out)]) == 0
    finally:
        os.umask(old)
    assert json.loads(out.read_text())["schema"] == "traceview.counts/2"
    assert out.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".counts.json")] == []  # no temp left
    assert run(["counts", str(tmp_path / "missing.json"), "-f", "json", "-o", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


def test_counts_are_cached_unless_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    from traceview.cache import cache_info

    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(tmp_path / "cache"))
    first = write_trace(tmp_path / "a.json", eager_steps().events)
    second = write_trace(tmp_path / "b.json", eager_steps(3).events)

    def counts(*args: str) -> dict:
        assert run(["counts", *args, "-f", "json"]) == 0
        return json.loads(capsys.readouterr().out)

    computed = counts(str(first))
    assert cache_info().entries == 1
    assert len(counts(str(second), "--no-cache")["steps"]) == 3
    assert cache_info().entries == 1  # --no-cache neither reads nor writes an entry
    assert counts(str(first)) == computed  # served from the entry: the same document


def test_counts_many_traces_in_parallel(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for n in (1, 2, 3):
        write_trace(tmp_path / f"run_{n}.json", eager_steps(n).events)
    assert run(["counts", str(tmp_path / "run_*.json"), "--jobs", "2", "-f", "json", "--no-cache"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # One document per trace, in path order, each with its own number of steps.
    assert [len(d["steps"]) for d in doc["ranks"].values()] == [1, 2, 3]
    assert run(["counts", str(tmp_path / "nothing_*.json")]) == 2
    assert "no file matches this pattern" in capsys.readouterr().err


def test_unfinished_step_and_string_correlation(tmp_path: Path) -> None:
    t = KinetoTrace()
    t.annotation("ProfilerStep#0", ts=0, dur=100)
    t.launch(ts=10, kernels=[GEMM])
    corr = t.launch(ts=20, kernels=[FILL])
    for event in t.events:  # this launch pair writes its correlation as a string
        if event["args"].get("correlation") == corr:
            event["args"]["correlation"] = str(corr)
    t.events.append({"ph": "B", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 100, "tid": 100,
                     "ts": 200, "args": {}})  # begins, never ends: not a step
    counts = counts_of(tmp_path, t)
    assert len(counts.steps) == 1
    assert counts.per_step().loc[0, ["gemm", "fill"]].tolist() == [1, 1]  # "1002" joins like 1002


@pytest.mark.parametrize("command", ["steps", "kernels", "counts"])
def test_unknown_frame_format_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    out = tmp_path / "out.xml"
    # Rejected before any trace is read: the trace does not even exist.
    assert run([command, str(tmp_path / "absent.json"), "--format", "xml", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'xml' is not one of 'table', 'json', 'csv', 'markdown', 'junit'" in err and "Traceback" not in err
    assert not out.exists()
