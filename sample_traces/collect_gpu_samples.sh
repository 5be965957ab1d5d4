#!/usr/bin/env bash
# Re-collects this folder's GPU sample traces: 4 ProfilerStep traces (eager|graph x before|after)
# and 2 vLLM-style-marker traces (eager, before|after), then gpu_manifest.json.
# Needs one CUDA (or ROCm) GPU, torch with triton, and traceview importable (run from the repo root).
# Usage: sample_traces/collect_gpu_samples.sh [OUT_DIR]   (default: sample_traces)
set -euo pipefail
OUT=${1:-sample_traces}
TV=(python3 -m traceview collect demo --device cuda --steps 5 --wait 1 --warmup 2 --out "$OUT")
for mode in eager graph; do
  for variant in before after; do
    "${TV[@]}" --variant "$variant" --mode "$mode"
  done
done
for variant in before after; do
  "${TV[@]}" --variant "$variant" --mode eager --step-marker vllm
done
python3 - "$OUT" <<'PY'
import sys
from pathlib import Path
from collectors.manifest import build_manifest, write_manifest
out = Path(sys.argv[1])
run = {"collector": "demo", "steps": 5, "wait": 1, "warmup": 2, "pre_steps": 2, "batch": 32,
       "script": "sample_traces/collect_gpu_samples.sh"}
traces = sorted(p.name for p in out.glob("demo_*.pt.trace.json.gz") if "_cpu_" not in p.name)
print(write_manifest(out, build_manifest(run, command=["sample_traces/collect_gpu_samples.sh", str(out)],
                                         traces=traces), "gpu_manifest.json"))
PY
