"""``traceview check`` of several runs: counted in one worker pool, then checked run by run.

Runs are the shipped GPU sample traces. Per recorded step (sample_traces/README.md, "Expected counts
per recorded step"; every recorded step is the same, so ``--skip 1`` leaves 4 steps of 5):

================  ======  =====  ==============================================================
per step          before  after  why (collectors/demo_model.py)
================  ======  =====  ==============================================================
fill                  54      0  ``buf.fill_(-1)`` on each of the 54 metadata buffers
cast                  60      2  58 bf16->fp32 router casts + 2 int64->int32 casts
metadata               1      0  recomputed every step before, cached after
total               1143   1030  GPU kernels + memcpy + memset
================  ======  =====  ==============================================================

graph_replayed is 0 in eager mode; in graph mode one cudaGraphLaunch replays 1084 (before) or
1026 (after) of those kernels per step.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import run_cli

from traceview.analyses.check import check_runs, run_labels
from traceview.analyses.expectations import gather, known_names
from traceview.batch import analyze_runs, expand_runs
from traceview.model.categories import category_order, load_category_rules

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_traces"
SCHEMA = json.loads((REPO / "docs" / "schemas" / "check.schema.json").read_text())
EAGER_BEFORE = SAMPLES / "demo_eager_before.pt.trace.json.gz"
EAGER_AFTER = SAMPLES / "demo_eager_after.pt.trace.json.gz"
GRAPH_AFTER = SAMPLES / "demo_graph_after.pt.trace.json.gz"
# The "after" budget: what the fix leaves per step (table above).
AFTER_BUDGET = ["-e", "cast<=2", "-e", "fill=0", "-e", "metadata=0", "-e", "total=1030"]


@pytest.fixture(scope="module")
def split_run(tmp_path_factory) -> Path:
    """A directory of two per-rank traces: rank0 is the "after" trace, rank1 the "before" one."""
    folder = tmp_path_factory.mktemp("split") / "split_run"
    folder.mkdir()
    shutil.copyfile(EAGER_AFTER, folder / "trace_rank0.pt.trace.json.gz")
    shutil.copyfile(EAGER_BEFORE, folder / "trace_rank1.pt.trace.json.gz")
    return folder


def test_two_runs_both_pass(capsys):
    code, out, err = run_cli(capsys, "check", EAGER_AFTER, GRAPH_AFTER, *AFTER_BUDGET, "--skip", "1", "-f", "json",
                             "--quiet")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert (doc["schema"], doc["skip"], doc["ok"]) == ("traceview.check-many/2", 1, True)
    assert [r["counts"]["label"] for r in doc["runs"]] == ["demo_eager_after", "demo_graph_after"]
    for one in doc["runs"]:
        assert one["schema"] == "traceview.check/2" and one["ok"] and one["counts"]["steps"] == 4  # 5 - skip 1
        assert [e["actual"] for e in one["expectations"]] == [2.0, 0.0, 0.0, 1030.0]
    # Each run keeps its own counts: only the graph run replays kernels (1026 per step).
    assert [r["categories"]["graph_replayed"]["mean"] for r in doc["runs"]] == [0.0, 1026.0]


def test_one_run_fails_and_stderr_names_it(capsys):
    code, out, err = run_cli(capsys, "check", EAGER_AFTER, EAGER_BEFORE, "-e", "cast<=2", "-e", "fill=0",
                             "--skip", "1", "--quiet")
    assert code == 1
    assert err.splitlines() == [
        "demo_eager_before: FAILED cast: expected value <= 2 per step, got 60 (cast<=2)",
        "demo_eager_before: FAILED fill: expected value = 0 per step, got 54 (fill=0)",
    ]
    # Table: one block per run, then the overall verdict.
    assert out.count("traceview check: demo_eager_") == 2
    assert "2/2 expectations hold" in out and "0/2 expectations hold, 2 FAILED" in out
    assert out.rstrip().endswith("2 runs: 1 passed, 1 FAILED (demo_eager_before)")


def test_a_glob_is_one_run_per_match(capsys):
    # demo_*eager_after would also match the CPU-only demo, whose zero GPU events cannot be checked
    # (tests/test_no_silent_zeros.py): demo_[ev][a-z]*_after keeps the two GPU runs.
    code, out, err = run_cli(capsys, "check", SAMPLES / "demo_[ev][a-z]*_after.pt.trace.json.gz", "-e", "total<=1030",
                             "--skip", "1", "-f", "json", "--quiet")
    assert code == 0, err
    doc = json.loads(out)
    assert [r["counts"]["label"] for r in doc["runs"]] == ["demo_eager_after", "demo_vllm_eager_after"]
    # Both GPU "after" traces launch 1030 per step, over 4 steps after --skip 1.
    assert [r["categories"]["total"]["mean"] for r in doc["runs"]] == [1030.0, 1030.0]
    assert [r["counts"]["steps"] for r in doc["runs"]] == [4, 4]


def test_a_glob_with_one_match_prints_the_one_run_document(capsys):
    code, out, err = run_cli(capsys, "check", SAMPLES / "demo_graph_af*.gz", *AFTER_BUDGET, "-f", "json",
                             "--label", "graph", "--quiet")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert (doc["schema"], doc["counts"]["label"]) == ("traceview.check/2", "graph")


def test_bad_trace_among_good_ones_writes_nothing(capsys, tmp_path):
    bad = tmp_path / "bad.pt.trace.json"
    bad.write_text('{"traceEvents": [')  # cut off mid-file
    target = tmp_path / "check.json"
    code, out, err = run_cli(capsys, "check", EAGER_AFTER, bad, GRAPH_AFTER, "-e", "cast<=2", "-f", "json",
                             "-o", target, "--jobs", "2")
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"traceview: {bad}: the traceEvents array does not end: "
                                "the JSON is truncated or malformed"]
    assert not target.exists() and list(tmp_path.iterdir()) == [bad]  # no temp file left either


@pytest.mark.parametrize("argv, message", [
    (["{after}", "{tmp}/nothing_*.json"], "{tmp}/nothing_*.json: no file matches this pattern"),
    (["{after}", "{tmp}/empty"], "{tmp}/empty: directory holds no trace files"),
    (["{after}", "{tmp}/missing.json"], "{tmp}/missing.json: no such file or directory"),
    (["{after}", "{graph}", "--label", "nightly"], "--label: names one run, but 2 runs were given"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, argv, message):
    (tmp_path / "empty").mkdir()
    names = {"after": EAGER_AFTER, "graph": GRAPH_AFTER, "tmp": tmp_path}
    target = tmp_path / "out.json"
    code, out, err = run_cli(capsys, "check", *[a.format(**names) for a in argv], "-e", "cast<=2", "-f", "json",
                             "-o", target)
    assert (code, out) == (2, "")
    assert message.format(**names) in err and "Traceback" not in err
    assert not target.exists()


def test_two_runs_as_json_markdown_and_junit(capsys, tmp_path):
    budget = tmp_path / "budget.toml"
    budget.write_text('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = -58\n'
                      '[[expect]]\ncategory = "metadata"\nvalue = 0\n')
    argv = ["check", EAGER_AFTER, EAGER_BEFORE, "-e", "cast<=2", "-e", "fill=0", "--expect-file", budget,
            "--skip", "1", "--quiet"]

    code, out, _ = run_cli(capsys, *argv, "-f", "json")
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert code == 1 and doc["ok"] is False and [r["ok"] for r in doc["runs"]] == [True, False]
    assert [e["skipped"] for e in doc["runs"][1]["expectations"]] == [False, False, True, False]

    code, out, _ = run_cli(capsys, *argv, "-f", "markdown")
    assert code == 1
    assert out.startswith("## traceview check: 2 runs\n\n\u274c 2 runs: 1 passed, 1 FAILED (demo_eager_before)\n")
    sections = [line for line in out.splitlines() if line.startswith("### ")]
    assert sections == ["### traceview check: demo_eager_after", "### traceview check: demo_eager_before"]
    assert "\u2705 3/3 expectations hold" in out and "\u274c 0/3 expectations hold, 3 FAILED" in out

    report = tmp_path / "check.xml"
    code, out, _ = run_cli(capsys, *argv, "-f", "junit", "-o", report)
    assert (code, out) == (1, "")
    root = ET.parse(report).getroot()
    # 2 runs x 4 expectations; the delta one is skipped in each run; "before" fails cast, fill and metadata.
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("skipped")) == ("testsuites", "8", "3", "2")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["traceview.check: demo_eager_after",
                                               "traceview.check: demo_eager_before"]
    assert [(s.get("tests"), s.get("failures"), s.get("skipped")) for s in suites] == [("4", "0", "1"),
                                                                                      ("4", "3", "1")]
    assert [len(s.findall("testcase")) for s in suites] == [4, 4]
    failed = [c.get("classname") for c in suites[1].findall("testcase") if c.find("failure") is not None]
    assert failed == ["traceview.check.cast", "traceview.check.fill", "traceview.check.metadata"]
    trace = {p.get("name"): p.get("value") for p in suites[1].find("properties")}
    assert trace == {"trace": str(EAGER_BEFORE), "skip": "1"}


def test_jobs_2_process_pool_equals_checking_each_run_alone(capsys, split_run):
    argv = ["-e", "cast<=2", "-e", "fill<=27", "--skip", "1", "-f", "json", "--quiet"]
    code, out, err = run_cli(capsys, "check", split_run, GRAPH_AFTER, "--jobs", "2", "--executor", "process", *argv)
    assert code == 1, err  # the split run's casts average (2 + 60) / 2 = 31 per step
    many = json.loads(out)
    split = many["runs"][0]
    assert [Path(r["path"]).name for r in split["counts"]["ranks"]] == ["trace_rank0.pt.trace.json.gz",
                                                                       "trace_rank1.pt.trace.json.gz"]
    assert split["categories"]["fill"]["mean"] == 27.0  # (0 + 54) / 2
    assert split["warnings"][0] == "ranks disagree on metadata launches per step: rank0=0, rank1=1"
    assert "split_run: FAILED cast: expected value <= 2 per step, got 31 (cast<=2)" in err
    # Counted in the pool and grouped back, each run's document is the one `check RUN` prints alone.
    for path, doc in zip([split_run, GRAPH_AFTER], many["runs"]):
        _, alone, _ = run_cli(capsys, "check", path, *argv)
        assert doc == json.loads(alone)


def test_analyze_runs_and_check_runs_from_python(split_run):
    runs = expand_runs([split_run, str(SAMPLES / "demo_graph_*.gz")])
    assert [p.name for p in runs] == ["split_run", "demo_graph_after.pt.trace.json.gz",
                                      "demo_graph_before.pt.trace.json.gz"]
    progress = []
    counted = analyze_runs(runs, jobs=2, on_progress=lambda done, total: progress.append((done, total)))
    assert [len(ranks) for ranks in counted.values()] == [2, 1, 1]
    assert progress[-1] == (4, 4)  # one bar over every file of every run
    known = known_names(category_order(load_category_rules(None)))
    checks = check_runs(counted, gather(["graph_replayed=0"], [], known, "value"), skip=1)
    assert [c.side.label for c in checks] == ["split_run", "demo_graph_after", "demo_graph_before"]
    # Only the graph-mode runs replay kernels: 1026 per step after, 1084 before.
    assert [c.side.value("graph_replayed") for c in checks] == [0.0, 1026.0, 1084.0]
    assert [c.result.passed for c in checks] == [True, False, False]


def test_runs_sharing_a_name_are_labelled_by_path():
    assert run_labels(["nightly/a.pt.trace.json.gz", "nightly/b/"]) == ["a", "b"]
    # Two runs named "run" would be indistinguishable in reports: each keeps its path instead.
    assert run_labels(["a/run", "b/run.json"]) == ["a/run", "b/run.json"]
