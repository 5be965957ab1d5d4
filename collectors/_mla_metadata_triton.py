"""The demo's sparse-MLA metadata kernel, in Triton (imported only when Triton and a GPU are there).

Triton launches through the driver (cuLaunchKernelEx, Kineto category cuda_driver), not the
runtime, which is what vLLM's metadata kernels look like in a trace. The kernel's name in the
trace is the function's name, ``get_mla_metadata_v1_demo_kernel``.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl


@triton.jit
def get_mla_metadata_v1_demo_kernel(seq_lens_ptr, out_ptr, n, bucket_len,
                                    BLOCK_KV: tl.constexpr, BLOCK: tl.constexpr):
    # Number of KV splits per request, from its sequence length rounded up to the bucket.
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    seq = tl.maximum(tl.load(seq_lens_ptr + offs, mask=mask, other=1), 1)
    padded = (seq + bucket_len - 1) // bucket_len * bucket_len
    tl.store(out_ptr + offs, (padded + BLOCK_KV - 1) // BLOCK_KV, mask=mask)


def get_mla_metadata_v1(seq_lens32: Any, out: Any, bucket_len: int, block_kv: int) -> None:
    """One launch: writes ``out[i]`` = KV splits of request i (int32 tensors on the GPU)."""
    n = seq_lens32.numel()
    get_mla_metadata_v1_demo_kernel[(1,)](seq_lens32, out, n, bucket_len,
                                          BLOCK_KV=block_kv, BLOCK=triton.next_power_of_2(n))
