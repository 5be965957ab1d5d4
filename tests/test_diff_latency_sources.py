"""diff's latency verdict (bootstrap CI of the median change) and source frames, end to end (issue 19).

The bootstrap itself is tested on synthetic steps in test_latency.py; here the CLI surfaces."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from traceview.cli.app import run

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_traces"
EAGER_BEFORE = str(SAMPLES / "demo_eager_before.pt.trace.json.gz")
EAGER_AFTER = str(SAMPLES / "demo_eager_after.pt.trace.json.gz")
VLLM_BEFORE = str(SAMPLES / "demo_vllm_eager_before.pt.trace.json.gz")
VLLM_AFTER = str(SAMPLES / "demo_vllm_eager_after.pt.trace.json.gz")
STACK_BEFORE = str(SAMPLES / "demo_stack_eager_before.pt.trace.json.gz")
STACK_AFTER = str(SAMPLES / "demo_stack_eager_after.pt.trace.json.gz")
SCHEMA = json.loads((REPO / "docs" / "schemas" / "diff.schema.json").read_text())
# Where collectors/demo_model.py issues what the "after" variant removes (the frame is the
# innermost demo function on the launch call's Python stack; N is the function's first line).
CAST_FRAME = "traceview/collectors/demo_model.py(144): _layer"
FILL_FRAME = "traceview/collectors/demo_model.py(106): _reset_metadata_buffers"
META_FRAME = "traceview/collectors/_mla_metadata_triton.py(27): get_mla_metadata_v1"


def _json(capsys, *argv: str, code: int = 0) -> dict:
    assert run(["diff", *argv, "--skip", "1", "--format", "json"]) == code
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    return doc


def test_a_trace_against_itself_is_no_significant_change(capsys):
    doc = _json(capsys, EAGER_BEFORE, EAGER_BEFORE)
    for verdict in doc["latency_metrics"]:
        lo, hi = verdict["ci95_ms"]
        assert verdict["delta_ms"] == 0 and lo < 0 < hi and verdict["verdict"] == "no significant change"
    assert doc["latency"]["leads"] and doc["latency"]["resamples"] == 10_000 and doc["latency"]["seed"] == 0
    # 5 ProfilerSteps, --skip 1: 4 steady steps a side, one run.
    assert (doc["latency"]["before"]["n"], doc["latency"]["before"]["runs"]) == (4, 1)


def test_latency_expectation_fails_on_noise_and_holds_on_a_real_change(capsys):
    # Against itself the CI contains 0: 'latency<0' must fail (exit 1), never pass by luck.
    assert run(["diff", EAGER_BEFORE, EAGER_BEFORE, "--skip", "1", "--expect", "latency<0"]) == 1
    assert "FAILED latency" in capsys.readouterr().err
    # The eager demo pair: 41.37 -> 22.40 ms median CPU step (the after variant skips the metadata
    # rebuild's host sync); every resample of 4 vs 4 steps stays below 0.
    doc = _json(capsys, EAGER_BEFORE, EAGER_AFTER, "--expect", "latency<0", "--expect", "latency<=-20%")
    assert doc["ok"] and doc["latency"]["verdict"] == "faster" and doc["latency"]["ci95_ms"][1] < 0
    assert doc["latency"]["ci95_pct"][1] <= -20


def test_the_interval_is_reproducible_and_follows_the_seed(capsys):
    # Two runs a side (eager and vLLM-marker demo traces, 4 steady steps each): the hierarchical
    # resamples take enough distinct medians for seeds 0 and 7 to give different intervals.
    sides = ["--before", EAGER_BEFORE, "--before", VLLM_BEFORE, "--after", EAGER_AFTER, "--after", VLLM_AFTER]
    first = _json(capsys, *sides)["latency"]
    assert _json(capsys, *sides)["latency"] == first and first["seed"] == 0
    other = _json(capsys, *sides, "--seed", "7")["latency"]
    assert other["seed"] == 7 and other["delta_ms"] == first["delta_ms"] and other["ci95_ms"] != first["ci95_ms"]
    assert (other["before"]["n"], other["before"]["runs"]) == (8, 2)


def test_several_runs_per_side(capsys):
    doc = _json(capsys, "--before", EAGER_BEFORE, "--before", STACK_BEFORE, "--after", EAGER_AFTER,
                "--after", STACK_AFTER)
    # 4 + 2 steady steps (5 and 3 recorded steps, --skip 1) in 2 runs a side.
    assert (doc["latency"]["before"]["n"], doc["latency"]["before"]["runs"]) == (6, 2)
    assert doc["before"]["label"] == "before" and doc["categories"]["cast"]["delta"] == -58


def test_sources_name_the_demo_functions_behind_each_change(capsys):
    doc = _json(capsys, STACK_BEFORE, STACK_AFTER)
    assert doc["sources"] == [
        {"category": "cast", "frame": CAST_FRAME, "before_per_step": 58.0, "after_per_step": 0.0, "delta": -58.0},
        {"category": "fill", "frame": FILL_FRAME, "before_per_step": 54.0, "after_per_step": 0.0, "delta": -54.0},
        {"category": "metadata", "frame": META_FRAME, "before_per_step": 1.0, "after_per_step": 0.0,
         "delta": -1.0}]
    assert run(["diff", STACK_BEFORE, STACK_AFTER, "--skip", "1", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert f"| cast | {CAST_FRAME} | 58 | 0 | -58 |" in markdown and "bootstrap 95 % CI" in markdown


def test_each_source_frame_names_the_kernels_behind_its_change():
    from traceview.analyses.sources import frame_kernel_deltas
    from traceview.cache import cached_analyze

    kernels = frame_kernel_deltas(cached_analyze(STACK_BEFORE), cached_analyze(STACK_AFTER), skip=1)
    by_frame = {(r.category, r.frame): (r.kernel, r.before_per_step, r.after_per_step)
                for r in kernels.itertuples() if r.category in ("cast", "fill", "metadata")}
    # One kernel each: the router's bf16 -> fp32 copy (a direct_copy with LoadWithCast, destination
    # float), the int fill of the metadata buffers, and the demo's metadata kernel.
    assert set(by_frame) == {("cast", CAST_FRAME), ("fill", FILL_FRAME), ("metadata", META_FRAME)}
    cast, fill = by_frame[("cast", CAST_FRAME)], by_frame[("fill", FILL_FRAME)]
    meta = by_frame[("metadata", META_FRAME)]
    assert "direct_copy_kernel_cuda" in cast[0] and "LoadWithCast" in cast[0] and "{lambda(float)#1}" in cast[0]
    assert cast[1:] == (58.0, 0.0)
    assert "FillFunctor<int>" in fill[0] and fill[1:] == (54.0, 0.0)
    assert meta == ("get_mla_metadata_v1_demo_kernel", 1.0, 0.0)
    # The same frame also swaps the router's fp32 kernels for their bf16 instantiations: per category the
    # counts move between kernels (58 each) but their sum does not change.
    swapped = kernels[(kernels["frame"] == CAST_FRAME) & kernels["category"].isin(["elementwise", "moe"])]
    assert len(swapped) == 8 and set(swapped["delta"].abs()) == {58.0}
    assert swapped.groupby("category")["delta"].sum().to_dict() == {"elementwise": 0.0, "moe": 0.0}


def test_report_unfolds_each_source_frame_into_its_kernels(tmp_path):
    out = tmp_path / "r.html"
    assert run(["report", STACK_BEFORE, STACK_AFTER, "--skip", "1", "-o", str(out)]) == 0
    section = out.read_text().split('id="sources"', 1)[1].split('id="kernels"', 1)[0]
    assert section.count('<details class="frame">') == 3 and section.count("· 1 kernel</span>") == 3
    assert "get_mla_metadata_v1_demo_kernel" in section


def test_traces_without_frames_say_how_to_record_them(capsys):
    doc = _json(capsys, EAGER_BEFORE, EAGER_AFTER)
    assert {s["frame"] for s in doc["sources"]} == {None}
    assert [n for n in doc["notes"] if "with_stack=True" in n] == doc["notes"] and len(doc["notes"]) == 1
    assert not any("with_stack" in w for w in doc["warnings"])


def test_junit_carries_the_latency_testcase_and_verdict(capsys):
    assert run(["diff", EAGER_BEFORE, EAGER_AFTER, "--skip", "1", "--expect", "latency<0", "--format", "junit"]) == 0
    root = ET.fromstring(capsys.readouterr().out.split("\n", 1)[1])
    names = [case.get("name") for case in root.iter("testcase")]
    assert names == ["latency < 0 ms (delta per step)"]
    assert "faster" in root.find("testsuite/system-out").text


def test_kernels_by_frame(capsys):
    assert run(["kernels", STACK_BEFORE, "--skip", "1", "--by", "frame", "-c", "cast", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # 58 router casts in _layer (one per MoE layer) and 2 int64->int32 index casts in prefix, per step.
    assert [(r["frame"], r["per_step"]) for r in rows] == [(CAST_FRAME, "58.0"),
                                                           ("traceview/collectors/demo_model.py(131): prefix", "2.0")]


@pytest.mark.parametrize("value", ["latency<0", "latency<=-2%", "latency<=-0.5ms"])
def test_latency_expectations_parse(capsys, value):
    assert run(["diff", EAGER_BEFORE, EAGER_AFTER, "--skip", "1", "--expect", value]) == 0, capsys.readouterr().err


def test_frames_from_picks_the_innermost_frame_under_a_prefix(capsys):
    # The metadata kernel is launched inside _mla_metadata_triton.get_mla_metadata_v1, called from
    # demo_model._mla_metadata: with only demo_model.py as user code, the caller is the frame.
    argv = ["kernels", STACK_BEFORE, "--skip", "1", "--by", "frame", "-c", "metadata", "--format", "csv"]
    assert run(argv) == 0
    assert [r["frame"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == [META_FRAME]
    assert run([*argv, "--frames-from", "traceview/collectors/demo_model.py"]) == 0
    assert [r["frame"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == [
        "traceview/collectors/demo_model.py(115): _mla_metadata"]


def test_one_step_a_side_is_too_few_for_a_verdict(capsys):
    # --skip 4 of 5 steps leaves one step a side: the resampled medians are that one step, so the
    # "interval" has zero width. No verdict, and the gate fails instead of passing.
    assert run(["diff", EAGER_BEFORE, EAGER_AFTER, "--skip", "4", "--expect", "latency<0", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["latency"]["before"]["n"] == 1 and doc["latency"]["verdict"] == "too few steps"
    assert doc["latency"]["ci95_ms"][0] == doc["latency"]["ci95_ms"][1]


def test_frames_on_one_side_only_explain_changed_categories(capsys):
    # The eager before has frames, the eager after (no with_stack) none: gemm is 425 a step on both
    # sides, so it must not show as 425 launches moving from _layer to "no frame".
    doc = _json(capsys, STACK_BEFORE, EAGER_AFTER)
    assert {s["category"] for s in doc["sources"]} == {"cast", "fill", "metadata"}
    assert any("only the before side has Python frames" in note for note in doc["notes"])


def test_frame_json_keeps_paths_readable(capsys):
    assert run(["kernels", STACK_BEFORE, "--skip", "1", "--by", "frame", "-c", "cast", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert f'"frame": "{CAST_FRAME}"' in out and "\\/" not in out
    assert json.loads(out)[0] == {"category": "cast", "frame": CAST_FRAME, "launches": 116, "per_step": 58.0}


def test_sources_of_several_runs_are_the_mean_over_their_traces(capsys):
    # One run a side recorded with_stack, one without: per trace, "before" casts 58 from _layer (or 60
    # with no frame), "after" none from _layer. The mean over the two runs: _layer 29 -> 0 and
    # no-frame 30 -> 1 (the 2 int64->int32 casts): -29 each; prefix's 2 casts go to 1 -> 1.
    doc = _json(capsys, "--before", STACK_BEFORE, "--before", EAGER_BEFORE, "--after", STACK_AFTER,
                "--after", EAGER_AFTER)
    casts = {s["frame"]: (s["before_per_step"], s["after_per_step"], s["delta"])
             for s in doc["sources"] if s["category"] == "cast"}
    assert casts == {CAST_FRAME: (29.0, 0.0, -29.0), None: (30.0, 1.0, -29.0)}
    assert any("only some traces have Python frames: before (1 of 2 traces), after (1 of 2 traces)" in n
               for n in doc["notes"])
