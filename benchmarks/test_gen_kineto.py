"""Checks the synthetic trace generator: deterministic output, a sidecar that
matches an independent count of the JSON, and traceview agreeing with both.

Not under tests/ (the benchmark tooling is not the product): run with
``pytest benchmarks/test_gen_kineto.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import gen_kineto

LAYERS = 2  # small steps: ~75 kB each
TARGET = 400_000


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("gen") / "small.json"
    expected = gen_kineto.generate(path, TARGET, seed=7, layers=LAYERS)
    return path, expected


def _category(name: str) -> str:
    """The generator's ground truth, re-derived from the kernel name alone."""
    if "FillFunctor" in name:
        return "fill"
    if "direct_copy_kernel_cuda" in name:
        return "cast" if "LoadWithCast" in name else "copy"
    if "gemm" in name:
        return "gemm"
    if "flash" in name:
        return "attention"
    return "elementwise"


def _independent_counts(events: list[dict]) -> list[Counter]:
    """Per CPU ProfilerStep: GPU work whose launch call starts inside the step."""
    steps = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                   if e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep#"))
    calls = {e["args"]["correlation"]: e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver")}
    counts = [Counter() for _ in steps]
    for e in events:
        if e.get("cat") not in ("kernel", "gpu_memcpy"):
            continue
        call = calls[e["args"]["correlation"]]
        index = next(i for i, (start, end) in enumerate(steps) if start <= call["ts"] <= end)
        c = counts[index]
        if e["cat"] == "gpu_memcpy":
            c["memcpy"] += 1
            continue
        c["kernels"] += 1
        c[_category(e["name"])] += 1
        c["triton"] += call["name"] == "cuLaunchKernelEx"
        c["graph_kernels"] += call["name"] == "cudaGraphLaunch"
    return counts


def test_same_seed_same_bytes(tmp_path, small_trace):
    path, _ = small_trace
    again = tmp_path / "again.json"
    gen_kineto.generate(again, TARGET, seed=7, layers=LAYERS)
    assert again.read_bytes() == path.read_bytes()
    assert Path(str(again) + ".expected.json").read_text() == Path(str(path) + ".expected.json").read_text()


def test_sidecar_matches_the_json(small_trace):
    path, expected = small_trace
    doc = json.loads(path.read_text())  # also proves the streamed text is valid JSON
    events = doc["traceEvents"]
    assert expected["bytes"] == path.stat().st_size >= TARGET
    assert len(events) == expected["totals"]["trace_events"]
    assert sum(e["ph"] == "X" for e in events) == expected["totals"]["complete_events"]
    counts = _independent_counts(events)
    assert len(counts) == expected["steps"]
    for key in ("kernels", "fill", "cast", "copy", "gemm", "attention", "elementwise", "triton",
                "graph_kernels", "memcpy"):
        assert [c[key] for c in counts] == expected["per_step"][key], key
    # Every step replays one graph of 5-7 kernels that all share one correlation id.
    graph_corrs = Counter(e["args"]["correlation"] for e in events if e.get("cat") == "kernel"
                          and e["args"]["correlation"] in {x["args"]["correlation"] for x in events
                                                           if x.get("name") == "cudaGraphLaunch"})
    assert set(graph_corrs.values()) <= {5, 6, 7}
    assert len(graph_corrs) == expected["steps"]


def test_traceview_counts_match_sidecar(small_trace):
    from traceview.engine import open_trace
    from traceview.model.counts import count_launches

    path, expected = small_trace
    with open_trace(path) as trace:
        slices = int(trace.query("select count(*) as n from slice").n.iloc[0])
        counts = count_launches(trace)
    assert slices == expected["totals"]["slices"]
    per_step = counts.per_step()
    steps = expected["per_step"]
    for category in ("fill", "cast", "gemm", "attention", "elementwise"):
        assert per_step[category].tolist() == steps[category], category
    # traceview's default rules file memcpy commands under "copy".
    assert per_step["copy"].tolist() == [a + b for a, b in zip(steps["copy"], steps["memcpy"])]
    assert counts.steps["graph_replayed"].tolist() == steps["graph_kernels"]
