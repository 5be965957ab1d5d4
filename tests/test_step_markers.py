"""Step markers in any CPU-side category, and the choice between several marker families (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_trace

from traceview.cli.app import run
from traceview.model.counts import analyze

PID, GPU_PID = 100, 0


def x(cat: str, name: str, ts: float, dur: float, pid: int = PID, tid: int = PID, **args) -> dict:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def launches(corr: int, at: float, kernels: int) -> list[dict]:
    """One launch call at ``at`` and ``kernels`` GPU kernels it caused (a graph replay when > 1)."""
    api = "cudaGraphLaunch" if kernels > 1 else "cudaLaunchKernel"
    out = [x("cuda_runtime", api, at, 2, correlation=corr)]
    out += [x("kernel", f"k{i}", at + 50 + 5 * i, 4, pid=GPU_PID, tid=7, correlation=corr) for i in range(kernels)]
    return out


def test_vllm_v1_serving_steps_are_execute_model_frames(tmp_path: Path) -> None:
    # vLLM V1 serving with with_stack: no annotation marks a step, only the Python frame
    # gpu_model_runner.py(1002): execute_model. Three steps launch 1 + 3, 1 + 3 and 1 + 4 kernels (an
    # eager launch and a graph replay each); a launch between the frames belongs to no step.
    events = [x("python_function", "vllm/v1/engine/core.py(233): step", 0, 5000)]
    for step, graph_kernels in enumerate((3, 3, 4)):
        start = 100 + 1000 * step
        events.append(x("python_function", "vllm/v1/worker/gpu_model_runner.py(1002): execute_model", start, 800))
        events += launches(10 * step + 1, start + 10, 1) + launches(10 * step + 2, start + 20, graph_kernels)
    events += launches(99, 3500, 1)
    counts = analyze(write_trace(tmp_path / "v1.json", events))
    assert counts.step_marker == "vllm-v1-execute-model"
    assert counts.steps.launches.tolist() == [4, 4, 5]
    assert counts.steps.graph_replayed.tolist() == [3, 3, 4]
    assert counts.outside_steps()["between_steps"] == 0 and counts.outside_steps()["after_last_step"] == 1


def sglang_prefill(tmp_path: Path) -> Path:
    # SGLang writes vLLM's execute_… annotation around its own step[…]; the launch before step[…] belongs
    # to the outer one only.
    events = [x("user_annotation", "execute_15360_context_15(sq1024sk1024)_generation_0()", 0, 522_700),
              x("user_annotation", "step[EXTEND bs=15 toks=15360]", 400_000, 28_900)]
    events += launches(1, 100, 1) + launches(2, 400_100, 2) + launches(3, 410_000, 1)
    return write_trace(tmp_path / "sglang.json", events)


def test_of_two_marker_families_the_innermost_wins_and_the_other_is_named(tmp_path: Path) -> None:
    counts = analyze(sglang_prefill(tmp_path))
    assert counts.step_marker == "sglang-step"
    assert counts.steps.cpu_dur_ns.tolist() == [28_900_000]
    assert counts.steps.launches.tolist() == [3]  # the graph replay's 2 kernels and the last launch
    assert counts.step_candidates[["marker", "steps", "chosen"]].values.tolist() == [
        ["vllm-execute", 1, False], ["sglang-step", 1, True]]
    note = next(w for w in counts.warnings if w.startswith("steps from marker sglang-step"))
    assert "also found: vllm-execute (1 step, median 522.700 ms)" in note


def test_the_family_with_more_steps_wins(tmp_path: Path) -> None:
    # A ProfilerStep around each of two decode steps, and vLLM annotations only around the first:
    # two steps beat one, although the annotation is shorter.
    events = [x("user_annotation", "ProfilerStep#1", 0, 1000), x("user_annotation", "ProfilerStep#2", 1000, 1000),
              x("user_annotation", "execute_context_0(0)_generation_8(8)", 10, 500)]
    events += launches(1, 20, 1) + launches(2, 1020, 1)
    counts = analyze(write_trace(tmp_path / "two.json", events))
    assert counts.step_marker == "torch-profiler-step" and counts.steps.launches.tolist() == [1, 1]


def test_steps_command_lists_every_family(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["steps", str(sglang_prefill(tmp_path)), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "step markers found" in out and "vllm-execute" in out and "^step\\[" in out
    chosen = [line for line in out.splitlines() if "chosen" in line]
    assert len(chosen) == 1 and "sglang-step" in chosen[0]
