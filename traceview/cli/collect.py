"""``traceview collect``: produce traces (torch.profiler, vLLM, rocprofv3, the demo decode loop).

The collectors import torch / vLLM only inside these commands, so ``import traceview`` and
every other command stay free of them. Each command prints the files it wrote, one per line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from traceview.cli.app import app
from traceview.cli.render import write_output

collect_app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(collect_app, name="collect",
              help="Collect traces: torch.profiler steps of a script, vLLM decode, rocprofv3, the demo decode loop.")

# A folder, so not -o: everywhere else -o names an output file.
OutDirOpt = Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs (created if missing). "
                                                          "Example: --out-dir traces/")]
StepsOpt = Annotated[int, typer.Option("--steps", min=1, help="Active (recorded) steps. Example: --steps 5")]
WaitOpt = Annotated[int, typer.Option("--wait", min=0, help="Steps run before profiling (profiler off).")]
WarmupOpt = Annotated[int, typer.Option("--warmup", min=0, help="Profiler warm-up steps, discarded.")]
StackOpt = Annotated[bool, typer.Option("--with-stack", help="Record Python stacks: each launch's source frame for diff and "
                                                         "kernels --by frame (traces grow ~1.2x to 9x in events).")]


def _out_dir(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out


def _print_paths(paths: list[Path]) -> None:
    write_output("\n".join(str(p) for p in paths), None)


@collect_app.command("torch")
def torch_command(
    script: Annotated[str, typer.Argument(help="A .py file defining step() (or FILE.py:FUNC), or an "
                                               "importable module:function. Example: decode.py")],
    out: OutDirOpt = Path("."),
    name: Annotated[Optional[str], typer.Option("--name", help="Trace name (default: the script's stem).")] = None,
    steps: StepsOpt = 5,
    wait: WaitOpt = 1,
    warmup: WarmupOpt = 2,
    with_stack: StackOpt = False,
    step_marker: Annotated[Optional[str], typer.Option(
        "--step-marker", help="Wrap each step in record_function(NAME) instead of ProfilerStep#N "
                              "('{step}' = step index). Example: --step-marker 'decode_{step}'")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Profile CPU activity only, even with a GPU.")] = False,
) -> None:
    """Profile wait+warmup+STEPS calls of SCRIPT's step() with torch.profiler (record_shapes on).

    SCRIPT runs once when loaded (build the model there); step() takes no arguments. Writes
    OUT_DIR/NAME.pt.trace.json.gz. CPU + CUDA activities (CUDA covers HIP on ROCm); CPU only without a GPU.

    Examples:
      traceview collect torch decode.py --steps 5 --out-dir traces/
      traceview collect torch mypkg.bench:decode_step --wait 2 --warmup 2 --steps 3 --out-dir traces/
      traceview collect torch decode.py:step --step-marker 'execute_context_0(0)_generation_8(8)'
    """
    from traceview.collectors.loading import load_step_function, split_spec
    from traceview.collectors.torch_profiler import ProfileOptions, profile_steps

    fn = load_step_function(script)
    target = split_spec(script)[0]
    trace_name = name or (Path(target).stem if target.endswith(".py") else target.replace(".", "_"))
    opts = ProfileOptions(wait=wait, warmup=warmup, with_stack=with_stack, step_marker=step_marker,
                          device="cpu" if cpu else "auto")
    _print_paths([profile_steps(fn, steps, out_dir=_out_dir(out), name=trace_name, options=opts)])


@collect_app.command("demo")
def demo_command(
    variant: Annotated[str, typer.Option("--variant", help="before|after the vLLM fix.")] = "before",
    mode: Annotated[str, typer.Option("--mode", help="eager|graph (CUDA graph replay of the 61 layers).")] = "eager",
    step_marker: Annotated[str, typer.Option("--step-marker", help="profiler-step (ProfilerStep#N) | vllm "
                                             "(execute_context_0(0)_generation_B(B)).")] = "profiler-step",
    device: Annotated[str, typer.Option("--device", help="cuda (also ROCm) | cpu.")] = "cuda",
    batch: Annotated[int, typer.Option("--batch", min=1, max=64, help="Decode requests per step.")] = 32,
    out: OutDirOpt = Path("."),
    steps: StepsOpt = 5,
    wait: WaitOpt = 1,
    warmup: WarmupOpt = 2,
    with_stack: StackOpt = False,
) -> None:
    """Profile the DeepSeek-V3.2-shaped demo decode loop (61 layers, 58 MoE, toy sizes).

    "before" has per step 58 bf16->fp32 router-logit casts, 54 metadata fill_ kernels and one
    get_mla_metadata_v1 kernel that "after" removes; both run 61 bf16->bf16 copies and 2
    int64->int32 casts through the same copy kernels. Writes OUT_DIR/demo[_vllm][_cpu]_MODE_VARIANT.pt.trace.json.gz.

    Examples:
      traceview collect demo --variant before --mode eager --out-dir sample_traces/
      traceview collect demo --variant after --mode graph --step-marker vllm --out-dir traces/
      traceview collect demo --variant before --device cpu --steps 2 --wait 1 --warmup 1 --out-dir /tmp/t
      traceview collect demo --variant before --with-stack --steps 3 --out-dir traces/   (demo_stack_eager_before)
    """
    from traceview.collectors.demo_decode import collect_demo
    from traceview.collectors.demo_model import DemoConfig
    from traceview.collectors.torch_profiler import ProfileOptions

    cfg = DemoConfig(variant=variant, mode=mode, device=device, batch=batch)
    path = collect_demo(cfg, _out_dir(out), steps, ProfileOptions(wait=wait, warmup=warmup, with_stack=with_stack),
                        step_marker)
    _print_paths([path])


@collect_app.command("vllm")
def vllm_command(
    model: Annotated[str, typer.Option("--model", help="HF model id or path. Example: --model Qwen/Qwen3-0.6B")],
    out: OutDirOpt = Path("vllm_traces"),
    tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor-parallel size (one trace per rank).")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="auto|bfloat16|float16|float32.")] = "auto",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Prompts decoded together.")] = 8,
    input_len: Annotated[int, typer.Option("--input-len", min=1, help="Prompt tokens each.")] = 32,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Generated tokens (decode steps + 1).")] = 8,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="No CUDA/HIP graphs.")] = False,
    legacy_env: Annotated[bool, typer.Option(
        "--legacy-env", help="Old vLLM: VLLM_TORCH_PROFILER_DIR and VLLM_TORCH_PROFILER_RECORD_SHAPES=1 "
                             "instead of profiler_config.")] = False,
    with_stack: StackOpt = False,
    print_command: Annotated[bool, typer.Option("--print-command", help="Only print the equivalent "
                                                "`vllm bench latency --profile` command line.")] = False,
) -> None:
    """Profile a few vLLM decode steps (LLM.start_profile/stop_profile, record_shapes on).

    Writes one trace per rank plus OUT_DIR/manifest.json (model, TP, versions, GPU, env, command).
    Needs vLLM (`pip install vllm`) and a GPU; --print-command needs neither.

    Examples:
      traceview collect vllm --model deepseek-ai/DeepSeek-V3.2 --tp 8 --out-dir traces/v32/
      traceview collect vllm --model Qwen/Qwen3-0.6B --max-tokens 16 --enforce-eager --out-dir traces/qwen/
      traceview collect vllm --model Qwen/Qwen3-0.6B --tp 2 --print-command
    """
    import shlex

    from traceview.collectors.vllm_decode import (
        VllmDecodeConfig,
        bench_latency_command,
        find_rank_traces,
        run_vllm_decode,
    )

    cfg = VllmDecodeConfig(model=model, out_dir=out, tensor_parallel_size=tp, dtype=dtype, batch_size=batch,
                           input_len=input_len, max_tokens=max_tokens, with_stack=with_stack,
                           enforce_eager=enforce_eager, legacy_env=legacy_env)
    cfg.validate()
    if print_command:
        write_output(shlex.join(bench_latency_command(cfg)), None)
        return
    _out_dir(out)
    manifest = run_vllm_decode(cfg)
    _print_paths([manifest, *(p for _, p in find_rank_traces(out))])


@collect_app.command("rocprof", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def rocprof_command(
    cmd: Annotated[List[str], typer.Argument(help="The command to profile, after --. Example: -- python decode.py")],
    out: OutDirOpt = Path("rocprof_out"),
    name: Annotated[str, typer.Option("--name", help="Output file prefix (rocprofv3 -o).")] = "rocprof",
    fmt: Annotated[Optional[List[str]], typer.Option("--format", "-f", help="Output format, repeatable: "
                                                     "pftrace|csv|rocpd|json|otf2 (default: pftrace, csv).")] = None,
    print_command: Annotated[bool, typer.Option("--print-command",
                                                help="Only print the rocprofv3 command line.")] = False,
) -> None:
    """Run CMD under rocprofv3 --kernel-trace --marker-trace --hip-trace and list what it wrote.

    Needs ROCm's rocprofv3 on PATH or in /opt/rocm/bin; --print-command does not.

    Examples:
      traceview collect rocprof --out-dir traces/rocprof -- python decode.py
      traceview collect rocprof --format pftrace --format rocpd --out-dir traces/ -- ./bench --iters 10
      traceview collect rocprof --print-command -- python -m mypkg.decode
    """
    import shlex

    from traceview.collectors.rocprof import RocprofConfig, build_command, run_rocprof

    cfg = RocprofConfig(out_dir=out, name=name, formats=tuple(fmt or ("pftrace", "csv")))
    if print_command:
        write_output(shlex.join(build_command(cfg, cmd)), None)
        return
    _print_paths(run_rocprof(cfg, cmd).all())
