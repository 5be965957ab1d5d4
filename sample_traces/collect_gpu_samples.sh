#!/usr/bin/env bash
# Re-collects this folder's GPU sample traces: 4 ProfilerStep traces (eager|graph x before|after)
# and 2 vLLM-style-marker traces (eager, before|after), then gpu_manifest.json; then the with_stack
# pair (demo_stack_eager_before|after, 3 steps: Python frames make traces ~3x larger) and stack_manifest.json.
# Needs one CUDA (or ROCm) GPU, torch with triton, and traceview importable (run from the repo root).
# Usage: sample_traces/collect_gpu_samples.sh [OUT_DIR]   (default: sample_traces)
#        STACK_ONLY=1 sample_traces/collect_gpu_samples.sh [OUT_DIR]   (the with_stack pair alone)
set -euo pipefail
OUT=${1:-sample_traces}
if [ "${STACK_ONLY:-0}" != 1 ]; then
TV=(python3 -m traceview collect demo --device cuda --steps 5 --wait 1 --warmup 2 --out-dir "$OUT")
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
from traceview.collectors.manifest import build_manifest, write_manifest
out = Path(sys.argv[1])
run = {"collector": "demo", "steps": 5, "wait": 1, "warmup": 2, "pre_steps": 2, "batch": 32,
       "script": "sample_traces/collect_gpu_samples.sh"}
traces = sorted(p.name for p in out.glob("demo_*.pt.trace.json.gz")
                if "_cpu_" not in p.name and "_stack_" not in p.name)
print(write_manifest(out, build_manifest(run, command=["sample_traces/collect_gpu_samples.sh", str(out)],
                                         traces=traces), "gpu_manifest.json"))
PY
fi
# The with_stack pair: Python frames make traces ~3x larger, so 3 steps.
for variant in before after; do
  python3 -m traceview collect demo --device cuda --steps 3 --wait 1 --warmup 1 --with-stack --out-dir "$OUT" \
    --variant "$variant" --mode eager
done
python3 - "$OUT" <<'PY'
import sys
from pathlib import Path
from traceview.collectors.manifest import build_manifest, write_manifest
out = Path(sys.argv[1])
names = [f"demo_stack_eager_{variant}.pt.trace.json.gz" for variant in ("before", "after")]
run = {"collector": "demo", "steps": 3, "wait": 1, "warmup": 1, "pre_steps": 2, "batch": 32, "with_stack": True,
       "script": "sample_traces/collect_gpu_samples.sh"}
print(write_manifest(out, build_manifest(run, command=["sample_traces/collect_gpu_samples.sh", str(out)],
                                         traces=names), "stack_manifest.json"))
PY
