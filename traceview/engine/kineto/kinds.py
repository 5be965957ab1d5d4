"""What each Chrome/Kineto event category is, for conservation, lanes and lean loading.

Kineto has named its categories differently across versions: ``kernel`` /
``gpu_memcpy`` / ``gpu_memset`` / ``cuda_runtime`` / ``cpu_op`` today, and
``Kernel`` / ``Memcpy`` / ``Memset`` / ``Runtime`` / ``Operator`` in the 2021
schema. ROCm Kineto keeps the CUDA names. The model's SQL
(``model/sql/gpu_events.sql``) lists the same categories; a test keeps the two in step.
"""

from __future__ import annotations

# Event kinds, small ints so that a piece's kinds fit one int8 array.
KERNEL, MEMCPY, MEMSET, LAUNCH, CPU_OP, PYTHON, ANNOTATION, OTHER = range(8)
GPU_KINDS = (KERNEL, MEMCPY, MEMSET)
KIND_NAMES = ("kernel", "memcpy", "memset", "launch call", "cpu op", "python frame", "annotation", "other")

CATEGORY_KIND: dict[str, int] = {
    "kernel": KERNEL, "Kernel": KERNEL,
    "gpu_memcpy": MEMCPY, "Memcpy": MEMCPY,
    "gpu_memset": MEMSET, "Memset": MEMSET,
    # Launch-side calls: the CUDA/HIP runtime, and the driver (Triton launches
    # through cuLaunchKernelEx, category cuda_driver).
    "cuda_runtime": LAUNCH, "cuda_driver": LAUNCH, "Runtime": LAUNCH, "hip_runtime": LAUNCH,
    "cpu_op": CPU_OP, "Operator": CPU_OP,
    "python_function": PYTHON,
    "user_annotation": ANNOTATION, "gpu_user_annotation": ANNOTATION, "marker_api": ANNOTATION,
}

# Where two slices of one thread cross, the lower-priority one gives way and
# moves to an overlap lane. Python frames (with_stack) cross profiler-owned
# slices routinely (``profiler.py: step`` ends just after ProfilerStep#N
# begins); a frame must never push an op, annotation or launch call aside.
YIELDING_KINDS = frozenset({PYTHON})
