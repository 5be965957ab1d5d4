"""The GPU sample traces hold exactly the per-step counts sample_traces/README.md derives from
collectors/demo_model.py. Checked with plain SQL through the engine (no counts API needed):
per CPU-side step annotation, GPU work whose launch call (cuda_runtime / cuda_driver, same
``args.correlation``) starts inside the step, classified by the launching op and its
record_shapes "Input type" args (eager) or by kernel name (graph replay has no op above).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from traceview.collectors.demo_decode import expected_counts, model_kernels_per_step
from traceview.engine import open_trace

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
BATCH = 32  # collect_gpu_samples.sh uses the demo's default batch
ACTIVE_STEPS = 5  # --steps 5 in collect_gpu_samples.sh
# Measured on the recorded machine (H200, torch 2.11+cu130): one torch.topk launches 2 kernels
# (gatherTopK + bitonicSortKVInPlace), one torch.mm 1 (cuBLAS nvjet).
TOPK_KERNELS = 2

# Materialized first: joining views that call extract_arg row by row takes minutes; joining
# these small tables takes well under a second.
PREPARE_SQL = [
    """create perfetto table _t_launch as
       select l.id, l.ts, l.name as launch, extract_arg(l.arg_set_id, 'args.correlation') as corr,
              p.name as op, extract_arg(p.arg_set_id, 'args.Input type[0]') as dst_type,
              extract_arg(p.arg_set_id, 'args.Input type[1]') as src_type
       from slice l left join slice p on p.id = l.parent_id
       where l.category in ('cuda_runtime', 'cuda_driver')
         and extract_arg(l.arg_set_id, 'args.correlation') is not null""",
    """create perfetto table _t_gpu as
       select name as kernel, category as kind, extract_arg(arg_set_id, 'args.correlation') as corr
       from slice where category in ('kernel', 'gpu_memcpy', 'gpu_memset')""",
    """create perfetto table _t_step as
       select id as step_id, ts as step_ts, ts + dur as step_end, name as step_name
       from slice where category = 'user_annotation'
         and (name glob 'ProfilerStep#*' or name glob 'execute_*')""",
]
# One row per GPU event whose launch call starts inside a CPU-side step annotation.
PER_STEP_SQL = """
select s.step_id, s.step_name, g.kernel, g.kind, l.id as launch_id, l.launch, l.op, l.dst_type, l.src_type
from _t_gpu g
join _t_launch l using (corr)
join _t_step s on l.ts >= s.step_ts and l.ts < s.step_end
"""


def _launches(name: str) -> pd.DataFrame:
    path = SAMPLES / f"{name}.pt.trace.json.gz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: sample traces are committed with the repo")
    with open_trace(path) as trace:
        for statement in PREPARE_SQL:
            trace.query(statement)
        return trace.query(PER_STEP_SQL)


@pytest.fixture(scope="module")
def launches() -> dict[str, pd.DataFrame]:
    names = ["demo_eager_before", "demo_eager_after", "demo_graph_before", "demo_graph_after",
             "demo_vllm_eager_before", "demo_vllm_eager_after"]
    return {n: _launches(n) for n in names}


def _copy_kernel(df: pd.DataFrame, lambda_type: str, with_cast: bool) -> pd.Series:
    # direct_copy_kernel_cuda names the destination type in its lambda; LoadWithCast marks a
    # dtype-converting copy (a same-dtype strided copy uses gpu_kernel_impl_nocast instead).
    name = df.kernel.fillna("")
    casts = name.str.contains("LoadWithCast", regex=False)
    return (name.str.contains("direct_copy_kernel_cuda", regex=False)
            & name.str.contains(f"{{lambda({lambda_type})#1}}", regex=False) & (casts == with_cast))


def _by_op(df: pd.DataFrame, dst: str, src: str) -> pd.Series:
    return (df.op == "aten::copy_") & (df.dst_type == dst) & (df.src_type == src)


def _per_step(df: pd.DataFrame, mask: pd.Series) -> list[int]:
    counts = mask.groupby(df.step_id).sum()
    return [int(v) for v in counts.sort_index()]


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("variant", ["before", "after"])
def test_counts_by_kernel_name(launches, variant, mode):
    df = launches[f"demo_{mode}_{variant}"]
    want = expected_counts(variant, mode)
    assert df.step_id.nunique() == ACTIVE_STEPS
    name = df.kernel.fillna("")
    # Each step: the documented count, identical in all 5 recorded steps.
    assert _per_step(df, name.str.contains("FillFunctor", regex=False)) == [want.fill] * ACTIVE_STEPS
    assert _per_step(df, name.str.contains("get_mla_metadata_v1", regex=False)) == [want.metadata] * ACTIVE_STEPS
    assert _per_step(df, _copy_kernel(df, "float", True)) == [want.cast_bf16_fp32] * ACTIVE_STEPS
    assert _per_step(df, _copy_kernel(df, "int", True)) == [want.cast_int64_int32] * ACTIVE_STEPS
    assert _per_step(df, _copy_kernel(df, "c10::BFloat16", False)) == [want.copy_bf16_bf16] * ACTIVE_STEPS
    # No memcpy or memset anywhere in a step; every GPU event is a kernel.
    assert set(df.kind) == {"kernel"}
    total = model_kernels_per_step(variant, TOPK_KERNELS)  # 1143 before, 1030 after
    assert _per_step(df, name != "") == [total] * ACTIVE_STEPS


@pytest.mark.parametrize("variant", ["before", "after"])
def test_eager_counts_by_launching_op_dtypes(launches, variant):
    df = launches[f"demo_eager_{variant}"]
    want = expected_counts(variant)
    assert _per_step(df, _by_op(df, "float", "c10::BFloat16")) == [want.cast_bf16_fp32] * ACTIVE_STEPS
    assert _per_step(df, _by_op(df, "int", "long int")) == [want.cast_int64_int32] * ACTIVE_STEPS
    assert _per_step(df, _by_op(df, "c10::BFloat16", "c10::BFloat16")) == [want.copy_bf16_bf16] * ACTIVE_STEPS
    assert _per_step(df, df.op == "aten::fill_") == [want.fill] * ACTIVE_STEPS
    # The trap: every copy kernel carries direct_copy_kernel_cuda in its name, so counting by name
    # sees 58 + 2 + 61 = 121 "copies" before and 63 after; only the op's dtypes isolate the 58.
    copies = df.kernel.str.contains("direct_copy_kernel_cuda", regex=False)
    assert _per_step(df, copies) == [121 if variant == "before" else 63] * ACTIVE_STEPS


@pytest.mark.parametrize("variant", ["before", "after"])
def test_graph_replayed_casts_have_no_op_above(launches, variant):
    df = launches[f"demo_graph_{variant}"]
    casts = _copy_kernel(df, "float", True)
    # In graph mode the 58 casts are replayed by cudaGraphLaunch: no aten::copy_ launched them.
    assert set(df.launch[casts]) <= {"cudaGraphLaunch"}
    assert int((casts & (df.op == "aten::copy_")).sum()) == 0
    # The eager prefix still runs under ops: the 2 int64->int32 casts are aten::copy_(int <- long int).
    assert _per_step(df, _by_op(df, "int", "long int")) == [2] * ACTIVE_STEPS
    # One cudaGraphLaunch per step replays the forward; the eager prefix (2 add_, 2 int casts,
    # the fills and the metadata kernel) is launched one kernel per call.
    want = expected_counts(variant, "graph")
    graph = df.launch == "cudaGraphLaunch"
    assert _per_step(df[graph], df[graph].launch_id.notna() & ~df[graph].launch_id.duplicated()) == [1] * ACTIVE_STEPS
    assert _per_step(df, ~graph) == [4 + want.fill + want.metadata] * ACTIVE_STEPS


@pytest.mark.parametrize("variant", ["before", "after"])
def test_vllm_marker_traces(launches, variant):
    df = launches[f"demo_vllm_eager_{variant}"]
    want = expected_counts(variant)
    assert set(df.step_name) == {f"execute_context_0(0)_generation_{BATCH}({BATCH})"}
    assert df.step_id.nunique() == ACTIVE_STEPS
    assert _per_step(df, _by_op(df, "float", "c10::BFloat16")) == [want.cast_bf16_fp32] * ACTIVE_STEPS
    assert _per_step(df, df.kernel.str.contains("FillFunctor", regex=False)) == [want.fill] * ACTIVE_STEPS
    assert _per_step(df, df.kernel.notna()) == [model_kernels_per_step(variant, TOPK_KERNELS)] * ACTIVE_STEPS


def test_vllm_marker_traces_have_no_profiler_step():
    with open_trace(SAMPLES / "demo_vllm_eager_before.pt.trace.json.gz") as trace:
        n = trace.query("select count(*) as n from slice where name glob 'ProfilerStep#*'").n.iloc[0]
    assert int(n) == 0


def test_metadata_kernel_launches_through_the_driver(launches):
    df = launches["demo_eager_before"]
    meta = df[df.kernel.str.contains("get_mla_metadata_v1", regex=False)]
    # Triton launches with cuLaunchKernelEx (category cuda_driver), outside any aten op.
    assert set(meta.launch) == {"cuLaunchKernelEx"}
    assert meta.op.str.startswith("ProfilerStep#").all()


def test_sample_traces_stay_small():
    total = sum(p.stat().st_size for p in SAMPLES.glob("*.pt.trace.json.gz"))
    assert total < 5 * 1024 * 1024  # the repo keeps all samples under 5 MB gzipped
