"""Profile a few vLLM decode steps with vLLM's own torch.profiler hooks.

Two ways to switch vLLM's profiler on, both with record_shapes (the "Input type" args that
separate a bf16->fp32 cast from a same-dtype copy):

- vLLM >= 0.13: ``LLM(..., profiler_config={"profiler": "torch", "torch_profiler_dir": DIR,
  "torch_profiler_record_shapes": True, ...})``, or ``--profiler-config '{...}'`` on the CLI
  (fields of ``vllm.config.ProfilerConfig``).
- older vLLM (``legacy_env=True``): environment variables ``VLLM_TORCH_PROFILER_DIR=DIR``,
  ``VLLM_TORCH_PROFILER_RECORD_SHAPES=1``, ``VLLM_TORCH_PROFILER_WITH_STACK=0``, set before
  the engine starts.

Each worker writes ``<worker>.<time>.pt.trace.json.gz``; worker names carry the rank
(``dp0_pp0_tp0_dcp0_ep0_rank0``, ``<instance>-rank-0``). vLLM is imported only by
``run_vllm_decode``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traceview.collectors.errors import CollectError, MissingToolError
from traceview.collectors.manifest import build_manifest, write_manifest
from traceview.model.ranks import parse_rank

DTYPES = ("auto", "bfloat16", "float16", "float32")
INSTALL_HINT = "vLLM is not installed; pip install vllm (needs a CUDA or ROCm GPU)"


@dataclass(frozen=True)
class VllmDecodeConfig:
    """One vLLM decode collection; defaults keep the trace small (one batch, few tokens)."""

    model: str
    out_dir: Path
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    batch_size: int = 8  # prompts decoded together
    input_len: int = 32  # prompt tokens each (random token ids)
    max_tokens: int = 8  # tokens generated: 1 prefill step + (max_tokens - 1) decode steps
    with_stack: bool = False
    enforce_eager: bool = False  # True: no CUDA/HIP graphs (every kernel has an aten op above it)
    legacy_env: bool = False  # older vLLM: VLLM_TORCH_PROFILER_* env vars instead of profiler_config

    def validate(self) -> None:
        if self.tensor_parallel_size < 1:
            raise CollectError(None, "--tp must be >= 1")
        if self.dtype not in DTYPES:
            raise CollectError(None, f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        if min(self.batch_size, self.input_len, self.max_tokens) < 1:
            raise CollectError(None, "batch size, input length and max tokens must be >= 1")


def profiler_config(cfg: VllmDecodeConfig) -> dict[str, Any]:
    """The ``profiler_config`` dict (fields of vllm.config.ProfilerConfig)."""
    return {
        "profiler": "torch",
        "torch_profiler_dir": str(Path(cfg.out_dir).resolve()),  # vLLM wants an absolute path
        "torch_profiler_record_shapes": True,
        "torch_profiler_with_stack": cfg.with_stack,  # vLLM's default is True: traces grow a lot
        "torch_profiler_use_gzip": True,
        "torch_profiler_dump_cuda_time_total": False,  # skip the text table; the trace has it all
    }


def legacy_profiler_env(cfg: VllmDecodeConfig) -> dict[str, str]:
    """Environment variables that switch the profiler on in vLLM before ProfilerConfig existed."""
    return {
        "VLLM_TORCH_PROFILER_DIR": str(Path(cfg.out_dir).resolve()),
        "VLLM_TORCH_PROFILER_RECORD_SHAPES": "1",
        "VLLM_TORCH_PROFILER_WITH_STACK": "1" if cfg.with_stack else "0",
    }


def llm_kwargs(cfg: VllmDecodeConfig) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM(...)``."""
    kwargs: dict[str, Any] = {"model": cfg.model, "tensor_parallel_size": cfg.tensor_parallel_size,
                              "dtype": cfg.dtype, "enforce_eager": cfg.enforce_eager}
    if not cfg.legacy_env:
        kwargs["profiler_config"] = profiler_config(cfg)
    return kwargs


def bench_latency_command(cfg: VllmDecodeConfig, warmup_iters: int = 2) -> list[str]:
    """``vllm bench latency --profile ...`` for the same run (env vars too when ``legacy_env``)."""
    cmd = ["vllm", "bench", "latency", "--model", cfg.model,
           "--tensor-parallel-size", str(cfg.tensor_parallel_size), "--dtype", cfg.dtype,
           "--batch-size", str(cfg.batch_size), "--input-len", str(cfg.input_len),
           "--output-len", str(cfg.max_tokens), "--num-iters-warmup", str(warmup_iters), "--profile"]
    if cfg.enforce_eager:
        cmd.append("--enforce-eager")
    if cfg.legacy_env:
        return ["env", *(f"{k}={v}" for k, v in legacy_profiler_env(cfg).items()), *cmd]
    return [*cmd, "--profiler-config", json.dumps(profiler_config(cfg), separators=(",", ":"))]


_TRACE_GLOBS = ("*.pt.trace.json.gz", "*.pt.trace.json", "*.json.gz")


def trace_rank(name: str) -> int | None:
    """The global rank a worker trace's file name gives (``traceview.model.ranks.parse_rank``:
    ``...rank3...`` first, else ``...tp3...`` when dp/pp are 0), or None."""
    return parse_rank(name).rank


def find_rank_traces(out_dir: str | Path) -> list[tuple[int | None, Path]]:
    """Trace files under ``out_dir`` as (rank, path) in rank order (``traceview.model.ranks.parse_rank(name).key``):
    by global rank, then names with only dp/pp/tp coordinates (rank None), then unranked (None) by name."""
    found = {p for pattern in _TRACE_GLOBS for p in Path(out_dir).rglob(pattern) if p.is_file()}
    parsed = sorted(((parse_rank(p.name), p) for p in found), key=lambda pair: (pair[0].key, str(pair[1])))
    return [(rank.rank, path) for rank, path in parsed]


def _prompts(cfg: VllmDecodeConfig) -> list[dict[str, list[int]]]:
    # Fixed token ids (not random): reruns decode the same batch.
    return [{"prompt_token_ids": [(1000 + 37 * i + j) % 30000 for j in range(cfg.input_len)]}
            for i in range(cfg.batch_size)]


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise MissingToolError("vllm", INSTALL_HINT) from err
    return vllm


def run_vllm_decode(cfg: VllmDecodeConfig) -> Path:
    """Warms up, then profiles one ``generate`` of ``max_tokens`` tokens; returns manifest.json's path.

    Needs vLLM and a GPU; raises MissingToolError (one line) without vLLM.
    """
    cfg.validate()
    out_dir = Path(cfg.out_dir)
    if not out_dir.is_dir():
        raise CollectError(out_dir, "output directory does not exist")
    if cfg.legacy_env:
        os.environ.update(legacy_profiler_env(cfg))  # read when the engine starts: set first
    vllm = _import_vllm()
    llm = vllm.LLM(**llm_kwargs(cfg))
    params = vllm.SamplingParams(max_tokens=cfg.max_tokens, ignore_eos=True, temperature=0.0)
    prompts = _prompts(cfg)
    llm.generate(prompts, params, use_tqdm=False)  # warm-up: compile, graphs, caches
    llm.start_profile()
    llm.generate(prompts, params, use_tqdm=False)
    llm.stop_profile()
    traces = [p for _, p in find_rank_traces(out_dir)]
    if not traces:
        raise CollectError(out_dir, "vLLM wrote no trace files (is the profiler enabled in this vLLM?)")
    run = {"collector": "vllm", "model": cfg.model, "tensor_parallel_size": cfg.tensor_parallel_size,
           "dtype": cfg.dtype, "batch_size": cfg.batch_size, "input_len": cfg.input_len,
           "max_tokens": cfg.max_tokens, "enforce_eager": cfg.enforce_eager,
           "profiler": legacy_profiler_env(cfg) if cfg.legacy_env else profiler_config(cfg)}
    return write_manifest(out_dir, build_manifest(run, traces=traces))
