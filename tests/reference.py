"""An independent count of GPU events per step, straight from a Kineto JSON file.

No trace processor, no traceview code: the whole file is parsed with the
standard library (timestamps as exact Decimals), every GPU event ("X" event of
category kernel/gpu_memcpy/gpu_memset and their 2021 names) is joined to the
launch call that carries its correlation id, and it belongs to the step whose
CPU-side marker holds that call's start. Tests compare traceview's answer with
this one.
"""

from __future__ import annotations

import bisect
import gzip
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

GPU = {"kernel", "Kernel", "gpu_memcpy", "Memcpy", "gpu_memset", "Memset"}
LAUNCH = {"cuda_runtime", "cuda_driver", "Runtime", "hip_runtime"}
GPU_SIDE = {"gpu_user_annotation"}


@dataclass
class Reference:
    per_step: list[int]  # GPU events per step, steps in time order
    outside: int  # GPU events launched outside every step, or with no launch call
    gpu_events: int


def load_events(path: Path) -> list[dict]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    doc = json.loads(raw, parse_float=Decimal)
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def count(path: Path, marker: str) -> Reference:
    """Per-step GPU events for the steps named by the regex ``marker``."""
    events = [e for e in load_events(path) if e.get("ph") == "X"]
    pattern = re.compile(marker)
    steps = sorted((Decimal(e["ts"]), Decimal(e["ts"]) + Decimal(e.get("dur", 0))) for e in events
                   if e.get("cat") not in GPU | GPU_SIDE and pattern.search(str(e.get("name", ""))))
    starts = [lo for lo, _ in steps]
    launches: dict[int, Decimal] = {}
    for e in events:
        corr = (e.get("args") or {}).get("correlation")
        if e.get("cat") in LAUNCH and corr is not None:
            launches.setdefault(int(corr), Decimal(e["ts"]))
    per_step, outside, gpu = [0] * len(steps), 0, 0
    for e in events:
        if e.get("cat") not in GPU:
            continue
        gpu += 1
        corr = (e.get("args") or {}).get("correlation")
        at = launches.get(int(corr)) if corr is not None else None
        i = bisect.bisect_right(starts, at) - 1 if at is not None else -1
        if i >= 0 and at < steps[i][1]:
            per_step[i] += 1
        else:
            outside += 1
    return Reference(per_step, outside, gpu)
