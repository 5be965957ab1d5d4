"""Figures: each returns a plotly Figure whose bars/lines/cells hold exactly the counts of a hand-written trace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from conftest import write_trace
from kineto import KinetoTrace

from traceview import plots
from traceview.analyses.diff import diff_counts
from traceview.model.counts import LaunchCounts, analyze

FILL = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >"
CAST = ("void at::native::vectorized_elementwise_kernel<4, at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)"
        "::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, "
        "at::detail::Array<char*, 2> >")
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"
ADD = "triton_poi_fused_add_0"


def demo_trace(fills: list[int], extra_add: bool, step_us: list[int]) -> KinetoTrace:
    """Steps ProfilerStep#0.. of ``step_us`` microseconds, 1000 us apart. Step s launches ``fills[s]``
    FillFunctor kernels (fill), one bf16->fp32 copy_ (cast: the op changes dtype), one gemm, and with
    ``extra_add`` one Triton pointwise kernel (elementwise)."""
    t = KinetoTrace()
    for s, (n_fill, dur) in enumerate(zip(fills, step_us)):
        base = 1000 * s
        t.annotation(f"ProfilerStep#{s}", ts=base, dur=dur)
        for i in range(n_fill):
            t.op("aten::fill_", ts=base + 10 + 20 * i, dur=10, input_types=["float", "Scalar"])
            t.launch(ts=base + 12 + 20 * i, kernels=[FILL])
        t.op("aten::copy_", ts=base + 100, dur=10, input_types=["float", "c10::BFloat16", "bool"])
        t.launch(ts=base + 102, kernels=[CAST])
        t.op("aten::mm", ts=base + 200, dur=10, input_types=["c10::BFloat16", "c10::BFloat16"])
        t.launch(ts=base + 202, kernels=[GEMM])
        if extra_add:
            t.launch(ts=base + 300, kernels=[ADD], api="cuLaunchKernelEx", cat="cuda_driver")
    return t


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> LaunchCounts:
    # fill per step: 2, 2, 3 (step 2 is irregular); cast 1, gemm 1 each step; steps 900, 800, 700 us.
    path = write_trace(tmp_path_factory.mktemp("before") / "before.json",
                       demo_trace([2, 2, 3], extra_add=False, step_us=[900, 800, 700]).events)
    return analyze(path)


@pytest.fixture(scope="module")
def after(tmp_path_factory: pytest.TempPathFactory) -> LaunchCounts:
    # No fills; cast 1, gemm 1, elementwise (triton_poi) 1 each step; steps 600, 600, 500 us.
    path = write_trace(tmp_path_factory.mktemp("after") / "after.json",
                       demo_trace([0, 0, 0], extra_add=True, step_us=[600, 600, 500]).events)
    return analyze(path)


def bars(fig: go.Figure) -> dict[str, list]:
    return {trace.name: list(trace.y) for trace in fig.data}


def test_launches_per_step_stacks_one_bar_trace_per_used_category(before: LaunchCounts) -> None:
    fig = plots.launches_per_step(before, skip=1)
    assert isinstance(fig, go.Figure)
    assert fig.layout.barmode == "stack"
    # Only categories with launches get a trace, in rule order (fill, cast, ..., gemm).
    assert [t.name for t in fig.data] == ["fill", "cast", "gemm"]
    assert bars(fig) == {"fill": [2, 2, 3], "cast": [1, 1, 1], "gemm": [1, 1, 1]}
    assert list(fig.data[0].x) == [0, 1, 2]
    assert list(fig.data[0].customdata) == ["ProfilerStep#0", "ProfilerStep#1", "ProfilerStep#2"]
    # skip=1 shades step 0 only: x from -0.5 to 0.5.
    (shade,) = fig.layout.shapes
    assert (shade.x0, shade.x1) == (-0.5, 0.5)


def test_launches_per_step_without_skip_has_no_shading(after: LaunchCounts) -> None:
    fig = plots.launches_per_step(after)
    assert bars(fig) == {"cast": [1, 1, 1], "gemm": [1, 1, 1], "elementwise": [1, 1, 1]}
    assert fig.layout.shapes == ()


def test_category_colors_are_stable_across_figures(before: LaunchCounts, after: LaunchCounts) -> None:
    colors = {t.name: t.marker.color for t in plots.launches_per_step(before).data}
    colors_after = {t.name: t.marker.color for t in plots.launches_per_step(after).data}
    assert colors["cast"] == colors_after["cast"] and colors["gemm"] == colors_after["gemm"]
    assert plots.category_colors(before.categories)["other"] == "#bab0ac"


def category_frame() -> pd.DataFrame:
    # DiffResult.categories of the fixtures with skip 1 (steps 1..2): fill (2+3)/2=2.5 -> 0, cast 1 -> 1,
    # gemm 1 -> 1, elementwise 0 -> 1; moe 0 -> 0 (no launch: left out); total 4.5 -> 3 (aggregate: left out).
    return pd.DataFrame({"category": ["fill", "cast", "moe", "gemm", "elementwise", "total"],
                         "before_mean": [2.5, 1.0, 0.0, 1.0, 0.0, 4.5], "after_mean": [0.0, 1.0, 0.0, 1.0, 1.0, 3.0],
                         "delta_mean": [-2.5, 0.0, 0.0, 0.0, 1.0, -1.5]})


def test_category_delta_splits_removed_added_unchanged() -> None:
    fig = plots.category_delta(category_frame())
    by_name = {t.name: (list(t.y), list(t.x)) for t in fig.data}
    assert by_name == {"removed": (["fill"], [-2.5]), "added": (["elementwise"], [1.0]),
                       "unchanged": (["cast", "gemm"], [0.0, 0.0])}
    assert list(fig.layout.yaxis.categoryarray) == ["fill", "cast", "gemm", "elementwise"]
    assert [t.marker.color for t in fig.data[:2]] == [plots.REMOVED_COLOR, plots.ADDED_COLOR]
    assert list(fig.data[0].text) == ["-2.5"] and list(fig.data[1].text) == ["+1"]


def test_category_delta_of_diff_counts(before: LaunchCounts, after: LaunchCounts) -> None:
    diff = diff_counts(before, after, skip=1)
    fig = plots.category_delta(diff.categories)
    # The same numbers as category_frame(), now computed from the traces.
    assert {t.name: (list(t.y), list(t.x)) for t in fig.data} == {
        "removed": (["fill"], [-2.5]), "added": (["elementwise"], [1.0]), "unchanged": (["cast", "gemm"], [0.0, 0.0])}


def test_kernel_delta_orders_by_absolute_change_and_shortens_names(before: LaunchCounts,
                                                                   after: LaunchCounts) -> None:
    kernels = pd.DataFrame({"category": ["fill", "cast", "elementwise", "gemm"], "kernel": [FILL, CAST, ADD, GEMM],
                            "src_dtype": ["", "bfloat16", "", ""], "dst_dtype": ["", "float32", "", ""],
                            "before_per_step": [2.5, 1.0, 0.0, 1.0], "after_per_step": [0.0, 2.0, 1.0, 1.0],
                            "delta": [-2.5, 1.0, 1.0, 0.0]})
    fig = plots.kernel_delta(kernels, top=2)
    # Top 2 by |delta|: fill (-2.5), then cast (+1) before elementwise (+1) by input order; gemm (0) never.
    labels = list(fig.layout.yaxis.categoryarray)
    assert labels == ["vectorized_elementwise_kernel<FillFunctor, fp32> [fill]",
                      "vectorized_elementwise_kernel<direct_copy, fp32> [cast bfloat16→float32]"]
    assert {t.name: list(t.x) for t in fig.data} == {"removed": [-2.5], "added": [1.0]}
    # Full name in the hover text, wrapped.
    assert fig.data[0].customdata[0][0].replace("<br>", "").replace(" ", "") == FILL.replace(" ", "")
    # From the traces (skip 1): FillFunctor 2.5 -> 0 and the Triton add 0 -> 1 changed; cast and gemm did not.
    fig = plots.kernel_delta(diff_counts(before, after, skip=1).kernels)
    assert {t.name: (list(t.y), list(t.x)) for t in fig.data} == {
        "removed": (["vectorized_elementwise_kernel<FillFunctor, fp32> [fill]"], [-2.5]),
        "added": (["triton_poi_fused_add_0 [elementwise]"], [1.0])}


def test_step_durations_one_line_per_trace_in_ms(before: LaunchCounts, after: LaunchCounts) -> None:
    fig = plots.step_durations({"before": before, "after": after}, skip=1)
    assert [t.name for t in fig.data] == ["before", "after"]
    # Steps 1 and 2 (skip 1): 800 and 700 us before, 600 and 500 us after.
    assert list(fig.data[0].x) == [1, 2] and np.allclose(list(fig.data[0].y), [0.8, 0.7])
    assert np.allclose(list(fig.data[1].y), [0.6, 0.5])


def test_step_durations_gpu_metrics(before: LaunchCounts) -> None:
    # Each kernel runs 2 us (tests/kineto.py): step 0 has 4 kernels -> 8 us of GPU time.
    fig = plots.step_durations({"before": before}, metric="gpu_busy_ns")
    assert np.allclose(list(fig.data[0].y), [0.008, 0.008, 0.010])
    with pytest.raises(ValueError):
        plots.step_durations({"before": before}, metric="nope")


def test_step_duration_histogram_shares_bins(before: LaunchCounts, after: LaunchCounts) -> None:
    fig = plots.step_duration_histogram({"before": before, "after": after})
    # 6 step times (ms): before 0.9, 0.8, 0.7; after 0.6, 0.6, 0.5. max(5, ceil(sqrt(6))) = 5 bins of 0.08 ms
    # from 0.5 to 0.9: [0.5, 0.58) [0.58, 0.66) [0.66, 0.74) [0.74, 0.82) [0.82, 0.9].
    edges, counts = plots.duration_histogram({"before": before, "after": after})
    assert np.allclose(edges, [0.5, 0.58, 0.66, 0.74, 0.82, 0.9])
    assert {k: v.tolist() for k, v in counts.items()} == {"before": [0, 0, 1, 1, 1], "after": [1, 2, 0, 0, 0]}
    assert [(t.type, t.name) for t in fig.data] == [("bar", "before"), ("bar", "after")]
    assert list(fig.data[0].y) == [0, 0, 1, 1, 1] and list(fig.data[1].y) == [1, 2, 0, 0, 0]
    assert np.allclose(list(fig.data[0].x), [0.54, 0.62, 0.70, 0.78, 0.86])
    assert np.allclose(list(fig.data[0].width), [0.08] * 5)
    assert fig.layout.barmode == "overlay"


def test_kernel_step_heatmap_counts(before: LaunchCounts) -> None:
    fig = plots.kernel_step_heatmap(before)
    (heat,) = fig.data
    # Rows by total launches: FillFunctor 2+2+3=7 first; gemm and copy 3 each, tied, kept in name order.
    assert list(heat.y) == ["vectorized_elementwise_kernel<FillFunctor, fp32>",
                            "sm90_xmma_gemm_bf16bf16_bf16f32_f…n_n_tilesize128x128x64",
                            "vectorized_elementwise_kernel<direct_copy, fp32>"]
    assert heat.z.tolist() == [[2, 2, 3], [1, 1, 1], [1, 1, 1]]
    assert list(heat.x) == ["0", "1", "2"]
    assert plots.kernel_step_heatmap(before, top=1).data[0].z.tolist() == [[2, 2, 3]]


@pytest.mark.parametrize("name, label", [
    (FILL, "vectorized_elementwise_kernel<FillFunctor, fp32>"),
    (CAST, "vectorized_elementwise_kernel<direct_copy, fp32>"),  # from {lambda(float)#1}
    (("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, float, "
      "float>, unsigned int, float, 4> >(at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, "
      "unsigned int, float, 4>)"), "reduce_kernel<MeanOps, fp32>"),
    # Same kernel, two dtypes: the dtype is what tells a removed cast apart.
    (("void (anonymous namespace)::softmax_warp_forward<c10::BFloat16, c10::BFloat16, float, 2, false, false>"
      "(c10::BFloat16*, c10::BFloat16 const*, int, int, int, bool const*, int, bool)"), "softmax_warp_forward<bf16>"),
    ("void (anonymous namespace)::softmax_warp_forward<float, float, float, 2, false, false>(float*, int)",
     "softmax_warp_forward<fp32>"),
    # The functor's dtype (nested) wins over gpu_kernel_impl's index lambda, {lambda(int)#1}.
    (("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor<"
      "c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::DivFunctor<c10::BFloat16> > >("
      "at::TensorIteratorBase&)::{lambda(int)#1}>(int)"), "elementwise_kernel<DivFunctor, bf16>"),
    (("void at::native::sbtopk::gatherTopK<c10::BFloat16, unsigned int, 2, false>(at::cuda::detail::TensorInfo<"
      "c10::BFloat16 const, unsigned int>, unsigned int)"), "gatherTopK<bf16>"),
    ("void (anonymous namespace)::store_kvcache<2048l, 4, false, long>((anonymous namespace)::StoreKVCacheParams)",
     "store_kvcache<i64>"),
    ("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)",
     "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t"),
    ("Memcpy HtoD (Pageable -> Device)", "Memcpy HtoD (Pageable -> Device)"),
    ("triton_poi_fused_add_0", "triton_poi_fused_add_0"),
])
def test_short_kernel_name(name: str, label: str) -> None:
    assert plots.short_kernel_name(name) == label


def test_kernel_labels_are_unique_and_bounded() -> None:
    long = "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT16x16x256_MI16x16x1_SN_LDSB1_AFC1"
    # Cut in the middle (11 + 1 + 8 characters); the two names differ only there, so the second gets #2.
    labels = plots.kernel_labels([long, long.replace("MT16x16x256", "MT32x32x256"), "a"], max_len=20)
    assert labels == ["Cijk_Alik_B…SB1_AFC1", "Cijk_Alik_B…SB1_AFC1 #2", "a"]
