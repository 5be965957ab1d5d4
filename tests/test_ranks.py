"""Rank names and per-rank directories: one parser (model.ranks) for the model, the CLI and the collectors."""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import pytest
from conftest import REPO, write_trace
from kineto import KinetoTrace

from traceview.collectors.vllm_decode import find_rank_traces, trace_rank
from traceview.analyses.summary import rank_names
from traceview.batch import expand_paths
from traceview.cli.app import run
from traceview.errors import TraceLoadError
from traceview.model.ranks import (
    NOT_A_TRACE,
    not_a_trace,
    parse_rank,
    rank_label,
    scan_traces,
    sort_by_rank,
    trace_files,
)

SAMPLES = REPO / "sample_traces"
FILL = "void at::native::FillFunctor<float>(float)"

# file name -> (label, global rank or None)
NAMES = {
    # vLLM >= 0.13: get_worker_rank_suffix(global_rank) = dp_pp_tp_dcp_ep + _rankN; the explicit rank wins
    "dp0_pp0_tp1_dcp0_ep0_rank1.1700000000002.pt.trace.json.gz": ("rank1", 1),
    "dp1_pp0_tp0_dcp0_ep2_rank2.1700000000003.pt.trace.json.gz": ("rank2", 2),
    "bench_dp0_pp0_tp1_dcp0_ep0_rank1.pt.trace.json.gz": ("rank1", 1),  # a profile_prefix in front
    # older vLLM: <instance id>-rank-N
    "5f3c9e0a-rank-0.1700000000000.pt.trace.json.gz": ("rank0", 0),
    "trace_rank10.json": ("rank10", 10),
    "trace_rank2.json": ("rank2", 2),
    "profile_trace_rank_3.json.gz": ("rank3", 3),
    # torch's tensorboard_trace_handler(worker_name=f"worker{rank}")
    "worker2.1623143089861.pt.trace.json.gz": ("rank2", 2),
    # no explicit rank: tp is the global rank when the outer coordinates are 0 (tp is innermost in vLLM)
    "TP3_worker.json.gz": ("rank3", 3),
    "trace_tp3.json": ("rank3", 3),
    "dp0_pp0_tp5_dcp0_ep0.1700000000005.pt.trace.json.gz": ("rank5", 5),
    "run_tp8_dp0_pp0_tp4.json": ("rank4", 4),  # the last tp counts: vLLM's suffix follows the prefix
    # dp 1: the global rank needs the tp group size, which the name does not give
    "dp1_pp0_tp1_dcp0_ep3.pt.trace.json.gz": ("dp1_pp0_tp1", None),
    # no rank: keywords count only at the start of a word
    "stp3.json": ("stp3.json", None),
    "step7_sleep1.json": ("step7_sleep1.json", None),
    "host_1234.1700000000000.pt.trace.json.gz": ("host_1234.1700000000000.pt.trace.json.gz", None),
}


@pytest.mark.parametrize("name", list(NAMES))
def test_rank_names_table(name: str) -> None:
    label, rank = NAMES[name]
    assert (parse_rank(name).label, parse_rank(name).rank) == (label, rank)
    assert rank_label(Path("some/run") / name) == label
    assert trace_rank(name) == rank  # the collector asks the same parser


def test_rank_order_is_numeric_then_coordinates_then_names() -> None:
    order = ["5f3c9e0a-rank-0.1700000000000.pt.trace.json.gz", "dp0_pp0_tp1_dcp0_ep0_rank1.1700000000002.pt.trace.json.gz",
             "trace_rank2.json", "trace_tp3.json", "trace_rank10.json",  # rank2 before rank10
             "dp1_pp0_tp0_dcp0_ep2.pt.trace.json.gz", "dp1_pp0_tp1_dcp0_ep3.pt.trace.json.gz", "dp1_pp1_tp0.json",
             "host_1234.1700000000000.pt.trace.json.gz", "stp3.json"]  # unranked last, by name
    shuffled = [Path(n) for n in order]
    random.Random(17).shuffle(shuffled)
    assert [p.name for p in sort_by_rank(shuffled)] == order


def _rank_trace(steps: int) -> KinetoTrace:
    """``steps`` steps of one fill launch each: every rank has 1 launch per step."""
    trace = KinetoTrace()
    for step in range(steps):
        trace.annotation(f"ProfilerStep#{step}", 100.0 * step, 90)
        trace.op("aten::fill_", 100.0 * step + 1, 10)
        trace.launch(100.0 * step + 2, [FILL])
    return trace


# vLLM rank files of a TP=11 run (4 of its ranks), written out of rank order; rank N has STEPS[N] steps.
STEPS = {10: 5, 2: 4, 0: 2, 1: 3}


def _vllm_name(rank: int) -> str:
    return f"dp0_pp0_tp{rank}_dcp0_ep0_rank{rank}.17000000000{rank:02d}.pt.trace.json.gz"


@pytest.fixture
def vllm_run(tmp_path: Path) -> Path:
    """What ``traceview collect vllm --out DIR`` leaves, plus a copied GPU manifest and a README."""
    folder = tmp_path / "vllm_run"
    folder.mkdir()
    for rank, steps in STEPS.items():
        write_trace(folder / _vllm_name(rank), _rank_trace(steps).events, gz=True)
    (folder / "manifest.json").write_text(json.dumps({"schema_version": 1, "run": {"collector": "vllm"},
                                                      "traces": [_vllm_name(r) for r in STEPS]}))
    shutil.copyfile(SAMPLES / "gpu_manifest.json", folder / "gpu_manifest.json")
    (folder / "README.md").write_text("# a run\n")
    return folder


def test_trace_files_of_a_vllm_run(vllm_run: Path) -> None:
    ranks = [_vllm_name(r) for r in (0, 1, 2, 10)]  # numeric: tp2 before tp10
    assert [p.name for p in trace_files(vllm_run)] == ranks
    found = scan_traces(vllm_run)
    assert [p.name for p in found.traces] == ranks
    # README.md has no trace suffix: never a candidate, so not listed as skipped either
    assert found.skipped == ((vllm_run / "gpu_manifest.json", NOT_A_TRACE), (vllm_run / "manifest.json", NOT_A_TRACE))
    notes = []
    assert [p.name for p in expand_paths([vllm_run], on_skip=lambda p, why: notes.append((p.name, why)))] == ranks
    assert notes == [("gpu_manifest.json", NOT_A_TRACE), ("manifest.json", NOT_A_TRACE)]
    # the collector lists the same traces in the same order (its glob never matches manifest.json)
    assert [(r, p.name) for r, p in find_rank_traces(vllm_run)] == [(r, _vllm_name(r)) for r in (0, 1, 2, 10)]


def test_what_is_not_a_trace(tmp_path: Path) -> None:
    events = _rank_trace(1).events
    write_trace(tmp_path / "object.json", events)
    (tmp_path / "array.json").write_text(json.dumps(events))  # Chrome's bare-array format
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"traceEvents": events}).encode())
    (tmp_path / "manifest.json.gz").write_bytes(gzip.compress(b'{"traces": ["a.json"]}'))
    (tmp_path / "malformed.json").write_text('{"traceEvents": [')  # the loader names the problem
    (tmp_path / "truncated.json.gz").write_bytes(gzip.compress(b'{"a": 1}')[:12])
    (tmp_path / "empty.json").write_text("")
    verdicts = {p.name: not_a_trace(p) for p in sorted(tmp_path.iterdir())}
    assert verdicts == {"array.json": None, "bom.json": None, "empty.json": None, "malformed.json": None,
                        "manifest.json.gz": NOT_A_TRACE, "object.json": None, "truncated.json.gz": None}


def test_directory_without_traces_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "manifest.json").write_text('{"schema_version": 1}')
    (tmp_path / "README.md").write_text("no traces here\n")
    expected = f"{tmp_path}: directory holds no trace files (per-rank Kineto/Perfetto traces or one rocprofv3 " \
               f"output); not traces: manifest.json"
    with pytest.raises(TraceLoadError) as err:
        trace_files(tmp_path)
    assert str(err.value) == expected
    assert run(["counts", str(tmp_path), "-f", "json"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"traceview: {expected}"]


def test_counts_cli_labels_a_vllm_run(vllm_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["counts", str(vllm_run), "-f", "json", "--quiet"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert list(doc["ranks"]) == ["rank0", "rank1", "rank2", "rank10"]
    for rank, steps in STEPS.items():  # each label sits on its own file: the step counts differ per rank
        one = doc["ranks"][f"rank{rank}"]
        assert (Path(one["trace"]).name, len(one["steps"])) == (_vllm_name(rank), steps)
        assert one["summary"]["total"]["mean"] == 1.0  # one fill launch per step
    assert doc["notes"] == []  # every rank launches the same per step
    assert captured.err.splitlines() == [f"note: skipped {vllm_run / 'gpu_manifest.json'}: {NOT_A_TRACE}",
                                         f"note: skipped {vllm_run / 'manifest.json'}: {NOT_A_TRACE}"]


def test_counts_cli_on_sample_traces(capsys: pytest.CaptureFixture) -> None:
    traces = sorted(p.name for p in SAMPLES.glob("*.pt.trace.json.gz"))
    assert run(["counts", str(SAMPLES), "-f", "json", "--no-cache", "--quiet"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    # every sample trace counted once; no file name has a rank, so each is labelled by its name, in name order
    assert list(doc["ranks"]) == traces
    assert [Path(one["trace"]).name for one in doc["ranks"].values()] == traces
    assert f"note: skipped {SAMPLES / 'gpu_manifest.json'}: {NOT_A_TRACE}" in captured.err.splitlines()


def test_rank_names_fall_back_to_paths_when_labels_repeat() -> None:
    assert rank_names(["a/trace_tp0.json", "a/trace_tp1.json"]) == ["rank0", "rank1"]
    assert rank_names(["a/trace_tp0.json", "b/trace_tp0.json"]) == ["a/trace_tp0.json", "b/trace_tp0.json"]
