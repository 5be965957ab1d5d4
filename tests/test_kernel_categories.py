"""Categories of real kernel names.

``tests/data/kernel_categories.tsv`` lists every GPU event name of the public and sample
traces with the category and rule it gets, reviewed by hand. The first test holds the
packaged rules to that table (no trace needed); the second holds the table to the traces
(every name is listed, no listed name is stale). The rest pin the cases issue 17 found,
on names built after the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import PUBLIC, REPO

from traceview.cache import cached_analyze
from traceview.model.categories import apply_rules, categorize, kernel_callable, load_category_rules

TABLE = Path(__file__).parent / "data" / "kernel_categories.tsv"
RULES = load_category_rules()
KEY = ["kernel", "kind", "dtype_change"]
# Every trace traceview reads among the public and sample traces (the nsys SQLite files are
# not a format it reads; rocprof's results.stats.csv is a summary, not a trace).
TRACE_GLOBS = ("*/*.json.gz", "rocprof-v1-stencils-mi250x/results.db", "rocprof-v1-stencils-mi250x/results.csv",
               "rocprofv3-kernel-trace-csv-mi300/*.csv")


def _table() -> pd.DataFrame:
    lines = [line.rstrip("\n").split("\t") for line in TABLE.read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    return pd.DataFrame(lines[1:], columns=lines[0])


def _categories(kernels: list[str], kind: str = "kernel", dtype_change: str = "unknown",
                op: str | None = None) -> list[str]:
    frame = pd.DataFrame({"kernel": kernels, "kind": kind, "op": op, "annotation": None,
                          "dtype_change": dtype_change})
    return apply_rules(frame, RULES)["category"].tolist()


def test_every_listed_kernel_gets_its_reviewed_category_and_rule():
    table = _table()
    assert len(table) == 587 and table["kernel"].nunique() == 582  # the names of the public and sample traces
    got = apply_rules(table.assign(op=None, annotation=None), RULES)
    got["rule_id"] = got["rule"].replace("", "-")
    wrong = got[(got["category"] != table["category"]) | (got["rule_id"] != table["rule"])]
    shown = "\n".join(f"{r.category} ({r.rule_id}), reviewed {table.at[i, 'category']} ({table.at[i, 'rule']}): "
                      f"{kernel_callable(r.kernel)[:160]}" for i, r in wrong.head(20).iterrows())
    assert wrong.empty, f"{len(wrong)} kernels changed category or rule; review them:\n{shown}"


def test_the_table_lists_every_kernel_of_the_public_and_sample_traces():
    if not PUBLIC.is_dir():
        pytest.skip("../shared/traces/public is absent: the table cannot be checked against the traces")
    paths = sorted({p for pattern in TRACE_GLOBS for p in PUBLIC.glob(pattern)})
    paths += sorted((REPO / "sample_traces").glob("*.json.gz"))
    seen = []
    for path in paths:
        launches = cached_analyze(path).launches
        rows = launches[KEY + ["category", "rule"]].astype({"dtype_change": object}).drop_duplicates()
        seen.append(rows.assign(rule_id=rows["rule"].replace("", "-"), trace=path.name))
    seen = pd.concat(seen, ignore_index=True)
    table = _table()
    joined = seen.merge(table, on=KEY, how="left", suffixes=("", "_reviewed"))
    unlisted = joined[joined["category_reviewed"].isna()]
    assert unlisted.empty, "kernels missing from the table:\n" + "\n".join(
        f"{r.category}\t{r.rule_id}\t{r.kind}\t{r.dtype_change}\t{r.kernel}\t({r.trace})"
        for r in unlisted.itertuples())
    differs = joined[(joined["category"] != joined["category_reviewed"])
                     | (joined["rule_id"] != joined["rule_reviewed"])]
    assert differs.empty, differs[["trace", "kernel", "category", "category_reviewed"]].head(10).to_string()
    stale = table.merge(seen[KEY].drop_duplicates(), on=KEY, how="left", indicator=True)
    stale = stale[stale["_merge"] == "left_only"]
    assert stale.empty, "table rows no trace has:\n" + "\n".join(stale["kernel"].head(10))


def test_parameter_types_do_not_decide_a_category():
    # Blackwell vLLM MoE: `flash` in an argument type made this NVFP4 quantize kernel attention.
    quantize = ("void tensorrt_llm::kernels::quantize_with_block_size<(tensorrt_llm::BlockScaleQuantizationType)1, "
                "__nv_bfloat16, 16, false>(int, int, int, int, int, __nv_bfloat16 const*, float const*, "
                "unsigned int*, unsigned int*, flashinfer::QuantizationSFLayout)")
    assert kernel_callable(quantize).endswith("16, false>")
    assert _categories([quantize]) == ["other"]
    assert kernel_callable("Memcpy HtoD (Pageable -> Device)") == "Memcpy HtoD (Pageable -> Device)"
    assert kernel_callable("ncclDevKernel_Generic(ncclDevKernelArgsStorage<4096ul>)") == "ncclDevKernel_Generic"


def test_casts_named_by_their_dtypes_need_no_op_dtypes():
    lam = "(at::TensorIteratorBase&)::{lambda(float)#1}, std::array<char*, 2ul> >(int)"
    names = [f"void at::native::vectorized_elementwise_kernel<4, at::native::bfloat16_copy_kernel_cuda{lam}",
             f"void at::native::vectorized_elementwise_kernel<4, at::native::float16_copy_kernel_cuda{lam}",
             f"void at::native::vectorized_elementwise_kernel<4, at::native::float8_copy_kernel_cuda{lam}",
             "void at::native::vectorized_elementwise_kernel<4, at::native::float8_copy_kernel_cuda"
             "(at::TensorIteratorBase&)::{lambda(c10::Float8_e4m3fn)#1}, std::array<char*, 2ul> >(int)",
             "void at::native::vectorized_elementwise_kernel<4, at::native::bfloat16tofloat32_copy_kernel_cuda"
             "(at::TensorIteratorBase&)::{lambda(c10::BFloat16)#1}, std::array<char*, 2ul> >(int)"]
    # float8's same-dtype branch (a float8 lambda) is a copy.
    assert _categories(names) == ["cast", "cast", "cast", "copy", "cast"]


def test_foreach_copy_with_two_dtypes_is_a_cast():
    functor = ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::"
               "TensorListMetadata<2>, at::native::(anonymous namespace)::{}, at::native::Copy<{}> >(int)")
    assert _categories([functor.format("CopyFunctor<int, long, 2, 1, 1>", "int, long"),
                        functor.format("UnaryOpFunctor<long, 2, 1, 1>", "long, long")]) == ["cast", "copy"]


def test_inductor_kernels_by_what_they_fuse():
    assert _categories(["triton_poi_fused__to_copy_3", "triton_poi_fused__to_copy_view_2",
                        "triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_2", "triton_poi_fused__to_copy_add_mul_1",
                        "triton_tem_fused_mm_0"]) == ["cast", "cast", "norm", "elementwise", "gemm"]


def test_random_sampling_is_not_a_norm():
    assert _categories(["void at::native::normal_kernel<float>(int)", "void at::native::rms_norm_kernel<float>(int)",
                        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>(int)"]) \
        == ["other", "norm", "norm"]


def test_a_kernel_gets_one_category_eager_and_under_cuda_graphs():
    sort = ("void at::native::bitonicSortKVInPlace<2, -1, 16, 16, float, long, at::native::GTOp<float, true>, "
            "unsigned int>(int)")
    # eager: launched under aten::topk; graph replay: no op above it
    assert _categories([sort], op="aten::topk") == _categories([sort]) == ["elementwise"]


def test_graph_replays_take_the_dtypes_of_eager_launches_of_the_same_kernel():
    copy = ("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl<"
            "at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::"
            "{lambda()#12}::operator()() const::"
            "{lambda(c10::BFloat16)#1}>(at::TensorIteratorBase&)::{lambda(int)#1}>(int)")
    groups = pd.DataFrame({"kernel": [copy, copy], "kind": "kernel", "op": ["aten::copy_", None], "annotation": None,
                           "op_type0": ["c10::BFloat16", None], "op_type1": ["c10::BFloat16", None]})
    out = categorize(groups, RULES)
    # The name alone says cast (PyTorch >= 2.1's casting path); the eager launch proves a bf16 copy.
    assert _categories([copy]) == ["cast"]
    assert out["category"].tolist() == ["copy", "copy"]
    assert out["dtype_change"].tolist() == ["no", "no"]
    assert out["src_dtype"].tolist() == ["bfloat16", "bfloat16"]
    # Launches that disagree leave the replay without dtypes: its name decides.
    groups.loc[2] = [copy, "kernel", "aten::copy_", None, "float", "c10::BFloat16"]
    assert categorize(groups, RULES)["dtype_change"].tolist() == ["no", "unknown", "yes"]
