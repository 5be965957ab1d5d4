"""Collect the demo decode loop (``traceview.collectors.demo_model``) under torch.profiler.

``collect_demo`` builds the model, runs ``PRE_STEPS`` unprofiled steps (Triton JIT, cuBLAS
init, and in graph mode the capture after the first one), then profiles wait + warmup + active
steps. ``expected_counts`` gives, from the same constants the model uses, the per-step launch
counts that the fix changes; ``sample_traces/README.md`` tabulates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from traceview.collectors.demo_model import NUM_DENSE, NUM_LAYERS, NUM_META_BUFFERS, NUM_MOE, DemoConfig
from traceview.collectors.torch_profiler import ProfileOptions, StepProfiler, import_torch

PRE_STEPS = 2  # unprofiled steps before the profiler's wait/warmup/active steps
STEP_MARKERS = ("profiler-step", "vllm")


def vllm_step_name(batch: int) -> str:
    """vLLM's per-step annotation for a pure-decode batch: no context (prefill) requests."""
    return f"execute_context_0(0)_generation_{batch}({batch})"


def demo_trace_name(cfg: DemoConfig, step_marker: str = "profiler-step", with_stack: bool = False) -> str:
    """``demo_eager_before``, ``demo_vllm_eager_before``, ``demo_cpu_eager_after``, ``demo_stack_eager_before`` ..."""
    parts = ["demo"]
    if with_stack:
        parts.append("stack")
    if step_marker == "vllm":
        parts.append("vllm")
    if cfg.device == "cpu":
        parts.append("cpu")
    parts += [cfg.mode, cfg.variant]
    return "_".join(parts)


@dataclass(frozen=True)
class ExpectedCounts:
    """GPU launches per steady-state decode step, derived from ``demo_model``'s code alone.

    The total per step also depends on library choices (kernels per GEMM and per topk); see
    ``model_kernels_per_step``.
    """

    fill: int  # FillFunctor kernels from the metadata buffers' fill_
    cast_bf16_fp32: int  # copy kernels launched by aten::copy_(float <- c10::BFloat16)
    cast_int64_int32: int  # copy kernels launched by aten::copy_(int <- long int)
    copy_bf16_bf16: int  # copy kernels launched by aten::copy_(c10::BFloat16 <- c10::BFloat16)
    metadata: int  # get_mla_metadata_v1 kernels (Triton, cuLaunchKernelEx)


def expected_counts(variant: str, mode: str = "eager") -> ExpectedCounts:
    """Per-step counts for ``variant`` (before|after); the same in eager and graph mode.

    In graph mode the per-layer kernels are replayed by one cudaGraphLaunch (no aten op above
    them); the prefix (int casts, fills, metadata kernel) runs eagerly in both modes.
    """
    if variant not in ("before", "after") or mode not in ("eager", "graph"):
        from traceview.collectors.errors import CollectError

        raise CollectError(None, f"no expected counts for variant {variant!r}, mode {mode!r}")
    before = variant == "before"
    return ExpectedCounts(
        fill=NUM_META_BUFFERS if before else 0,
        cast_bf16_fp32=NUM_MOE if before else 0,
        cast_int64_int32=2,  # positions.to(int32) and seq_lens.to(int32) in prefix()
        copy_bf16_bf16=NUM_LAYERS,  # one kv_stage write per layer
        metadata=1 if before else 0,
    )


def model_kernels_per_step(variant: str, topk_kernels: int, gemm_kernels: int = 1) -> int:
    """All GPU kernels per step, given how many kernels one ``torch.topk`` and one ``torch.mm``
    launch on the machine (library-dependent; see sample_traces/README.md for measured values).

    prefix: 2 add_ + 2 int casts + fills + metadata; forward: embed mm, then per layer a norm
    (vector_norm + div), attention (3 mm, kv copy, softmax, mm, add_), and a dense MLP
    (mm, silu, mm, add_) or MoE (gate mm, [cast], topk, softmax, mm, silu, mm, addcmul_).
    """
    c = expected_counts(variant)
    prefix = 2 + c.cast_int64_int32 + c.fill + c.metadata  # 2 = seq_lens.add_, positions.add_
    common = 2 + 4 * gemm_kernels + 3  # norm (2), attention: 4 mm + kv copy, softmax, add_
    dense = common + 2 * gemm_kernels + 2  # mm, silu, mm, add_
    moe = common + 3 * gemm_kernels + topk_kernels + 3 + c.cast_bf16_fp32 // NUM_MOE  # softmax, silu, addcmul_
    return prefix + gemm_kernels + NUM_DENSE * dense + NUM_MOE * moe  # + the embedding mm


def collect_demo(cfg: DemoConfig, out_dir: str | Path, active: int = 5,
                 options: ProfileOptions | None = None, step_marker: str = "profiler-step") -> Path:
    """Runs the demo and writes ``<out_dir>/<demo_trace_name>.pt.trace.json.gz``; returns its path.

    ``options.step_marker`` is overridden by ``step_marker``: "profiler-step" (ProfilerStep#N)
    or "vllm" (``execute_context_0(0)_generation_B(B)`` per step, no ProfilerStep).
    """
    from traceview.collectors.demo_model import DemoDecoder
    from traceview.collectors.errors import CollectError

    if step_marker not in STEP_MARKERS:
        raise CollectError(None, f"unknown step marker {step_marker!r}; use profiler-step or vllm")
    cfg.validate()
    opts = options or ProfileOptions()
    marker = vllm_step_name(cfg.batch) if step_marker == "vllm" else None
    opts = ProfileOptions(wait=opts.wait, warmup=opts.warmup, with_stack=opts.with_stack,
                          step_marker=marker, device=cfg.device, sync_each_step=opts.sync_each_step)
    torch = import_torch()  # before anything else needs it: a missing torch is one line, not a traceback
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise CollectError(None, "--device cuda, but torch sees no GPU; use --device cpu")
    model = DemoDecoder(cfg)
    with torch.inference_mode():
        for index in range(PRE_STEPS):
            model.step()
            if index == 0 and cfg.mode == "graph":
                model.capture()
        with StepProfiler(out_dir, demo_trace_name(cfg, step_marker, opts.with_stack), active, opts) as sp:
            for _ in range(sp.total_steps):
                with sp.step():
                    model.step()
    assert sp.path is not None
    return sp.path
