"""What the synthetic Kineto traces are made of: kernels, their categories, and the
exact text torch.profiler writes for each kind of event.

Formats follow libkineto's ``output_json.cpp`` / ``CuptiActivity.cpp`` as seen in
real traces (an A100 trace for the CUDA activity records, a 2025 torch trace for
cpu_op args with record_shapes): two-space event indent, ``"ts": <us>.<ns:03>``,
``"External id"`` first in args, trailing args on their own lines.

Categories here are the generator's ground truth, chosen so that traceview's
default ``rules/categories.toml`` assigns the same category to every kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU_PID = 4242  # the profiled process; its main thread has the same id
GPU_PID = 0  # Kineto puts device N's activity on pid N
STREAM = 7  # the default CUDA stream as CUPTI numbers it
SMS = 132  # H100 SXM

CBID_LAUNCH_KERNEL = 211  # CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000
CBID_MEMCPY_ASYNC = 41  # CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020
CBID_GRAPH_LAUNCH = 311  # CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000
CBID_CU_LAUNCH_KERNEL_EX = 652  # CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx

BF16 = "c10::BFloat16"


def ts(ns: int) -> str:
    """Kineto's timestamp text: microseconds with exactly three decimals."""
    return f"{ns // 1000}.{ns % 1000:03d}"


def _f32(value: float) -> str:
    """fmt's shortest repr of a C++ float (blocksPerSm/warpsPerSm are float)."""
    import numpy as np

    return str(np.float32(value))


@dataclass(frozen=True)
class Kernel:
    """One GPU kernel the generator launches; ``args`` is its precomputed args tail."""

    name: str
    category: str  # fill | cast | copy | gemm | attention | elementwise
    dur_ns: int  # typical duration; each launch jitters around it
    args: str


def _kernel(name: str, category: str, dur_ns: int, grid: tuple, block: tuple, regs: int, smem: int,
            occupancy: int) -> Kernel:
    blocks = grid[0] * grid[1] * grid[2]
    warps = blocks * ((block[0] * block[1] * block[2] + 31) // 32)
    args = (f'\n      "stream": {STREAM}, "correlation": %d,'
            f'\n      "registers per thread": {regs},'
            f'\n      "shared memory": {smem},'
            f'\n      "blocks per SM": {_f32(blocks / SMS)},'
            f'\n      "warps per SM": {_f32(warps / SMS)},'
            f'\n      "grid": [{grid[0]}, {grid[1]}, {grid[2]}],'
            f'\n      "block": [{block[0]}, {block[1]}, {block[2]}],'
            f'\n      "est. achieved occupancy %%": {occupancy}')
    return Kernel(name, category, dur_ns, args)


def _direct_copy(dtype: str) -> str:
    return ("at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const"
            "::{lambda()#7}::operator()() const::{lambda(%s)#1}" % dtype)


def _cast_kernel(dst: str) -> str:
    # A dtype-changing copy goes through gpu_kernel's dynamic-casting path:
    # unrolled, with LoadWithCast/StoreWithCast (CUDA's Loops.cuh).
    fn = _direct_copy(dst)
    tail = ("TrivialOffsetCalculator<1, unsigned int>, TrivialOffsetCalculator<1, unsigned int>, "
            "at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1>")
    return (f"void at::native::unrolled_elementwise_kernel<{fn}, std::array<char*, 2ul>, 4, {tail} >"
            f"(int, {fn}, std::array<char*, 2ul>, {tail})")


def _vectorized(functor: str, arity: int, width: int = 4) -> str:
    return (f"void at::native::vectorized_elementwise_kernel<{width}, {functor}, std::array<char*, {arity}ul> >"
            f"(int, {functor}, std::array<char*, {arity}ul>)")


K_FILL = _kernel(_vectorized(f"at::native::FillFunctor<{BF16}>", 1), "fill", 1_900, (64, 1, 1), (128, 1, 1), 16, 0, 9)
K_FILL_F32 = _kernel(_vectorized("at::native::FillFunctor<float>", 1), "fill", 1_500, (8, 1, 1), (128, 1, 1), 16, 0, 2)
K_CAST_UP = _kernel(_cast_kernel("float"), "cast", 2_600, (256, 1, 1), (128, 1, 1), 28, 0, 22)
K_CAST_DOWN = _kernel(_cast_kernel(BF16), "cast", 2_400, (256, 1, 1), (128, 1, 1), 28, 0, 22)
K_COPY = _kernel(_vectorized(_direct_copy(BF16), 2, 8), "copy", 2_100, (32, 1, 1), (128, 1, 1), 22, 0, 5)
K_ADD = _kernel(_vectorized(f"at::native::CUDAFunctor_add<{BF16}>", 3, 8), "elementwise", 2_300,
                (64, 1, 1), (128, 1, 1), 24, 0, 9)
K_ADD_F32 = _kernel(_vectorized("at::native::CUDAFunctor_add<float>", 3), "elementwise", 1_800,
                    (8, 1, 1), (128, 1, 1), 20, 0, 2)
K_SOFTMAX = _kernel("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, "
                    "at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)",
                    "elementwise", 9_800, (8, 1, 1), (1024, 1, 1), 32, 64, 6)
K_ARGMAX = _kernel("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::ArgMaxOps<float>, "
                   "unsigned int, long, 4> >(at::native::ReduceOp<float, at::native::ArgMaxOps<float>, unsigned int, "
                   "long, 4>)", "elementwise", 7_400, (8, 1, 1), (32, 16, 1), 40, 4112, 6)
K_GEMM = _kernel("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off"
                 "_kernel__5x_cublas", "gemm", 18_000, (132, 1, 1), (384, 1, 1), 168, 213_008, 25)
K_FLASH = _kernel("void pytorch_flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, false, "
                  "cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t> >, false, false, "
                  "false, false, true, true, false, false>(Flash_fwd_params)", "attention", 14_000,
                  (1, 8, 32), (128, 1, 1), 255, 49_152, 6)
# Inductor kernels, launched by Triton through the driver API.
K_TRITON_NORM = _kernel("triton_red_fused_add_mean_mul_pow_rsqrt_0", "elementwise", 3_200,
                        (8, 1, 1), (512, 1, 1), 38, 64, 3)
K_TRITON_ROPE = _kernel("triton_poi_fused_add_cat_mul_neg_slice_1", "elementwise", 2_700,
                        (48, 1, 1), (128, 1, 1), 30, 0, 6)
K_TRITON_SILU = _kernel("triton_poi_fused_mul_silu_2", "elementwise", 2_900, (224, 1, 1), (128, 1, 1), 26, 0, 20)

CATEGORIES = ("fill", "cast", "copy", "gemm", "attention", "elementwise")


def cpu_event(cat: str, name: str, ts_ns: int, dur_ns: int, args: str) -> str:
    return (f'\n  {{\n    "ph": "X", "cat": "{cat}", "name": "{name}", "pid": {CPU_PID}, "tid": {CPU_PID},'
            f'\n    "ts": {ts(ts_ns)}, "dur": {ts(dur_ns)},\n    "args": {{\n      {args}\n    }}\n  }}')


def api_event(cat: str, name: str, ts_ns: int, dur_ns: int, ext: int, cbid: int, corr: int) -> str:
    """A CUDA runtime/driver call and its ac2g flow start."""
    return (f'\n  {{\n    "ph": "X", "cat": "{cat}", "name": "{name}", "pid": {CPU_PID}, "tid": {CPU_PID},'
            f'\n    "ts": {ts(ts_ns)}, "dur": {ts(dur_ns)},\n    "args": {{\n      "External id": {ext},'
            f'\n      "cbid": {cbid}, "correlation": {corr}\n    }}\n  }},'
            f'\n  {{\n    "ph": "s", "id": {corr}, "pid": {CPU_PID}, "tid": {CPU_PID}, "ts": {ts(ts_ns)},'
            f'\n    "cat": "ac2g", "name": "ac2g"\n  }}')


def _flow_end(corr: int, ts_ns: int) -> str:
    return (f'\n  {{\n    "ph": "f", "id": {corr}, "pid": {GPU_PID}, "tid": {STREAM}, "ts": {ts(ts_ns)},'
            f'\n    "cat": "ac2g", "name": "ac2g", "bp": "e"\n  }}')


def kernel_event(kernel: Kernel, ts_ns: int, dur_ns: int, ext: int, corr: int) -> str:
    """A kernel activity record and its ac2g flow end."""
    return (f'\n  {{\n    "ph": "X", "cat": "kernel", "name": "{kernel.name}", "pid": {GPU_PID}, "tid": {STREAM},'
            f'\n    "ts": {ts(ts_ns)}, "dur": {ts(dur_ns)},\n    "args": {{\n      "External id": {ext},'
            f'\n      "queued": 0, "device": {GPU_PID}, "context": 1,' + kernel.args % corr
            + '\n    }\n  },' + _flow_end(corr, ts_ns))


def memcpy_event(ts_ns: int, dur_ns: int, ext: int, corr: int, nbytes: int) -> str:
    """A host-to-device copy activity record and its ac2g flow end."""
    bandwidth = nbytes / dur_ns
    return (f'\n  {{\n    "ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)", '
            f'"pid": {GPU_PID}, "tid": {STREAM},\n    "ts": {ts(ts_ns)}, "dur": {ts(dur_ns)},'
            f'\n    "args": {{\n      "External id": {ext},\n      "device": {GPU_PID}, "context": 1,'
            f'\n      "stream": {STREAM}, "correlation": {corr},'
            f'\n      "bytes": {nbytes}, "memory bandwidth (GB/s)": {bandwidth!r}\n    }}\n  }},'
            + _flow_end(corr, ts_ns))


def gpu_annotation(name: str, ts_ns: int, dur_ns: int, ext: int) -> str:
    return (f'\n  {{\n    "ph": "X", "cat": "gpu_user_annotation", "name": "{name}", "pid": {GPU_PID}, '
            f'"tid": {STREAM},\n    "ts": {ts(ts_ns)}, "dur": {ts(dur_ns)},'
            f'\n    "args": {{\n      "External id": {ext}\n    }}\n  }}')


def header(trace_id: str) -> str:
    device = ('\n    {\n      "id": 0, "name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 84929216512,'
              '\n      "computeMajor": 9, "computeMinor": 0,'
              '\n      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,'
              '\n      "regsPerBlock": 65536, "regsPerMultiprocessor": 65536, "warpSize": 32,'
              '\n      "sharedMemPerBlock": 49152, "sharedMemPerMultiprocessor": 233472,'
              f'\n      "numSms": {SMS}, "sharedMemPerBlockOptin": 232448\n    }}')
    return ('\n{\n  "schemaVersion": 1,\n  "deviceProperties": [' + device + '\n  ],'
            '\n  "cupti_version": 24,\n  "cuda_runtime_version": 12080,\n  "cuda_driver_version": 12080,'
            '\n  "record_shapes": 1,'
            f'\n  "trace_id": "{trace_id}",\n  "traceEvents": [')


def _meta(name: str, ts_text: str, pid: int, tid: int, key: str, value: str) -> str:
    return (f'\n  {{\n    "name": "{name}", "ph": "M", "ts": {ts_text}, "pid": {pid}, "tid": {tid},'
            f'\n    "args": {{\n      "{key}": {value}\n    }}\n  }}')


def footer(start_ns: int, end_ns: int) -> tuple[str, int, int]:
    """Process/thread metadata, the profiler span and window instants, the closing keys.

    Returns (text, complete events in it, instant events in it).
    """
    t0 = ts(start_ns)
    events = [
        _meta("process_name", t0, CPU_PID, 0, "name", '"python3"'),
        _meta("process_labels", t0, CPU_PID, 0, "labels", '"CPU"'),
        _meta("process_sort_index", t0, CPU_PID, 0, "sort_index", str(CPU_PID)),
        _meta("process_name", t0, GPU_PID, 0, "name", '"python3"'),
        _meta("process_labels", t0, GPU_PID, 0, "labels", f'"GPU {GPU_PID}"'),
        _meta("process_sort_index", t0, GPU_PID, 0, "sort_index", str(16777216 + GPU_PID)),
        _meta("thread_name", t0, GPU_PID, STREAM, "name", f'"stream {STREAM} "'),
        _meta("thread_sort_index", t0, GPU_PID, STREAM, "sort_index", str(STREAM)),
        _meta("thread_name", t0, CPU_PID, CPU_PID, "name", f'"thread {CPU_PID} (python3)"'),
        _meta("thread_sort_index", t0, CPU_PID, CPU_PID, "sort_index", str(CPU_PID)),
        (f'\n  {{\n    "ph": "X", "cat": "Trace", "ts": {t0}, "dur": {ts(end_ns - start_ns)},'
         '\n    "pid": "Spans", "tid": "PyTorch Profiler",\n    "name": "PyTorch Profiler (0)",'
         '\n    "args": {\n      "Op count": 0\n    }\n  }'),
        (f'\n  {{\n    "name": "process_sort_index", "ph": "M", "ts": {t0},\n    "pid": "Spans", "tid": 0,'
         '\n    "args": {\n      "sort_index": 536870912\n    }\n  }'),
        ('\n  {\n    "name": "Iteration Start: PyTorch Profiler", "ph": "i", "s": "g",'
         f'\n    "pid": "Traces", "tid": "Trace PyTorch Profiler", "ts": {t0}\n  }}'),
        ('\n  {\n    "name": "Record Window End", "ph": "i", "s": "g",'
         f'\n    "pid": "", "tid": "", "ts": {ts(end_ns)}\n  }}'),
    ]
    text = ",".join(events) + ('\n  ],\n  "traceName": "decode_rank0.pt.trace.json",'
                               '\n  "displayTimeUnit": "ms",\n  "baseTimeNanoseconds": 1767225600000000000\n}')
    return text, 1, 2
