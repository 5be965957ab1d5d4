"""`traceview counts` on the GPU sample traces gives exactly the counts sample_traces/README.md derives
from collectors/demo_model.py, in eager and CUDA-graph mode, with ProfilerStep and vLLM-style markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from traceview.model.counts import analyze

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"

# Per recorded step (README "Expected counts per recorded step"):
#   fill: 54 full-buffer fill_ before, 0 after;  cast: 58 bf16->fp32 router casts before + 2 int64->int32
#   position casts in both;  copy: 61 strided bf16->bf16 copies;  metadata: 1 Triton kernel before, 0 after;
#   gemm: 425 cuBLAS nvjet kernels;  total GPU events 1143 before, 1030 after.
EXPECTED = {
    "before": {"fill": 54, "cast": 60, "copy": 61, "metadata": 1, "gemm": 425, "total": 1143},
    "after": {"fill": 0, "cast": 2, "copy": 61, "metadata": 0, "gemm": 425, "total": 1030},
}
# Graph mode: one cudaGraphLaunch replays the 61-layer forward; the prefix (2 int casts, 54 fills,
# the metadata kernel, ...) runs eagerly before it: 59 direct launches before, 4 after.
GRAPH_SPLIT = {"before": (1084, 59), "after": (1026, 4)}

CASES = [("demo_eager_{}.pt.trace.json.gz", "torch-profiler-step"),
         ("demo_graph_{}.pt.trace.json.gz", "torch-profiler-step"),
         ("demo_vllm_eager_{}.pt.trace.json.gz", "vllm-execute")]


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{name} is not in sample_traces/")
    return path


@pytest.mark.parametrize("variant", ["before", "after"])
@pytest.mark.parametrize("pattern,marker", CASES)
def test_sample_counts_per_step(pattern: str, marker: str, variant: str) -> None:
    counts = analyze(sample(pattern.format(variant)))
    assert counts.step_marker == marker and len(counts.steps) == 5
    per_step = counts.per_step()
    per_step["total"] = per_step.sum(axis=1)
    for category, expected in EXPECTED[variant].items():
        assert per_step[category].tolist() == [expected] * 5, category
    assert sum(counts.outside_steps().values()) == 0
    if "graph" in pattern:
        graph, direct = GRAPH_SPLIT[variant]
        assert counts.steps.graph_replayed.tolist() == [graph] * 5
        assert counts.steps.direct.tolist() == [direct] * 5


def test_casts_are_told_apart_by_dtype() -> None:
    kernels = analyze(sample("demo_eager_before.pt.trace.json.gz")).kernels()
    casts = kernels[kernels.category == "cast"]
    # Same kernel family for both; only the launching aten::copy_'s Input types separate them.
    assert sorted(zip(casts.src_dtype, casts.dst_dtype, casts.per_step)) == [
        ("bfloat16", "float32", 58.0), ("int64", "int32", 2.0)]
