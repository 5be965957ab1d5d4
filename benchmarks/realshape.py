"""Real-shaped Kineto traces: a real public trace's events, replicated to any size.

Generated traces hide costs that real ones show (a quadratic join did), so the
speed benchmarks also run on copies of a real trace: HolisticTraceAnalysis's
A100 trace (``../shared/traces/public/hta-a100-cudagraph-steps``, MIT, not
committed here). Its ``traceEvents`` are written N times, byte for byte as
Kineto wrote them, each copy shifted later in time by the trace's span plus 1 ms,
with correlation ids, External ids, flow ids and ProfilerStep numbers shifted
past the previous copy's. So every copy keeps the real shape: 5 ProfilerSteps of
1,075 kernels and 300 memcpys/memsets, CUDA-graph launches, improperly nested
calls, and 705 kernels launched outside the steps.

    python -m benchmarks.realshape 1GB benchmarks/data/realshape_1GB.json

writes the trace and ``<trace>.expected.json`` (kernels per step, derived from
the source trace with a plain Python join on correlation ids, times the copies).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

from benchmarks.gen_kineto import parse_size

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "traces" / "public" / "hta-a100-cudagraph-steps" / "rank0.json.gz"
GENERATOR_VERSION = 1

_TS = re.compile(rb'("ts": )(\d+)')
_IDS = re.compile(rb'("(?:correlation|External id|id)": )(\d+)')
_STEP = re.compile(rb"(ProfilerStep#)(\d+)")
_LAUNCH_CATS = {"cuda_runtime", "cuda_driver"}
_GPU_CATS = {"kernel": "kernel", "gpu_memcpy": "memcpy", "gpu_memset": "memset"}


def _parts(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(head up to and including '[', the events text, the tail from ']')."""
    start = raw.index(b"[", raw.index(b'"traceEvents"')) + 1
    end = raw.rindex(b"]")
    return raw[:start], raw[start:end].strip(), raw[end:]


def source_facts(doc: dict) -> dict:
    """Per-step GPU events of the source trace: each GPU event belongs to the
    ProfilerStep whose CPU window holds its launch call (same correlation id)."""
    events = doc["traceEvents"]
    steps = sorted((e["ts"], e["ts"] + e["dur"], e["name"]) for e in events if e.get("ph") == "X"
                   and e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep#"))
    launch_ts = {e["args"]["correlation"]: e["ts"] for e in events
                 if e.get("ph") == "X" and e.get("cat") in _LAUNCH_CATS and "correlation" in e.get("args", {})}
    per_step = {name: {"kernel": 0, "memcpy": 0, "memset": 0} for _, _, name in steps}
    outside = {"kernel": 0, "memcpy": 0, "memset": 0}
    for e in events:
        kind = _GPU_CATS.get(e.get("cat"))
        if e.get("ph") != "X" or kind is None:
            continue
        ts = launch_ts.get(e.get("args", {}).get("correlation"))
        step = next((name for lo, hi, name in steps if ts is not None and lo <= ts < hi), None)
        (per_step[step] if step else outside)[kind] += 1
    span = max(e["ts"] + e.get("dur", 0) for e in events if "ts" in e and e.get("ph") != "M") - \
        min(e["ts"] for e in events if "ts" in e and e.get("ph") != "M")
    ids = [e.get("args", {}).get(k) for e in events for k in ("correlation", "External id")] + \
          [e.get("id") for e in events]
    return {"per_step": per_step, "outside": outside, "span_us": span,
            "id_stride": max(i for i in ids if isinstance(i, int)) + 1,
            "step_stride": len(steps), "first_step": int(steps[0][2].split("#")[1])}


def generate(out: Path, target_bytes: int, source: Path = SOURCE) -> dict:
    raw = gzip.decompress(source.read_bytes())
    doc = json.loads(raw)
    facts = source_facts(doc)
    head, body, tail = _parts(raw)
    copies = max(1, round(target_bytes / len(body)))
    shift_us = facts["span_us"] + 1000
    expected: dict[str, dict] = {}
    with out.open("wb") as fh:
        fh.write(head + b"\n")
        for k in range(copies):
            text = body
            if k:
                text = _TS.sub(lambda m: m.group(1) + b"%d" % (int(m.group(2)) + k * shift_us), text)
                text = _IDS.sub(lambda m: m.group(1) + b"%d" % (int(m.group(2)) + k * facts["id_stride"]), text)
                text = _STEP.sub(lambda m: m.group(1) + b"%d" % (int(m.group(2)) + k * facts["step_stride"]), text)
                fh.write(b",\n")
            fh.write(text)
            for name, counts in facts["per_step"].items():
                number = int(name.split("#")[1]) + k * facts["step_stride"]
                expected[f"ProfilerStep#{number}"] = counts
        fh.write(b"\n" + tail)
    sidecar = {"generator_version": GENERATOR_VERSION, "source": source.name, "copies": copies,
               "target_bytes": target_bytes, "bytes": out.stat().st_size, "steps": len(expected),
               "per_step": expected, "outside_steps": {k: v * copies for k, v in facts["outside"].items()}}
    Path(str(out) + ".expected.json").write_text(json.dumps(sidecar, indent=1))
    return sidecar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=parse_size, help="target size, e.g. 100MB, 1GB, 2.5GB")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if not SOURCE.exists():
        print(f"source trace not found: {SOURCE} (it lives in ../shared beside the checkout)", file=sys.stderr)
        return 2
    facts = generate(args.out, args.size)
    print(f"{args.out}: {facts['bytes']:,} bytes, {facts['copies']} copies, {facts['steps']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
