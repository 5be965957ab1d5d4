"""Source frames: each launch's innermost user-code Python frame, and a diff's changes per frame.

The demo pair (sample_traces/demo_stack_eager_*) is checked against the counts its code
states (collectors/demo_decode.py ``expected_counts``, per the functions of
collectors/demo_model.py that launch them); a real vLLM trace against frames found by walking
the raw JSON's python_function events by time, independently of the trace processor.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from conftest import public_trace
from traceview.collectors.demo_decode import expected_counts
from traceview.collectors.demo_model import NUM_LAYERS

from traceview.analyses.sources import SOURCE_COLUMNS, frame_deltas
from traceview.cache import cache_key
from traceview.errors import RulesError
from traceview.model.counts import analyze
from traceview.model.launches import GRAPH_LAUNCH_APIS, NO_FRAMES_WARNING, frame_filter

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
STACK = {v: SAMPLES / f"demo_stack_eager_{v}.pt.trace.json.gz" for v in ("before", "after")}
# ProfilerStep#2..#4 are recorded (wait 1, warmup 1, active 3), all steady decode steps
# (sample_traces/README.md): per-step counts hold with or without dropping the first.
SKIP = 0
DEMO = "traceview/collectors/demo_model.py"
FRAMES = {  # the demo's functions that launch what the fix changes (collectors/demo_model.py)
    "layer": rf"^{DEMO}\(\d+\): _layer$",  # per layer: the router-logit cast, the kv_stage copy
    "prefix": rf"^{DEMO}\(\d+\): prefix$",  # the two int64->int32 casts
    "fills": rf"^{DEMO}\(\d+\): _reset_metadata_buffers$",  # the metadata buffers' fill_
    # The Triton metadata kernel's launcher, called by DemoDecoder._mla_metadata.
    "metadata": r"^traceview/collectors/_mla_metadata_triton\.py\(\d+\): get_mla_metadata_v1$",
}


@pytest.fixture(scope="module")
def stack_counts():
    return {variant: analyze(path) for variant, path in STACK.items()}


def _rows(frame: pd.DataFrame, category: str, key: str) -> pd.DataFrame:
    return frame[(frame["category"] == category) & frame["frame"].fillna("").str.match(FRAMES[key])]


@pytest.mark.parametrize("variant", ["before", "after"])
def test_demo_launches_per_step_by_frame(stack_counts, variant):
    counts = stack_counts[variant]
    expected = expected_counts(variant)
    by_frame = counts.by_frame(SKIP)
    assert list(by_frame.columns) == ["category", "frame", "launches", "per_step"]

    def per_step(category: str, key: str) -> float:
        return float(_rows(by_frame, category, key)["per_step"].sum())

    assert per_step("cast", "layer") == expected.cast_bf16_fp32  # 58 before (one per MoE layer), 0 after
    assert per_step("cast", "prefix") == expected.cast_int64_int32  # 2 in both
    assert per_step("fill", "fills") == expected.fill  # 54 before, 0 after
    assert per_step("metadata", "metadata") == expected.metadata  # 1 before, 0 after (cached)
    assert per_step("copy", "layer") == expected.copy_bf16_bf16 == NUM_LAYERS  # one kv_stage write per layer
    # Every launch of the demo comes from its own code: none is left without a frame.
    assert by_frame["frame"].notna().all()
    assert by_frame["frame"].str.startswith("traceview/collectors/").all()
    assert counts.frame_warnings() == []


def test_demo_diff_by_frame(stack_counts):
    rows = frame_deltas(stack_counts["before"], stack_counts["after"], skip=1)  # --skip 1, as README's command
    assert list(rows.columns) == SOURCE_COLUMNS
    before = expected_counts("before")
    # Exactly the three removals of the fix, largest first; every other category is unchanged.
    assert rows["category"].tolist() == ["cast", "fill", "metadata"]
    assert [bool(re.match(FRAMES[k], f)) for k, f in zip(["layer", "fills", "metadata"], rows["frame"])] == [True] * 3
    assert rows["delta"].tolist() == [-before.cast_bf16_fp32, -before.fill, -before.metadata]  # -58, -54, -1
    assert rows["before_per_step"].tolist() == [58.0, 54.0, 1.0] and rows["after_per_step"].tolist() == [0.0] * 3


def test_frame_deltas_cover_each_category(stack_counts):
    # after -> before turns the removals into additions; coverage 0.5 still keeps each category's largest row.
    rows = frame_deltas(stack_counts["after"], stack_counts["before"], skip=SKIP, coverage=0.5)
    assert rows["delta"].tolist() == [58.0, 54.0, 1.0]
    assert frame_deltas(stack_counts["before"], stack_counts["before"], skip=SKIP).empty
    with pytest.raises(ValueError, match="coverage"):
        frame_deltas(stack_counts["before"], stack_counts["after"], coverage=0)


def test_traces_without_frames_say_so():
    counts = analyze(SAMPLES / "demo_eager_before.pt.trace.json.gz")  # recorded without with_stack
    assert counts.python_frames == 0 and counts.launches["frame"].isna().all()
    assert counts.frame_warnings() == [NO_FRAMES_WARNING]
    assert NO_FRAMES_WARNING not in counts.warnings  # counts alone do not nag about with_stack


@pytest.mark.parametrize("frame, user", [
    ("vllm/v1/worker/gpu_model_runner.py(3380): execute_model", True),
    ("/sgl-workspace/sglang/python/sglang/srt/layers/linear.py(10): forward", True),
    ("torch/nn/modules/module.py(1739): _wrapped_call_impl", False),
    ("triton/runtime/jit.py(560): run", False),
    ("typing.py(426): inner", False),  # the standard library, relative to its sys.path entry
    ("logging/__init__.py(1500): debug", False),
    ("/usr/lib/python3.12/contextlib.py(141): __exit__", False),
    ("/opt/venv/lib/python3.12/site-packages/foo/bar.py(3): f", False),
    ("/tmp/torchinductor_root/dn/cdn.py(16165): call", False),
    ("<built-in method copy_ of Tensor object at 0x7f1736f58870>", False),
    ("<frozen os>(717): __getitem__", False),
])
def test_packaged_frame_filter(frame, user):
    assert frame_filter().is_user(frame) is user


def test_frames_from_prefixes_decide_alone():
    only = frame_filter(("vllm/v1/", "torch/nn/"))
    assert only.is_user("vllm/v1/utils.py(130): copy_to_gpu") and only.is_user("torch/nn/functional.py(1): f")
    assert not only.is_user("vllm/_custom_ops.py(2519): reshape_and_cache_flash")
    for bad in ((), ("",)):
        with pytest.raises(RulesError, match="frames_from"):
            frame_filter(bad)


def test_frames_from_is_in_the_cache_key():
    path = STACK["before"]
    assert cache_key(path, None, None) != cache_key(path, None, None, frames_from=["vllm/"])
    assert cache_key(path, None, None, frames_from=["vllm/"]) == cache_key(path, None, None, frames_from=("vllm/",))


# ---- a real trace, frames found in the raw JSON by time

VLLM = ("vllm-prefilldecode-piecewise-mi300x", "graph_execution.json.gz")


def _raw_frames(path: Path, is_user) -> tuple[Counter, int]:
    """GPU events per source frame, found without the trace processor: for each launch call
    whose correlation id GPU events carry, the python_function events of its thread that
    contain its start; the innermost (latest-starting) one that ``is_user`` names wins.
    Returns (GPU events per frame, None for no frame; GPU events replayed by graph launches).
    Times as Decimal: Kineto's microseconds with three decimals compare exactly."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        events = json.load(fh, parse_float=Decimal)["traceEvents"]
    gpu = Counter(e["args"]["correlation"] for e in events
                  if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "correlation" in e.get("args", {}))
    frames: dict[tuple, list[dict]] = {}
    for e in events:
        if e.get("cat") == "python_function" and e.get("ph") == "X" and e["dur"] > 0 and is_user(e["name"]):
            frames.setdefault((e["pid"], e["tid"]), []).append(e)
    per_frame: Counter = Counter()
    replayed = 0
    seen = set()
    for call in events:
        corr = call.get("args", {}).get("correlation")
        if call.get("cat") not in ("cuda_runtime", "cuda_driver") or corr not in gpu or corr in seen:
            continue
        seen.add(corr)
        if call["name"] in GRAPH_LAUNCH_APIS:
            replayed += gpu[corr]
            per_frame[None] += gpu[corr]
            continue
        around = [f for f in frames.get((call["pid"], call["tid"]), [])
                  if f["ts"] <= call["ts"] < f["ts"] + f["dur"]]
        inner = max(around, key=lambda f: (f["ts"], -f["dur"]), default=None)
        per_frame[inner["name"] if inner else None] += gpu[corr]
    return per_frame, replayed


def _counted(counts) -> Counter:
    sums = counts.launches.groupby("frame", dropna=False)["launches"].sum()
    return Counter({(None if pd.isna(k) else k): int(v) for k, v in sums.items()})


def test_real_trace_frames_match_the_raw_json():
    path = public_trace(*VLLM)
    packaged = frame_filter()
    expected, replayed = _raw_frames(path, packaged.is_user)
    counts = analyze(path)
    assert _counted(counts) == expected
    # Numbers of this file, from the raw JSON (the walk above): 361 GPU events replayed by
    # hipGraphLaunch carry no frame; vLLM's KV-cache write launches 24.
    assert replayed == 361 and expected["vllm/_custom_ops.py(2519): reshape_and_cache_flash"] == 24
    assert counts.frame_warnings() == [f"{replayed} GPU events are graph replays, which have no frames at replay "
                                       "time: their source frame would be the replay call, not the code that "
                                       "captured them, so they have none"]
    # Prefixes reach the processor: only vllm/v1/ frames remain, the others fall back to their callers.
    narrow, _ = _raw_frames(path, frame_filter(("vllm/v1/",)).is_user)
    assert _counted(analyze(path, frames_from=["vllm/v1/"])) == narrow
    assert narrow != expected and all(k is None or k.startswith("vllm/v1/") for k in narrow)
