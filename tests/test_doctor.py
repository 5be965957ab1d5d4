"""traceview doctor: the verdict on every sample and public trace, derived from how each was made, and the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
from conftest import PUBLIC, REPO, public_trace, write_trace
from kineto import KinetoTrace

from traceview.analyses.doctor import CHECKS, examine, verdict
from traceview.cli.app import run

SAMPLES = REPO / "sample_traces"
SCHEMA = json.loads((REPO / "docs" / "schemas" / "doctor.schema.json").read_text())
CHECK_NAMES = ["conservation", "gpu-activity", "launch-pairing", "copy-dtype", "python-frames", "graph-replays",
               "step-markers", "irregular-steps", "timestamps", "profiler-window"]


@lru_cache(maxsize=None)
def findings_of(path: str, skip: int = 0) -> dict:
    """check -> Finding of one trace (each trace is loaded once per test session)."""
    found = examine(path, skip)
    assert [f.check for f in found] == CHECK_NAMES
    return {f.check: f for f in found}


def statuses(path: Path) -> dict[str, str]:
    return {check: f.status for check, f in findings_of(str(path)).items() if f.status != "PASS"}


# Sample traces (sample_traces/README.md): recorded with record_shapes on and with_stack off, except the
# demo_stack pair (with_stack on). Every recorded step is a steady decode step, so none is irregular.
@pytest.mark.parametrize("name", ["demo_eager_before", "demo_eager_after", "demo_graph_before", "demo_graph_after",
                                  "demo_vllm_eager_before", "demo_vllm_eager_after"])
def test_gpu_samples_warn_only_for_missing_frames(name):
    path = SAMPLES / f"{name}.pt.trace.json.gz"
    assert statuses(path) == {"python-frames": "WARN"}  # with_stack off: the only thing to improve
    assert verdict(list(findings_of(str(path)).values())).status == "WARN"


@pytest.mark.parametrize("name", ["demo_stack_eager_before", "demo_stack_eager_after"])
def test_stack_samples_pass_every_check(name):
    path = SAMPLES / f"{name}.pt.trace.json.gz"
    assert statuses(path) == {}  # the same loop recorded with with_stack=True: nothing left to fix
    assert findings_of(str(path))["python-frames"].numbers["python_frames"] > 0


@pytest.mark.parametrize("variant, replayed", [("before", 1084), ("after", 1026)])
def test_graph_sample_kernels_per_replay(variant, replayed):
    # sample_traces/README.md: one cudaGraphLaunch per step replays the 61 layers' kernels: 1143 - 59 eager
    # prefix kernels before (58 fills/casts... see the README), 1030 - 4 after; 5 recorded steps, 5 replays.
    finding = findings_of(str(SAMPLES / f"demo_graph_{variant}.pt.trace.json.gz"))["graph-replays"]
    assert finding.numbers == {"replays": 5, "kernels_per_replay": {"min": replayed, "median": replayed,
                                                                     "max": replayed}}


@pytest.mark.parametrize("variant", ["before", "after"])
def test_cpu_sample_fails_for_no_gpu_activity(variant):
    # The CPU pair was recorded with --device cpu: no GPU event and no CUDA call, so every count is 0.
    found = findings_of(str(SAMPLES / f"demo_cpu_eager_{variant}.pt.trace.json.gz"))
    assert found["gpu-activity"].status == "FAIL"
    assert found["gpu-activity"].numbers == {"gpu_events": 0, "launch_calls": 0}
    assert verdict(list(found.values())).status == "FAIL"


# Public traces (../shared/traces/public/*/PROVENANCE.md), those traceview reads. Expected non-PASS checks:
PUBLIC_EXPECTED = {
    # 872 GPU ops whose launch calls are not in the file (PROVENANCE: "872 GPU ops launched outside the 5 step
    # windows"); no python_function events (categories list none). Its 1 overlapping memcpy is kept on a lane.
    ("hta-a100-cudagraph-steps", "rank0.json.gz"): {"launch-pairing": "WARN", "python-frames": "WARN"},
    # The same for 614 GPU ops of the V100 trace.
    ("hta-v100-cudagraph-steps", "test.json.gz"): {"launch-pairing": "WARN", "python-frames": "WARN"},
    # 2 ProfilerSteps: #1 holds all 16 GPU events, #2 none: too few steps to tell which is steady.
    ("hta-minitoy-mi250", "mi250_minitoy_train_ROCm6_2_kineto.json.gz"):
        {"python-frames": "WARN", "irregular-steps": "WARN"},
    # 2021 schema, 6 identical steps, every launch paired; no python_function events.
    ("kineto-resnet50-v100-legacy", "worker0.1623143089861.pt.trace.json.gz"): {"python-frames": "WARN"},
    # with_stack on (34,405 python_function events); 968 GPU ops launched outside the steps have no launch call.
    ("resnet-actckpt-ddp-mi300x", "resnet_act_checkpoint.json.gz"): {"launch-pairing": "WARN"},
    # TraceLens-trimmed single-iteration windows: GPU work outlives the CPU window, and both the vLLM
    # execute_… annotation and the step marker inside it match (two families, one step each).
    ("sglang-qwen3-8b-decode-mi300x", "sglang_Qwen3-8B_decode.json.gz"):
        {"step-markers": "WARN", "profiler-window": "WARN"},
    ("vllm-decode-fullgraph-mi300x", "graph_execution.json.gz"): {"step-markers": "WARN", "profiler-window": "WARN"},
    ("vllm-prefilldecode-piecewise-mi300x", "graph_execution.json.gz"):
        {"step-markers": "WARN", "profiler-window": "WARN"},
    # One ProfilerStep with all 7,830 kernels, with_stack on: nothing to fix.
    ("xdit-flux1-aiter-mi300x", "profile_trace_rank_0.json.gz"): {},
    # Kernel dispatches only (no runtime API, no CPU side, no step marker): no GPU event can be attributed.
    ("rocprofv3-json-train-mi350x", "908_results.json.gz"): {
        "launch-pairing": "FAIL", "python-frames": "WARN", "step-markers": "WARN", "profiler-window": "WARN"},
    ("rocprofv3-kernel-trace-csv-mi300", "ps_file_kernel_trace.csv"): {
        "launch-pairing": "FAIL", "python-frames": "WARN", "step-markers": "WARN", "profiler-window": "WARN"},
    ("rocprof-v1-stencils-mi250x", "results.csv"): {
        "launch-pairing": "FAIL", "python-frames": "WARN", "step-markers": "WARN", "profiler-window": "WARN"},
    ("rocprof-v1-stencils-mi250x", "results.db"): {
        "launch-pairing": "FAIL", "python-frames": "WARN", "step-markers": "WARN", "profiler-window": "WARN"},
    # Nsight exports without NVTX step ranges; runtime calls whose GPU records are absent (24 before, 3 after).
    ("nsys-mfu-2gpu", "mfu_2gpu_before.sqlite"): {
        "launch-pairing": "FAIL", "python-frames": "WARN", "step-markers": "WARN"},
    ("nsys-mfu-2gpu", "mfu_2gpu_after.sqlite"): {
        "launch-pairing": "FAIL", "python-frames": "WARN", "step-markers": "WARN", "profiler-window": "WARN"},
}


@pytest.mark.parametrize("folder, name", sorted(PUBLIC_EXPECTED))
def test_public_trace_verdicts(folder, name):
    path = public_trace(folder, name)
    expected = PUBLIC_EXPECTED[(folder, name)]
    assert statuses(path) == expected
    want = "FAIL" if "FAIL" in expected.values() else ("WARN" if expected else "PASS")
    assert verdict(list(findings_of(str(path)).values())).status == want


def test_every_readable_public_trace_is_covered():
    if not PUBLIC.is_dir():
        pytest.skip("../shared/traces/public is absent")
    present = {(p.parent.name, p.name) for p in PUBLIC.glob("*/*") if p.name not in ("PROVENANCE.md",
                                                                                    "results.stats.csv")}
    assert present == set(PUBLIC_EXPECTED)  # results.stats.csv is a summary, not a trace (counts refuse it)


def test_public_numbers_from_provenance():
    a100 = findings_of(str(public_trace("hta-a100-cudagraph-steps", "rank0.json.gz")))
    # PROVENANCE: 6,080 kernels, 1,390 memcpys, 277 memsets, 33,924 cuda_runtime calls; 70 cudaGraphLaunch.
    assert a100["conservation"].numbers["file"] == {"kernels": 6080, "memcpys": 1390, "memsets": 277,
                                                    "launch calls": 33924}
    assert a100["conservation"].numbers["not_imported"] == {}
    assert a100["graph-replays"].numbers["replays"] == 70
    assert a100["launch-pairing"].numbers["gpu_events_without_launch_call"] == 872
    # Kineto of 2023 writes whole microseconds; the trace's timestamps are epoch-scale.
    assert a100["timestamps"].numbers["resolution_ns"] == 1000
    nsys = findings_of(str(public_trace("nsys-mfu-2gpu", "mfu_2gpu_after.sqlite")))
    assert nsys["launch-pairing"].numbers["launch_calls_without_gpu_events"] == {"cudaLaunchKernel": 3}


def _stepped_trace(path: Path, per_step: list[int]) -> Path:
    """ProfilerSteps 100 us apart; step i launches per_step[i] kernels."""
    trace = KinetoTrace()
    for i, n in enumerate(per_step):
        start = 1000.0 + 100 * i
        trace.annotation(f"ProfilerStep#{i}", start, 90)
        for k in range(n):
            trace.launch(start + 1 + k, ["void fill_kernel<FillFunctor<float>>"])
    return write_trace(path, trace.events)


def test_warm_up_step_is_named_and_skip_clears_it(tmp_path):
    # Step 0 launches 3 kernels, the 4 others 1 each: the steady median is 1, its spread 0.
    path = _stepped_trace(tmp_path / "warm.json", [3, 1, 1, 1, 1])
    finding = {f.check: f for f in examine(path)}["irregular-steps"]
    assert finding.status == "WARN" and finding.numbers["irregular"] == [0]
    assert "#0 ProfilerStep#0 (+2: fill +2)" in finding.summary and finding.fix == "skip the warm-up: --skip 1"
    skipped = {f.check: f for f in examine(path, skip=1)}["irregular-steps"]
    assert skipped.status == "PASS" and "left out by --skip 1" in skipped.summary


def test_step_in_the_middle_is_named(tmp_path):
    path = _stepped_trace(tmp_path / "mixed.json", [2, 2, 9, 2, 2])  # a prefill-like step in the decode run
    finding = {f.check: f for f in examine(path)}["irregular-steps"]
    assert finding.status == "WARN" and finding.numbers["irregular"] == [2]
    assert "prefill" in finding.fix


def test_rank_directory_names_disagreeing_categories(tmp_path):
    # rank0 = the before trace, rank1 = the after trace: they disagree by construction on cast (60 vs 2),
    # fill (54 vs 0), metadata (1 vs 0) and total (1143 vs 1030) per step.
    (tmp_path / "trace_rank0.pt.trace.json.gz").symlink_to(SAMPLES / "demo_eager_before.pt.trace.json.gz")
    (tmp_path / "trace_rank1.pt.trace.json.gz").symlink_to(SAMPLES / "demo_eager_after.pt.trace.json.gz")
    found = examine(tmp_path, skip=1)
    assert len(found) == 2 * len(CHECKS) + 1
    ranks = found[-1]
    assert ranks.check == "ranks" and ranks.status == "WARN"
    assert ranks.numbers["disagreements"] == [
        "ranks disagree on metadata launches per step: rank0=1, rank1=0",
        "ranks disagree on fill launches per step: rank0=54, rank1=0",
        "ranks disagree on cast launches per step: rank0=60, rank1=2",
        "ranks disagree on total launches per step: rank0=1143, rank1=1030",
        "ranks disagree on direct launches per step: rank0=1143, rank1=1030"]


def invoke(capsys, *args: str) -> tuple[int, str]:
    """Runs the CLI as the console entry point does (exit code from the command); (code, stdout)."""
    code = run(["doctor", *args])
    return code, capsys.readouterr().out


def test_cli_table_json_junit_markdown(tmp_path, capsys):
    after = str(SAMPLES / "demo_eager_after.pt.trace.json.gz")
    code, table = invoke(capsys, after)
    assert code == 0, table
    lines = table.splitlines()
    assert lines[1].strip().startswith("PASS conservation") and lines[-1].startswith("verdict: WARN")
    assert len(lines) == 1 + len(CHECKS) + 1  # the trace, one line per check, the verdict
    out = tmp_path / "doctor.json"
    assert invoke(capsys, after, "-o", str(out))[0] == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["ok"] is True and doc["verdict"]["status"] == "WARN"
    xml = ET.fromstring(invoke(capsys, after, "--format", "junit")[1])
    assert [c.get("name") for c in xml.findall(".//testcase")] == CHECK_NAMES and not xml.findall(".//failure")
    md = invoke(capsys, after, "--format", "markdown")[1]
    assert "| \u26a0\ufe0f WARN | python-frames |" in md and "**WARN**" in md


def test_cli_exit_1_on_fail_and_junit_failure(capsys):
    cpu = str(SAMPLES / "demo_cpu_eager_after.pt.trace.json.gz")
    code, xml = invoke(capsys, cpu, "--format", "junit")
    assert code == 1
    failures = ET.fromstring(xml).findall(".//failure")
    assert len(failures) == 1 and "GPU activity not recorded" in failures[0].get("message")
    code, text = invoke(capsys, cpu, "--format", "json")
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA)
    assert code == 1 and doc["ok"] is False and doc["verdict"]["status"] == "FAIL"


def test_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys):
    out = tmp_path / "doctor.json"
    bad = write_trace(tmp_path / "empty.json", [])
    for target in (tmp_path / "missing.json", bad):
        assert run(["doctor", str(SAMPLES / "demo_eager_after.pt.trace.json.gz"), str(target), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(target) in err[0] and "Traceback" not in err[0]
        assert not out.exists()
