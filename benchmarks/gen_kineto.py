"""Writes a deterministic, Kineto-shaped (torch.profiler) JSON trace of a target size.

The trace looks like an LLM decode loop profiled with ``record_shapes=True`` on
one H100: per step a ``ProfilerStep#N`` user_annotation (and its
``gpu_user_annotation`` copy on the GPU stream), ``aten::`` cpu_ops with
"Input type"/"Input Dims" args, each kernel launched by ``cudaLaunchKernel`` and
linked to it by ``ac2g`` flows, Triton kernels launched by ``cuLaunchKernelEx``
(``cuda_driver``), one ``cudaGraphLaunch`` replaying several kernels under one
correlation id, ``fill_`` -> FillFunctor, bf16<->float ``aten::copy_`` ->
``direct_copy_kernel_cuda`` casts, and one host-to-device memcpy.

Steps are written one at a time, so memory stays flat whatever the size. Next to
the trace, ``<trace>.expected.json`` records the exact counts generated, per step
and in total, for benchmarks and tests to compare every tool against.

    python -m benchmarks.gen_kineto 1GB benchmarks/data/kineto_1GB.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks import kineto_shapes as ks

GENERATOR_VERSION = 2
COUNT_KEYS = ("kernels", *ks.CATEGORIES, "triton", "memcpy", "graph_launches", "graph_kernels",
              "launch_calls", "cpu_ops")


@dataclass
class _Step:
    """Everything one step writes, and what it counted."""

    cpu: list[str] = field(default_factory=list)
    gpu: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    gpu_first: int | None = None
    gpu_last: int = 0


class _Builder:
    """Builds one step at a time: a CPU clock, a GPU clock and the running ids."""

    def __init__(self, rng: random.Random, layers: int, start_ns: int) -> None:
        self.rng = rng
        self.layers = layers
        self.cpu_ns = start_ns
        self.gpu_ns = start_ns
        self.ext = 0  # External id: one per cpu_op / annotation
        self.corr = 0  # CUPTI correlation id: one per API call
        self.ev_idx = 0  # Kineto's "Ev Idx": position among CPU-side ops
        self.step: _Step = _Step()

    def _tick(self, lo: int, hi: int) -> None:
        self.cpu_ns += self.rng.randint(lo, hi)

    def op(self, name: str, inputs: list[tuple[str, list[int], str]] | None = None,
           body: Callable[[int], None] | None = None, cat: str = "cpu_op") -> None:
        """Writes a CPU op around whatever ``body(external_id)`` emits inside it.

        ``inputs``: (torch type, dims, concrete value) per argument, as record_shapes writes them.
        """
        slot = len(self.step.cpu)
        self.step.cpu.append("")
        self.ext += 1
        ext, idx, start = self.ext, self.ev_idx, self.cpu_ns
        self.ev_idx += 1
        self._tick(800, 2_500)
        if body is not None:
            body(ext)
        self._tick(300, 1_200)
        self.step.cpu[slot] = ks.cpu_event(cat, name, start, self.cpu_ns - start, _op_args(ext, idx, inputs))
        if cat == "cpu_op":
            self.step.counts["cpu_ops"] += 1

    def _api(self, cat: str, name: str, cbid: int, ext: int) -> tuple[int, int]:
        """Emits a runtime/driver call; returns (its correlation id, its start ns)."""
        self.corr += 1
        start = self.cpu_ns
        dur = self.rng.randint(2_500, 6_000) if cat == "cuda_runtime" else self.rng.randint(3_500, 8_000)
        self.step.cpu.append(ks.api_event(cat, name, start, dur, ext, cbid, self.corr))
        self.cpu_ns += dur
        self.step.counts["launch_calls"] += 1
        return self.corr, start

    def _run_on_gpu(self, launched_at: int, typical_ns: int) -> tuple[int, int]:
        start = max(self.gpu_ns, launched_at + self.rng.randint(3_000, 6_000))
        dur = typical_ns + self.rng.randint(-typical_ns // 10, typical_ns // 10)
        self.gpu_ns = start + dur + self.rng.randint(600, 1_500)
        step = self.step
        step.gpu_first = start if step.gpu_first is None else step.gpu_first
        step.gpu_last = start + dur
        return start, dur

    def _kernel(self, kernel: ks.Kernel, launched_at: int, ext: int, corr: int) -> None:
        start, dur = self._run_on_gpu(launched_at, kernel.dur_ns)
        self.step.gpu.append(ks.kernel_event(kernel, start, dur, ext, corr))
        self.step.counts[kernel.category] += 1
        self.step.counts["kernels"] += 1

    def launch(self, kernel: ks.Kernel, ext: int) -> None:
        """cudaLaunchKernel, or cuLaunchKernelEx for Triton kernels, and the kernel it starts."""
        triton = kernel.name.startswith("triton_")
        cat, name, cbid = (("cuda_driver", "cuLaunchKernelEx", ks.CBID_CU_LAUNCH_KERNEL_EX) if triton
                           else ("cuda_runtime", "cudaLaunchKernel", ks.CBID_LAUNCH_KERNEL))
        corr, at = self._api(cat, name, cbid, ext)
        self._kernel(kernel, at, ext, corr)
        self.step.counts["triton"] += triton

    def graph_launch(self, kernels: list[ks.Kernel], ext: int) -> None:
        """One cudaGraphLaunch: every replayed kernel carries its correlation id."""
        corr, at = self._api("cuda_runtime", "cudaGraphLaunch", ks.CBID_GRAPH_LAUNCH, ext)
        for kernel in kernels:
            self._kernel(kernel, at, ext, corr)
        self.step.counts["graph_launches"] += 1
        self.step.counts["graph_kernels"] += len(kernels)

    def memcpy(self, nbytes: int, ext: int) -> None:
        corr, at = self._api("cuda_runtime", "cudaMemcpyAsync", ks.CBID_MEMCPY_ASYNC, ext)
        start, dur = self._run_on_gpu(at, 1_400)
        self.step.gpu.append(ks.memcpy_event(start, dur, ext, corr, nbytes))
        self.step.counts["memcpy"] += 1


def _dims(dims: list[int]) -> str:
    return "[" + ", ".join(map(str, dims)) + "]"


def _strides(dims: list[int]) -> str:
    out, acc = [], 1
    for d in reversed(dims):
        out.append(acc)
        acc *= d
    return _dims(out[::-1])


def _op_args(ext: int, idx: int, inputs: list[tuple[str, list[int], str]] | None) -> str:
    """cpu_op args in torch's order: ids, then Concrete Inputs / Input type / Strides / Dims."""
    if inputs is None:
        return f'"External id": {ext},"Record function id": 0, "Ev Idx": {idx}'
    concrete = ", ".join(json.dumps(c) for _, _, c in inputs)
    types = ", ".join(f'"{t}"' for t, _, _ in inputs)
    strides = ", ".join(_strides(d) if t not in ("Scalar", "") else "[]" for t, d, _ in inputs)
    dims = ", ".join(_dims(d) for _, d, _ in inputs)
    return (f'"External id": {ext},"Record function id": 0, "Concrete Inputs": [{concrete}], '
            f'"Input type": [{types}], "Input Strides": [{strides}], "Input Dims": [{dims}], "Ev Idx": {idx}')


def _tensor(dtype: str, dims: list[int]) -> tuple[str, list[int], str]:
    return (dtype, dims, "")


def _scalar(value: str) -> tuple[str, list[int], str]:
    return ("Scalar", [], value)


# The modelled decoder: batch of 8 tokens, hidden 4096, 8 KV heads, MLP 14336.
BATCH, HIDDEN, KV, HEAD_DIM, FFN = 8, 4096, 1024, 128, 14336
FLOAT_CODE, BF16_CODE = "6", "15"  # c10::ScalarType values as torch prints them
DTYPE_CODE = {"float": FLOAT_CODE, ks.BF16: BF16_CODE, "long int": "4"}
START_NS = 2_000_000_000_000_000


def _cast(b: _Builder, src: str, dst: str, kernel: ks.Kernel) -> None:
    """x.to(dst): aten::to > aten::_to_copy > (aten::empty_strided, aten::copy_ > launch)."""
    shape, code = [BATCH, HIDDEN], DTYPE_CODE[dst]
    b.op("aten::to", [_tensor(src, shape), _scalar(code), _scalar("False"), _scalar("False"), ("", [], "")],
         lambda ext: b.op("aten::_to_copy", [_tensor(src, shape), _scalar(code), ("", [], ""), ("", [], ""),
                                             ("", [], ""), _scalar("False"), ("", [], "")],
                          lambda ext: _alloc_and_copy(b, src, dst, shape, lambda e: b.launch(kernel, e))))


def _alloc_and_copy(b: _Builder, src: str, dst: str, shape: list[int], launch: Callable[[int], None]) -> None:
    b.op("aten::empty_strided", [("ScalarList", [], str(shape)), ("ScalarList", [], str([shape[-1], 1])),
                                 _scalar(DTYPE_CODE[dst]), _scalar("0"),
                                 ("", [], ""), _scalar("False")])
    b.op("aten::copy_", [_tensor(dst, shape), _tensor(src, shape), _scalar("False")], launch)


def _inputs_to_device(b: _Builder) -> None:
    """input_ids.to("cuda", non_blocking=True): a same-dtype copy_, done by cudaMemcpyAsync."""
    shape, long = [BATCH], "long int"
    b.op("aten::to", [_tensor(long, shape), ("", [], ""), ("", [], ""), ("", [], ""), _scalar("True"),
                      _scalar("False"), ("", [], "")],
         lambda ext: b.op("aten::_to_copy", [_tensor(long, shape), ("", [], ""), ("", [], ""), ("", [], ""),
                                             ("", [], ""), _scalar("True"), ("", [], "")],
                          lambda ext: _alloc_and_copy(b, long, long, shape, lambda e: b.memcpy(8 * BATCH, e))))


def _zeros(b: _Builder) -> None:
    """torch.zeros: aten::zeros > (aten::empty, aten::zero_ > aten::fill_ > FillFunctor)."""
    shape = [BATCH, HIDDEN]
    sizes = [("ScalarList", [], str(shape)), _scalar(BF16_CODE), ("", [], ""), _scalar("0"), ("", [], "")]

    def body(ext: int) -> None:
        b.op("aten::empty", sizes + [("", [], "")])
        b.op("aten::zero_", [_tensor(ks.BF16, shape)],
             lambda e: b.op("aten::fill_", [_tensor(ks.BF16, shape), _scalar("0")],
                            lambda e2: b.launch(ks.K_FILL, e2)))
    b.op("aten::zeros", sizes, body)


def _linear(b: _Builder, n_in: int, n_out: int) -> None:
    """F.linear without bias: aten::linear > (aten::t > aten::transpose > aten::as_strided, aten::mm > GEMM)."""
    x, w = _tensor(ks.BF16, [BATCH, n_in]), _tensor(ks.BF16, [n_out, n_in])

    def body(ext: int) -> None:
        b.op("aten::t", [w], lambda e: b.op("aten::transpose", [w, _scalar("0"), _scalar("1")],
                                            lambda e2: b.op("aten::as_strided", [w, ("", [], ""), ("", [], ""),
                                                                                 ("", [], "")])))
        b.op("aten::mm", [x, _tensor(ks.BF16, [n_in, n_out])], lambda e: b.launch(ks.K_GEMM, e))
    b.op("aten::linear", [x, w, ("", [], "")], body)


def _attention(b: _Builder, ctx: int) -> None:
    """SDPA on the flash backend, batch of single-token queries against ``ctx`` cached keys."""
    q, kv = _tensor(ks.BF16, [BATCH, 32, 1, HEAD_DIM]), _tensor(ks.BF16, [BATCH, 8, ctx, HEAD_DIM])
    args = [q, kv, kv, ("", [], ""), _scalar("0."), _scalar("False"), ("", [], ""), _scalar("True")]

    def flash(ext: int) -> None:
        b.op("aten::empty", [("ScalarList", [], str([BATCH, 1, 32, HEAD_DIM])), ("", [], ""), ("", [], ""),
                             ("", [], ""), ("", [], ""), ("", [], "")])
        b.launch(ks.K_FLASH, ext)
    b.op("aten::scaled_dot_product_attention", args,
         lambda e: b.op("aten::_scaled_dot_product_flash_attention", args[:3] + [_scalar("0."), _scalar("True")],
                        lambda e2: b.op("aten::_flash_attention_forward", args[:3], flash)))


def _elementwise(b: _Builder, name: str, kernel: ks.Kernel) -> None:
    shape = [BATCH, HIDDEN]
    b.op(name, [_tensor(ks.BF16, shape), _tensor(ks.BF16, shape), _scalar("1")], lambda e: b.launch(kernel, e))


def _triton(b: _Builder, kernel: ks.Kernel) -> None:
    """An Inductor kernel: the record_function Inductor opens around it, then cuLaunchKernelEx."""
    b.op(kernel.name, None, lambda e: b.launch(kernel, e))


def _layer(b: _Builder, ctx: int) -> None:
    _cast(b, ks.BF16, "float", ks.K_CAST_UP)
    _triton(b, ks.K_TRITON_NORM)
    _cast(b, "float", ks.BF16, ks.K_CAST_DOWN)
    _linear(b, HIDDEN, HIDDEN + 2 * KV)
    _triton(b, ks.K_TRITON_ROPE)
    kv = [BATCH, 8, 1, HEAD_DIM]
    b.op("aten::copy_", [_tensor(ks.BF16, kv), _tensor(ks.BF16, kv), _scalar("False")],
         lambda e: b.launch(ks.K_COPY, e))
    _attention(b, ctx)
    _linear(b, HIDDEN, HIDDEN)
    _elementwise(b, "aten::add", ks.K_ADD)
    _linear(b, HIDDEN, 2 * FFN)
    _triton(b, ks.K_TRITON_SILU)
    _linear(b, FFN, HIDDEN)
    _elementwise(b, "aten::add_", ks.K_ADD)


def _sampler(b: _Builder) -> list[ks.Kernel]:
    """The CUDA graph replayed at the end of each step (the sampler), 5 to 7 kernels."""
    extra = b.rng.randint(1, 3)
    return [ks.K_FILL_F32, ks.K_CAST_UP, ks.K_SOFTMAX, ks.K_ARGMAX] + [ks.K_ADD_F32] * extra


def build_step(b: _Builder, number: int, ctx: int) -> _Step:
    """One decode step: inputs to GPU, 1-3 torch.zeros, the layers, one graph replay."""
    b.step = step = _Step()
    b.cpu_ns = max(b.cpu_ns, b.gpu_ns) + b.rng.randint(20_000, 60_000)  # .item() waited for the GPU
    name = f"ProfilerStep#{number}"
    step_ext = b.ext + 1

    def body(ext: int) -> None:
        _inputs_to_device(b)
        for _ in range(b.rng.randint(1, 3)):
            _zeros(b)
        for _ in range(b.layers):
            _layer(b, ctx)
        b.graph_launch(_sampler(b), ext)
    b.op(name, None, body, cat="user_annotation")
    assert step.gpu_first is not None
    step.gpu.append(ks.gpu_annotation(name, step.gpu_first, step.gpu_last - step.gpu_first, step_ext))
    return step


def parse_size(text: str) -> int:
    """'100MB', '1GB', '1.5GiB', '2000000' -> bytes (MB/GB are powers of ten, MiB/GiB of two)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]i?[bB])?\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100MB, 1GB, 1.5GiB)")
    unit = (match.group(2) or "b").lower()
    scale = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
    return int(float(match.group(1)) * scale)


def generate(path: Path, target_bytes: int, seed: int = 0, layers: int = 32, first_step: int = 1) -> dict:
    """Writes the trace (atomically) and its ``.expected.json``; returns the expected dict.

    The trace ends within one step (~1 MB at 32 layers) above ``target_bytes``.
    """
    rng = random.Random(seed)
    b = _Builder(rng, layers, START_NS)
    columns: dict[str, list] = {"step": [], **{k: [] for k in COUNT_KEYS}}
    events = {"X": 0, "s": 0, "f": 0, "all": 0}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two generators may race for one path
    with tmp.open("w", encoding="ascii", buffering=16 << 20) as out:
        written = out.write(ks.header(f"{rng.getrandbits(128):032X}"))
        number = first_step
        while written < target_bytes or number == first_step:
            step = build_step(b, number, ctx=512 + number - first_step)
            text = ",".join(step.cpu + step.gpu)
            written += out.write(text if number == first_step else "," + text)
            for ph in ("X", "s", "f"):
                events[ph] += text.count(f'"ph": "{ph}"')
            events["all"] += text.count('"ph": ')
            columns["step"].append(f"ProfilerStep#{number}")
            for key in COUNT_KEYS:
                columns[key].append(step.counts[key])
            number += 1
        text, spans, instants = ks.footer(START_NS, max(b.cpu_ns, b.gpu_ns))
        written += out.write("," + text)
        events["all"] += text.count('"ph": ')
    expected = _expected(columns, events, spans, instants, written, target_bytes, seed, layers)
    tmp.replace(path)
    sidecar = Path(str(path) + ".expected.json")
    sidecar_tmp = sidecar.with_name(f"{sidecar.name}.{os.getpid()}.tmp")
    sidecar_tmp.write_text(_dump(expected))
    sidecar_tmp.replace(sidecar)
    return expected


def _expected(columns: dict[str, list], events: dict[str, int], spans: int, instants: int, written: int,
              target: int, seed: int, layers: int) -> dict:
    totals = {key: sum(columns[key]) for key in COUNT_KEYS}
    complete = events["X"] + spans
    return {
        "generator": "benchmarks/gen_kineto.py", "generator_version": GENERATOR_VERSION,
        "seed": seed, "layers": layers, "target_bytes": target, "bytes": written,
        "steps": len(columns["step"]),
        "meaning": {
            "kernels": "kernel events launched inside the step (graph-replayed ones included); "
                       "= fill + cast + copy + gemm + attention + elementwise",
            "triton": "kernels launched by cuLaunchKernelEx (counted in elementwise)",
            "memcpy": "gpu_memcpy events (not kernels; traceview's default rules count them as 'copy')",
            "graph_kernels": "kernels replayed by the step's cudaGraphLaunch, all sharing its correlation id "
                             "(1 fill, 1 cast, 3-5 elementwise)",
            "launch_calls": "cudaLaunchKernel + cuLaunchKernelEx + cudaGraphLaunch + cudaMemcpyAsync calls",
            "cpu_ops": "cpu_op events (ProfilerStep is a user_annotation, not counted)",
            "complete_events": "'X' events in the file",
            "slices": "'X' plus global instant events: what `select count(*) from slice` returns",
            "trace_events": "entries of traceEvents (slices, flows, metadata): what json.load returns",
        },
        "totals": {**totals, "complete_events": complete, "instants": instants, "slices": complete + instants,
                   "flow_starts": events["s"], "flow_ends": events["f"], "trace_events": events["all"]},
        "per_step": columns,
    }


def _dump(expected: dict) -> str:
    """Indented JSON, but each per-step column on one line (thousands of steps)."""
    head = {k: v for k, v in expected.items() if k != "per_step"}
    columns = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in expected["per_step"].items())
    return json.dumps(head, indent=1)[:-2] + ',\n "per_step": {\n' + columns + "\n }\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=parse_size, help="target size, e.g. 100MB, 1GB, 2GB")
    parser.add_argument("out", type=Path, help="trace path to write (.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=32, help="decoder layers per step (default 32)")
    args = parser.parse_args(argv)
    expected = generate(args.out, args.size, args.seed, args.layers)
    print(f"{args.out}: {expected['bytes']} bytes, {expected['steps']} steps, "
          f"{expected['totals']['kernels']} kernels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
