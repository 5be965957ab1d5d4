"""Collectors: produce the traces traceview reads.

- ``traceview.collectors.torch_profiler``: profile N steps of any callable with torch.profiler
  (record_shapes always on), gzip the Chrome trace atomically.
- ``traceview.collectors.demo_decode``: a DeepSeek-V3.2-shaped decode loop (61 layers, 58 MoE) with
  "before"/"after" variants of a known vLLM fix, so per-step kernel counts are known exactly.
- ``traceview.collectors.vllm_decode``: profile a few vLLM decode steps (vLLM imported lazily).
- ``traceview.collectors.rocprof``: run a command under rocprofv3 and gather its outputs.

Nothing here imports torch, vLLM or triton at import time; each function imports what it
needs when called, so ``import traceview`` stays light.
"""

from traceview.collectors.errors import CollectError, MissingToolError

__all__ = ["CollectError", "MissingToolError"]
