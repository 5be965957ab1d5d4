"""What every command shares (issue 18, items 7 and 8): --version, --debug anywhere, a closed
stdout, help examples that work, did-you-mean, --executor, and warnings that say what happened."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli, write_trace
from kineto import KinetoTrace

from traceview import __version__
from traceview.cli.app import run
from traceview.errors import TraceLoadError
from traceview.model.counts import analyze

SAMPLE = REPO / "sample_traces" / "demo_eager_before.pt.trace.json.gz"
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"


def _help(capsys, command: str) -> str:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    return out


def test_version(capsys):
    assert run_cli(capsys, "--version") == (0, f"traceview {__version__}\n", "")


def test_debug_works_after_the_command_too(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    code, _, err = run_cli(capsys, "counts", missing)
    assert code == 2 and err.strip() == f"traceview: {missing}: no such file"
    for args in (["--debug", "counts", missing], ["counts", missing, "--debug"]):
        with pytest.raises(TraceLoadError):
            run([str(a) for a in args])


def test_a_closed_stdout_is_not_a_failed_expectation():
    # The reader closes the pipe before traceview writes: every write fails with EPIPE.
    proc = subprocess.Popen([sys.executable, "-m", "traceview", "counts", str(SAMPLE), "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err  # 128 + SIGPIPE, as a shell reports `... | head`
    assert "Traceback" not in err and "Error" not in err


def test_the_console_exit_delivers_everything(tmp_path):
    # main() skips the interpreter's teardown: piped output must still arrive whole, the exit code
    # must be the command's, exit handlers must run, and a thread still at work must be waited for.
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout is a pipe: block-buffered
    done = subprocess.run([sys.executable, "-m", "traceview", "counts", str(SAMPLE), "--no-cache", "-f", "json"],
                          capture_output=True, text=True, timeout=300, env=buffered)
    assert done.returncode == 0 and json.loads(done.stdout)["trace"] == str(SAMPLE), done.stderr
    missing = tmp_path / "missing.json"
    script = f"""
import atexit, sys, threading, time
from pathlib import Path
atexit.register(lambda: Path({str(tmp_path / 'handler')!r}).write_text("ran"))
def late():
    time.sleep(0.5)
    Path({str(tmp_path / 'thread')!r}).write_text("finished")
threading.Thread(target=late).start()
sys.argv = ["traceview", "counts", {str(missing)!r}]
from traceview.cli.app import main
main()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip() == f"traceview: {missing}: no such file"
    assert (tmp_path / "handler").read_text() == "ran" and (tmp_path / "thread").read_text() == "finished"


def test_help_examples_are_valid_and_name_the_right_files(capsys):
    steps = _help(capsys, "steps")
    example = re.search(r"--step-marker '([^']+)'", steps).group(1)
    assert example == r"^step\[DECODE"
    assert re.compile(example).search("step[DECODE bs=32]")
    flat = re.sub(r"[\s│]+", "", _help(capsys, "diff"))  # the help box wraps lines anywhere
    before, after = (re.search(rf"{side}<path>.*?Example:(\S+?\.json\.gz)", flat).group(1)
                     for side in ("BEFORE", "AFTER"))
    assert (before, after) == ("sample_traces/demo_eager_before.pt.trace.json.gz",
                               "sample_traces/demo_eager_after.pt.trace.json.gz")
    assert "Example:--label-beforemain" in flat and "Example:--label-afterbf16-gate" in flat


def test_a_misspelled_category_gets_a_suggestion(capsys):
    code, _, err = run_cli(capsys, "check", SAMPLE, "-e", "casts<=2", "--quiet")
    assert code == 2
    assert "unknown category 'casts'; did you mean 'cast'?" in err
    code, _, err = run_cli(capsys, "check", SAMPLE, "-e", "zzz<=2", "--quiet")
    assert code == 2 and "unknown category 'zzz' (known:" in err


def test_an_unknown_executor_is_refused(capsys):
    code, _, err = run_cli(capsys, "counts", SAMPLE, "--executor", "dask")
    assert code == 2 and "'dask' is not one of process, ray" in err


def _uncorrelated(tmp_path: Path, gpu_annotations: bool, steps: int = 2) -> Path:
    t = KinetoTrace()
    for s in range(steps):
        t.annotation(f"ProfilerStep#{s}", ts=1000 * s, dur=500)
        if gpu_annotations:
            t.annotation(f"ProfilerStep#{s}", ts=1000 * s, dur=600, cat="gpu_user_annotation", tid=7)
        t.gpu_clock = 1000 * s
        t.launch(ts=1000 * s + 10, kernels=[GEMM] * (s + 1), correlation=False)
    return write_trace(tmp_path / "t.json", t.events)


@pytest.mark.parametrize("gpu_annotations, steps, launches, says", [
    (True, 2, [1, 2], "attributed them by GPU time to the GPU-side step annotations (gpu_user_annotation) instead"),
    (False, 2, [0, 0], "none is in a step, as no step has a GPU-side annotation (gpu_user_annotation) to place "
                       "them by time"),
    (False, 1, [1], "all are counted in the one step, as the trace has no GPU-side step annotation to divide them"),
])
def test_the_uncorrelated_fallback_says_where_the_gpu_events_went(tmp_path, gpu_annotations, steps, launches, says):
    counts = analyze(_uncorrelated(tmp_path, gpu_annotations, steps))
    assert counts.steps.launches.tolist() == launches
    gpu = sum(range(1, steps + 1))
    assert f"no launch call shares a correlation id with the {gpu} GPU events: {says}" in counts.warnings


@pytest.mark.parametrize("command", [["collect", "demo", "--variant", "before", "--device", "cpu"],
                                     ["collect", "torch", "STEP_SCRIPT"]])
def test_collect_without_torch_is_one_line_exit_2(tmp_path, capsys, monkeypatch, command):
    # README's install has no torch: collecting must say how to get it, not print an ImportError traceback.
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    script = tmp_path / "decode.py"
    script.write_text("def step():\n    pass\n")
    out = tmp_path / "out"
    out.mkdir()
    command = [str(script) if word == "STEP_SCRIPT" else word for word in command]
    assert run([*command, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "PyTorch is not installed" in err and "pip install '.[collect]'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not list(out.iterdir())
