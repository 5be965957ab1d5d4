"""Collectors without a GPU, vLLM or ROCm: torch.profiler on CPU end to end, the demo on CPU,
vLLM config/command/rank discovery/manifest, rocprofv3 command/output discovery (fake binary)."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from traceview.collectors.errors import CollectError, MissingToolError
from traceview.collectors.loading import load_step_function, split_spec
from traceview.collectors.manifest import build_manifest, relevant_env, write_manifest
from traceview.collectors.rocprof import RocprofConfig, build_command, find_outputs, find_rocprofv3, run_rocprof
from traceview.collectors.vllm_decode import (VllmDecodeConfig, bench_latency_command, find_rank_traces, legacy_profiler_env,
                                    llm_kwargs, profiler_config, run_vllm_decode, trace_rank)
from traceview.cli.app import run

REPO = Path(__file__).resolve().parents[1]


def _events(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)["traceEvents"]


def _info(path: Path, capsys) -> dict:
    capsys.readouterr()
    assert run(["info", str(path), "--format", "json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


# ---- torch.profiler collector (CPU)

@pytest.fixture()
def torch_mod():
    return pytest.importorskip("torch")


def test_profile_steps_writes_profiler_steps(tmp_path, torch_mod, capsys):
    from traceview.collectors.torch_profiler import ProfileOptions, profile_steps

    x = torch_mod.ones(8, 8)
    path = profile_steps(lambda: (x @ x).relu(), 3, out_dir=tmp_path, name="tiny",
                         options=ProfileOptions(wait=1, warmup=1, device="cpu"))
    assert path == tmp_path / "tiny.pt.trace.json.gz"
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt.trace.json.gz"]  # no temp files left
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    events = _events(path)
    steps = sorted(e["name"] for e in events if e.get("cat") == "user_annotation")
    # wait=1 and warmup=1 are steps #0 and #1; the 3 active steps are #2..#4.
    assert steps == ["ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4"]
    mm = [e for e in events if e.get("name") == "aten::mm"]
    assert len(mm) == 3 and all("Input type" in e["args"] for e in mm)  # record_shapes is on
    assert _info(path, capsys)["step_markers"] == ["torch-profiler-step: 3"]


def test_named_steps_replace_profiler_step(tmp_path, torch_mod, capsys):
    from traceview.collectors.torch_profiler import ProfileOptions, StepProfiler

    opts = ProfileOptions(wait=1, warmup=1, step_marker="execute_context_0(0)_generation_4(4)", device="cpu")
    x = torch_mod.ones(4, 4)
    with StepProfiler(tmp_path, "named", 2, opts) as sp:
        for _ in range(sp.total_steps + 1):  # one extra step: runs unprofiled
            with sp.step():
                x.add_(1)
    events = _events(sp.path)
    names = [e["name"] for e in events if e.get("cat") == "user_annotation"]
    assert names == ["execute_context_0(0)_generation_4(4)"] * 2
    assert sum(e.get("name") == "aten::add_" for e in events) == 2  # only the 2 active steps
    assert _info(sp.path, capsys)["step_markers"] == ["vllm-execute: 2"]


def test_no_active_step_is_an_error(tmp_path, torch_mod):
    from traceview.collectors.torch_profiler import ProfileOptions, StepProfiler

    with pytest.raises(CollectError, match="no active step was recorded: ran 1 steps, need"):
        with StepProfiler(tmp_path, "short", 2, ProfileOptions(wait=2, warmup=0, device="cpu")) as sp:
            with sp.step():
                pass
    assert list(tmp_path.iterdir()) == []


def test_missing_out_dir(tmp_path, torch_mod):
    from traceview.collectors.torch_profiler import profile_steps

    with pytest.raises(CollectError, match="output directory does not exist"):
        profile_steps(lambda: None, 1, out_dir=tmp_path / "nope")


# ---- loading the step function

def test_split_spec():
    assert split_spec("decode.py") == ("decode.py", "step")
    assert split_spec("a/decode.py:run") == ("a/decode.py", "run")
    assert split_spec("pkg.mod:fn") == ("pkg.mod", "fn")
    assert split_spec("pkg.mod") == ("pkg.mod", "step")


def test_load_step_function(tmp_path):
    script = tmp_path / "work.py"
    script.write_text("calls = []\ndef step():\n    calls.append(1)\ndef other():\n    return 7\n")
    load_step_function(str(script))()
    assert load_step_function(f"{script}:other")() == 7
    assert load_step_function("json:dumps")([1]) == "[1]"
    with pytest.raises(CollectError, match="defines no missing\\(\\) function"):
        load_step_function(f"{script}:missing")
    with pytest.raises(CollectError, match="script not found"):
        load_step_function(str(tmp_path / "absent.py"))
    with pytest.raises(CollectError, match="not a file and not an importable module"):
        load_step_function("no_such_module_xyz:step")
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(CollectError, match="failed while loading: RuntimeError: boom"):
        load_step_function(str(bad))


def test_cli_collect_torch(tmp_path, torch_mod, capsys):
    script = tmp_path / "decode.py"
    script.write_text(textwrap.dedent("""
        import torch
        w = torch.ones(16, 16)
        def step():
            return torch.mm(w, w).sum()
    """))
    out = tmp_path / "out"
    code = run(["collect", "torch", str(script), "--steps", "2", "--wait", "0", "--warmup", "1", "--cpu",
                "--out-dir", str(out)])
    assert code == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == out / "decode.pt.trace.json.gz"
    assert _info(written, capsys)["step_markers"] == ["torch-profiler-step: 2"]


# ---- the demo decode loop on CPU, end to end through the CLI

def _per_step_cpu_counts(path: Path) -> tuple[int, dict[str, list[int]]]:
    from traceview.engine import open_trace

    with open_trace(path) as trace:
        steps = trace.query("select id, ts, ts + dur as te from slice where category = 'user_annotation' "
                            "and (name glob 'ProfilerStep#*' or name glob 'execute_*') order by ts")
        ops = trace.query("select name, ts from slice where name in ('aten::fill_', 'get_mla_metadata_v1', "
                          "'aten::topk')")
    counts: dict[str, list[int]] = {}
    for name in ("aten::fill_", "get_mla_metadata_v1", "aten::topk"):
        ts = ops.ts[ops.name == name]
        counts[name] = [int(((ts >= r.ts) & (ts < r.te)).sum()) for r in steps.itertuples()]
    return len(steps), counts


@pytest.mark.parametrize("variant", ["before", "after"])
def test_demo_cpu_end_to_end(tmp_path, torch_mod, capsys, variant):
    code = run(["collect", "demo", "--variant", variant, "--device", "cpu", "--steps", "2", "--wait", "1",
                "--warmup", "1", "--out-dir", str(tmp_path)])
    assert code == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == f"demo_cpu_eager_{variant}.pt.trace.json.gz"
    assert _info(path, capsys)["step_markers"] == ["torch-profiler-step: 2"]
    n_steps, counts = _per_step_cpu_counts(path)
    assert n_steps == 2
    before = variant == "before"
    # before: 54 metadata buffers fully filled and the metadata op rerun every step; after: the
    # shrink-tail fill has nothing to clear and the metadata is cached (computed in pre-step 0).
    assert counts["aten::fill_"] == [54 if before else 0] * 2
    assert counts["get_mla_metadata_v1"] == [1 if before else 0] * 2
    assert counts["aten::topk"] == [58, 58]  # one per MoE layer in both variants
    # The committed CPU pair was collected with this same command: same steps, same counts.
    assert _per_step_cpu_counts(REPO / "sample_traces" / path.name) == (n_steps, counts)


def test_demo_cpu_vllm_markers(tmp_path, torch_mod, capsys):
    code = run(["collect", "demo", "--variant", "after", "--device", "cpu", "--step-marker", "vllm", "--batch", "4",
                "--steps", "2", "--wait", "0", "--warmup", "1", "--out-dir", str(tmp_path)])
    assert code == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "demo_vllm_cpu_eager_after.pt.trace.json.gz"
    assert _info(path, capsys)["step_markers"] == ["vllm-execute: 2"]
    names = {e["name"] for e in _events(path) if e.get("cat") == "user_annotation"}
    assert names == {"execute_context_0(0)_generation_4(4)"}


def test_demo_rejects_graph_on_cpu(tmp_path, capsys):
    code = run(["collect", "demo", "--mode", "graph", "--device", "cpu", "--out-dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip() == "traceview: graph mode needs --device cuda (CUDA graphs)"


def test_expected_counts_follow_the_model():
    from traceview.collectors.demo_decode import expected_counts, model_kernels_per_step

    before, after = expected_counts("before"), expected_counts("after")
    # The motivating fix: -58 bf16->fp32 casts, -54 fills, -1 metadata kernel per step.
    assert (before.cast_bf16_fp32 - after.cast_bf16_fp32, before.fill - after.fill,
            before.metadata - after.metadata) == (58, 54, 1)
    assert before.copy_bf16_bf16 == after.copy_bf16_bf16 == 61  # one kv staging copy per layer
    assert before.cast_int64_int32 == after.cast_int64_int32 == 2
    # With 2 kernels per topk and 1 per GEMM (as measured on the H200 sample machine):
    assert model_kernels_per_step("before", topk_kernels=2) == 1143
    assert model_kernels_per_step("after", topk_kernels=2) == 1030


def test_importing_traceview_does_not_import_torch():
    code = ("import sys; from traceview.cli.app import _register; _register([]); "
            "bad = [m for m in ('torch', 'vllm', 'triton', 'traceview.collectors.torch_profiler') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- vLLM (not installed here: everything but the run itself)

def _vllm_cfg(tmp_path: Path, **kw) -> VllmDecodeConfig:
    return VllmDecodeConfig(model="Qwen/Qwen3-0.6B", out_dir=tmp_path, tensor_parallel_size=2, dtype="bfloat16", **kw)


def test_vllm_profiler_config(tmp_path):
    cfg = _vllm_cfg(tmp_path)
    assert profiler_config(cfg) == {
        "profiler": "torch", "torch_profiler_dir": str(tmp_path.resolve()), "torch_profiler_record_shapes": True,
        "torch_profiler_with_stack": False, "torch_profiler_use_gzip": True,
        "torch_profiler_dump_cuda_time_total": False}
    kwargs = llm_kwargs(cfg)
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["dtype"] == "bfloat16"
    assert kwargs["profiler_config"]["torch_profiler_record_shapes"] is True
    legacy = _vllm_cfg(tmp_path, legacy_env=True)
    assert "profiler_config" not in llm_kwargs(legacy)
    assert legacy_profiler_env(legacy) == {"VLLM_TORCH_PROFILER_DIR": str(tmp_path.resolve()),
                                           "VLLM_TORCH_PROFILER_RECORD_SHAPES": "1",
                                           "VLLM_TORCH_PROFILER_WITH_STACK": "0"}


def test_vllm_bench_latency_command(tmp_path):
    cmd = bench_latency_command(_vllm_cfg(tmp_path, max_tokens=16, enforce_eager=True))
    assert cmd[:3] == ["vllm", "bench", "latency"]
    flags = dict(zip(cmd[3::2], cmd[4::2]))
    assert flags["--model"] == "Qwen/Qwen3-0.6B" and flags["--tensor-parallel-size"] == "2"
    assert flags["--output-len"] == "16"
    assert "--profile" in cmd and "--enforce-eager" in cmd
    assert json.loads(cmd[cmd.index("--profiler-config") + 1])["torch_profiler_record_shapes"] is True
    legacy = bench_latency_command(_vllm_cfg(tmp_path, legacy_env=True))
    assert legacy[0] == "env" and "VLLM_TORCH_PROFILER_RECORD_SHAPES=1" in legacy
    assert "--profiler-config" not in legacy


def test_vllm_rank_trace_discovery(tmp_path):
    names = ["dp0_pp0_tp1_dcp0_ep0_rank1.1700000000002.pt.trace.json.gz",
             "dp0_pp0_tp0_dcp0_ep0_rank0.1700000000001.pt.trace.json.gz",
             "abc123-rank-10.1700000000003.pt.trace.json.gz",
             "worker_tp2.pt.trace.json", "host_1234.1700000000000.pt.trace.json.gz",
             "manifest.json", "profiler_out_0.txt"]
    for name in names:
        (tmp_path / name).write_text("{}")
    found = [(rank, p.name) for rank, p in find_rank_traces(tmp_path)]
    assert found == [(0, names[1]), (1, names[0]), (2, names[3]), (10, names[2]), (None, names[4])]
    assert trace_rank("TP3_worker.json.gz") == 3 and trace_rank("stp3.json") is None


def test_vllm_missing_is_one_line(tmp_path, capsys):
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    with pytest.raises(MissingToolError, match="pip install vllm"):
        run_vllm_decode(_vllm_cfg(tmp_path))
    code = run(["collect", "vllm", "--model", "m", "--out-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "traceview: vllm: vLLM is not installed; pip install vllm (needs a CUDA or ROCm GPU)"


def test_vllm_print_command_needs_no_vllm(tmp_path, capsys):
    assert run(["collect", "vllm", "--model", "m", "--tp", "4", "--out-dir", str(tmp_path), "--print-command"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("vllm bench latency --model m --tensor-parallel-size 4 ")
    assert '"torch_profiler_record_shapes":true' in line


# ---- manifest

def test_manifest(tmp_path):
    env = {"VLLM_USE_V1": "1", "HIP_VISIBLE_DEVICES": "0,1", "CUDA_VISIBLE_DEVICES": "0", "ROCR_X": "y",
           "HOME": "/root", "PATH": "/bin", "NVIDIA_REQUIRE_CUDA": "cuda>=13", "SECRET_TOKEN": "x"}
    assert relevant_env(env) == {"CUDA_VISIBLE_DEVICES": "0", "HIP_VISIBLE_DEVICES": "0,1", "ROCR_X": "y",
                                 "VLLM_USE_V1": "1"}
    software = {"torch": "2.11.0", "vllm": None, "gpu": "NVIDIA H100"}
    manifest = build_manifest({"model": "m", "tensor_parallel_size": 2}, ["vllm", "serve", "m x"], env, software,
                              [tmp_path / "a.json.gz"])
    assert manifest["run"] == {"model": "m", "tensor_parallel_size": 2}
    assert manifest["command_line"] == "vllm serve 'm x'"
    assert manifest["software"] == software and manifest["env"]["VLLM_USE_V1"] == "1"
    assert manifest["created_utc"].endswith("Z")
    path = write_manifest(tmp_path, manifest)
    assert json.loads(path.read_text()) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


# ---- rocprofv3 (no ROCm here: a fake binary stands in)

def test_rocprof_command():
    cfg = RocprofConfig(out_dir=Path("out"), name="decode")
    assert build_command(cfg, ["python", "decode.py", "--n", "3"]) == [
        "rocprofv3", "--kernel-trace", "--marker-trace", "--hip-trace", "--output-format", "pftrace", "csv",
        "-d", "out", "-o", "decode", "--", "python", "decode.py", "--n", "3"]
    rocpd = RocprofConfig(out_dir=Path("o"), formats=("rocpd",), traces=("kernel",))
    assert build_command(rocpd, ["./a"], "/opt/rocm/bin/rocprofv3")[:4] == [
        "/opt/rocm/bin/rocprofv3", "--kernel-trace", "--output-format", "rocpd"]
    with pytest.raises(CollectError, match="unknown rocprofv3 output format"):
        build_command(RocprofConfig(out_dir=Path("o"), formats=("xml",)), ["./a"])
    with pytest.raises(CollectError, match="no command to profile"):
        build_command(cfg, [])


def _fake_outputs(root: Path) -> None:
    host = root / "myhost"
    host.mkdir(parents=True)
    for name in ("decode_kernel_trace.csv", "decode_hip_api_trace.csv", "decode_marker_api_trace.csv",
                 "decode_results.pftrace", "decode_results.db", "decode_agent_info.csv"):
        (host / name).write_text("x")


def test_rocprof_output_discovery(tmp_path):
    _fake_outputs(tmp_path)
    outs = find_outputs(tmp_path)
    host = tmp_path / "myhost"
    assert outs.kernel_trace == [host / "decode_kernel_trace.csv"]
    assert outs.hip_api_trace == [host / "decode_hip_api_trace.csv"]
    assert outs.marker_api_trace == [host / "decode_marker_api_trace.csv"]
    assert outs.pftrace == [host / "decode_results.pftrace"] and outs.rocpd == [host / "decode_results.db"]
    assert len(outs.all()) == 5  # agent_info.csv is not one of the gathered outputs
    assert find_outputs(tmp_path / "empty").all() == []


def test_rocprof_missing_binary(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("traceview.collectors.rocprof.ROCM_BIN", tmp_path / "no_rocm")
    with pytest.raises(MissingToolError, match="rocprofv3 not found on PATH or in /opt/rocm/bin"):
        find_rocprofv3()
    assert run(["collect", "rocprof", "--out-dir", str(tmp_path / "o"), "--", "python", "x.py"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("traceview: rocprofv3: rocprofv3 not found")


def test_rocprof_run_with_fake_binary(tmp_path, monkeypatch, capsys):
    # A stand-in rocprofv3: writes what the real one writes under -d DIR/<host>/ with -o NAME.
    fake = tmp_path / "bin" / "rocprofv3"
    fake.parent.mkdir()
    fake.write_text(textwrap.dedent("""\
        #!/bin/sh
        while [ "$1" != "--" ]; do
          case "$1" in -d) dir=$2; shift;; -o) name=$2; shift;; esac; shift
        done
        shift
        mkdir -p "$dir/host1"
        for s in kernel_trace.csv hip_api_trace.csv marker_api_trace.csv results.pftrace; do
          : > "$dir/host1/${name}_$s"
        done
        exec "$@"
    """))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "o"
    outs = run_rocprof(RocprofConfig(out_dir=out, name="job"), [sys.executable, "-c", "pass"])
    assert [p.name for p in outs.all()] == ["job_results.pftrace", "job_kernel_trace.csv",
                                            "job_hip_api_trace.csv", "job_marker_api_trace.csv"]
    with pytest.raises(CollectError, match="exited with status 3 under rocprofv3"):
        run_rocprof(RocprofConfig(out_dir=out), [sys.executable, "-c", "raise SystemExit(3)"])
    code = run(["collect", "rocprof", "--out-dir", str(tmp_path / "cli"), "--name", "c", "--",
                sys.executable, "-c", "pass"])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["c_results.pftrace", "c_kernel_trace.csv", "c_hip_api_trace.csv",
                                               "c_marker_api_trace.csv"]
