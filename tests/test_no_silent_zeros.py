"""No silent zeros (issue 17): a count of nothing is said to be one, and nothing is checked against it.

Fixtures: a trace whose launch calls caused no recorded GPU event (CUPTI range-profiler mode,
or profiling without ProfilerActivity.CUDA), and a 2-step trace for ``--skip``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, write_trace
from kineto import KinetoTrace

from traceview.model.counts import analyze

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"


def no_gpu_activity(tmp_path: Path) -> Path:
    """2 steps x 3 kernel launches + 1 memcpy call, and not one GPU event."""
    t = KinetoTrace()
    for step in range(2):
        t.annotation(f"ProfilerStep#{step}", ts=1000 * step, dur=900)
        for k in range(3):
            t.launch(ts=1000 * step + 10 + 10 * k, kernels=[])
        t.launch(ts=1000 * step + 50, kernels=[], api="cudaMemcpyAsync")
    return write_trace(tmp_path / "no_gpu.json", t.events)


def two_steps(tmp_path: Path) -> Path:
    t = KinetoTrace()
    for step in range(2):
        t.annotation(f"ProfilerStep#{step}", ts=1000 * step, dur=900)
        t.launch(ts=1000 * step + 10, kernels=["void at::native::vectorized_elementwise_kernel<4, "
                                               "at::native::FillFunctor<float>, std::array<char*, 1ul> >"])
    return write_trace(tmp_path / "two_steps.json", t.events)


def test_launch_calls_without_gpu_events_warn_that_gpu_activity_was_not_recorded(tmp_path):
    counts = analyze(no_gpu_activity(tmp_path))
    assert counts.total_gpu_events == 0 and len(counts.steps) == 2
    assert [w for w in counts.warnings if w.startswith("GPU activity was not recorded")] == [
        "GPU activity was not recorded: 8 CUDA/HIP runtime or driver calls but no GPU events, so every count is 0 "
        "(torch.profiler needs ProfilerActivity.CUDA; rocprofv3 --kernel-trace)"]


def test_a_cpu_only_trace_has_no_such_warning():
    # The CPU demo launches nothing at all: its zeros are true, not unrecorded.
    counts = analyze(SAMPLES / "demo_cpu_eager_after.pt.trace.json.gz")
    assert counts.total_gpu_events == 0
    assert not [w for w in counts.warnings if "GPU activity" in w]


@pytest.mark.parametrize("command", [["check", "{t}", "-e", "fill=0"],
                                     ["diff", "{t}", "{t}", "-e", "fill=0"]])
def test_expectations_against_no_gpu_events_exit_2(tmp_path, capsys, command):
    trace = no_gpu_activity(tmp_path)
    code, out, err = run_cli(capsys, *(str(trace) if a == "{t}" else a for a in command))
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"traceview: {trace}: holds no GPU events (GPU activity not recorded, or a CPU-only run), so every launch "
        "count is 0: expectations cannot be checked")


def test_a_cpu_only_run_in_a_batch_check_exits_2(capsys):
    code, out, err = run_cli(capsys, "check", SAMPLES / "demo_cpu_eager_after.pt.trace.json.gz", "-e", "total<=1030",
                             "--quiet")
    assert code == 2 and "holds no GPU events" in err


@pytest.mark.parametrize("command", [["counts", "{t}"], ["kernels", "{t}"], ["check", "{t}", "-e", "fill<=1"],
                                     ["diff", "{t}", "{t}"]])
def test_skip_leaving_no_steps_exits_2_in_every_command(tmp_path, capsys, command):
    trace = two_steps(tmp_path)
    code, out, err = run_cli(capsys, *(str(trace) if a == "{t}" else a for a in command), "--skip", "2")
    assert code == 2, (out, err)
    assert err.strip().splitlines()[-1] == (
        f"traceview: {trace}: --skip 2 leaves no steps: the trace has 2 step(s) (torch-profiler-step)")
    assert out == ""
    # One step fewer is fine everywhere.
    code, _, err = run_cli(capsys, *(str(trace) if a == "{t}" else a for a in command), "--skip", "1")
    assert code == 0, err
