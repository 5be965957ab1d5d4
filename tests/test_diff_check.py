"""``traceview diff`` / ``traceview check``: analyses and CLI on hand-written Kineto traces.

The fixtures imitate torch.profiler's Kineto JSON: a ``ProfilerStep#N``
user_annotation per step; under it, per launch, a ``cpu_op`` (with
``Input type`` args), a ``cuda_runtime`` call carrying ``correlation``, and the
``kernel`` on pid = device with the same ``correlation``. A graph replay is one
``cudaGraphLaunch`` whose correlation id is carried by several kernels.

Per step (categories from the packaged rules/categories.toml):

=========================  ======  =====  ==================================================
launches                   before  after  rule that categorizes them
=========================  ======  =====  ==================================================
aten::fill_ FillFunctor       3      1    fill (kernel name FillFunctor)
aten::copy_ bf16->float       2      0    cast (copy kernel, Input types differ) under "moe_router"
aten::mm sm90_xmma_gemm       2      2    gemm
kn_get_mla_metadata_v1        2      1    metadata
graph replay: 2 triton_poi    2      2    elementwise, graph_replayed
total                        11      6
graph_replayed / direct     2 / 9  2 / 4
=========================  ======  =====  ==================================================

``before``'s first step (ProfilerStep#0, warm-up) launches 5 extra gemms; steps
last 10 ms before and 9.5 ms after. So over steady steps (``--skip 1``) the
deltas are fill -2, cast -2, metadata -1, total -5, gemm 0, step -0.5 ms (-5 %).
"""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import run_cli

from traceview.analyses import check_counts, diff_counts, gather, summarize
from traceview.analyses.expectations import known_names
from traceview.batch import analyze_ranks
from traceview.model.counts import analyze, counts_document

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "docs" / "schemas"
SAMPLES = REPO / "sample_traces"

CPU_PID, DEVICE, STREAM = 4242, 0, 7
FILL = ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<c10::BFloat16>, "
        "std::array<char*, 1ul> >(int, at::native::FillFunctor<c10::BFloat16>, std::array<char*, 1ul>)")
CAST = ("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)"
        "::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, "
        "std::array<char*, 2ul>, 4>(int)")
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_cublas"
META = "kn_get_mla_metadata_v1_0"
TRITON = "triton_poi_fused_add_0"
BF16 = "c10::BFloat16"


class _Writer:
    """Appends Kineto events; every launch gets a fresh correlation id."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.corr = 100

    def x(self, cat: str, name: str, pid: int, tid: int, ts_us: float, dur_us: float, **args) -> None:
        self.events.append({"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": round(ts_us, 3),
                            "dur": round(dur_us, 3), "args": args})

    def launch(self, ts: float, op: str, types: list[str], kernel: str, api: str = "cudaLaunchKernel",
               kernels: int = 1) -> float:
        """cpu_op > runtime call; ``kernels`` GPU kernels share its correlation. Returns the next free ts."""
        self.corr += 1
        self.x("cpu_op", op, CPU_PID, CPU_PID, ts, 8.0, **{"External id": self.corr, "Input type": types})
        self.x("cuda_runtime", api, CPU_PID, CPU_PID, ts + 1, 5.0, **{"External id": self.corr,
                                                                      "correlation": self.corr, "cbid": 211})
        for k in range(kernels):
            self.x("kernel", kernel, DEVICE, STREAM, ts + 20 + 3 * k, 2.0,
                   **{"External id": self.corr, "correlation": self.corr, "device": DEVICE, "stream": STREAM})
        return ts + 30


def write_trace(path: Path, fill: int, cast: int, meta: int, step_ms: float, steps: int = 4,
                warmup_gemm: int = 0) -> Path:
    """A Kineto trace with ``steps`` ProfilerSteps laid out as in the module docstring."""
    w = _Writer()
    for step in range(steps):
        start = 1_000_000.0 + step * (step_ms * 1000 + 200)
        w.x("user_annotation", f"ProfilerStep#{step}", CPU_PID, CPU_PID, start, step_ms * 1000,
            **{"External id": 1 + step})
        ts = start + 10
        for _ in range(fill):
            ts = w.launch(ts, "aten::fill_", [BF16, "Scalar"], FILL)
        if cast:
            w.x("user_annotation", "moe_router", CPU_PID, CPU_PID, ts, 30 * cast + 5)
            for _ in range(cast):
                # aten::copy_(self: float, src: bf16): Input type is (destination, source).
                ts = w.launch(ts + 1, "aten::copy_", ["float", BF16, "Scalar"], CAST)
            ts += 5
        for _ in range(2 + (warmup_gemm if step == 0 else 0)):
            ts = w.launch(ts, "aten::mm", [BF16, BF16], GEMM)
        for _ in range(meta):
            ts = w.launch(ts, "aten::empty", [], META)
        w.launch(ts, "aten::empty", [], TRITON, api="cudaGraphLaunch", kernels=2)
    text = json.dumps({"schemaVersion": 1, "traceEvents": w.events})
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("traces")
    out = {"before": write_trace(root / "before.pt.trace.json.gz", 3, 2, 2, 10.0, warmup_gemm=5),
           "after": write_trace(root / "after.pt.trace.json", 1, 0, 1, 9.5)}
    ranks = root / "ranks_after"
    ranks.mkdir()
    for rank in range(2):
        write_trace(ranks / f"rank{rank}.pt.trace.json", 1, 0, 1, 9.5)
    (ranks / "notes.txt").write_text("not a trace: ignored")
    out["ranks_after"] = ranks
    split = root / "ranks_disagree"
    split.mkdir()
    write_trace(split / "run_rank0.json", 1, 0, 1, 9.5)
    write_trace(split / "run_rank1.json", 3, 0, 1, 9.5)  # rank 1 still fills 3 times per step
    out["ranks_disagree"] = split
    return out


DISAGREE = ["ranks disagree on fill launches per step: rank0=1, rank1=3",
            "ranks disagree on total launches per step: rank0=6, rank1=8",
            "ranks disagree on direct launches per step: rank0=4, rank1=6"]


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


# --- the fixture counts what the docstring says -------------------------------------------------

def test_fixture_counts_per_step(traces):
    before = analyze(traces["before"]).per_step()
    after = analyze(traces["after"]).per_step()
    # Step 0 of before: 2 + 5 warm-up gemms; steps 1-3: 2.
    assert before["gemm"].tolist() == [7, 2, 2, 2]
    assert before[["fill", "cast", "metadata", "elementwise"]].iloc[1].tolist() == [3, 2, 2, 2]
    assert after[["fill", "cast", "metadata", "gemm", "elementwise"]].iloc[1].tolist() == [1, 0, 1, 2, 2]
    steps = analyze(traces["after"]).steps
    assert steps["graph_replayed"].tolist() == [2, 2, 2, 2]  # one cudaGraphLaunch, 2 kernels
    assert steps["direct"].tolist() == [4, 4, 4, 4]  # 1 fill + 2 gemm + 1 metadata


# --- analyses -----------------------------------------------------------------------------------

def test_diff_counts_categories_latency_kernels(traces):
    diff = diff_counts(analyze(traces["before"]), analyze(traces["after"]), skip=1)
    delta = diff.categories.set_index("category")["delta_mean"]
    assert delta[["fill", "cast", "metadata", "gemm", "elementwise"]].tolist() == [-2, -2, -1, 0, 0]
    assert delta[["total", "graph_replayed", "direct"]].tolist() == [-5, 0, -5]  # 11 -> 6, 2 -> 2, 9 -> 4
    latency = diff.latency.set_index("metric")
    assert latency.at["step_ms_mean", "before"] == pytest.approx(10.0)
    assert latency.at["step_ms_mean", "delta"] == pytest.approx(-0.5)
    assert latency.at["step_ms_mean", "delta_pct"] == pytest.approx(-5.0)
    assert (diff.before.steps, diff.after.steps) == (3, 3)  # 4 steps, 1 skipped
    # Biggest changes: cast (-2, removed) and fill (-2) tie on |delta|; categories break the tie.
    top = diff.changed_kernels()
    assert top["category"].tolist() == ["cast", "fill", "metadata"]
    cast = top.iloc[0]
    assert (cast["src_dtype"], cast["dst_dtype"], cast["op"], cast["annotation"]) == \
        ("bfloat16", "float32", "aten::copy_", "moe_router")
    assert (cast["before_per_step"], cast["after_per_step"], cast["change"]) == (2.0, 0.0, "removed")


def test_skip_drops_warmup_gemms(traces):
    before, after = analyze(traces["before"]), analyze(traces["after"])
    gemm = lambda skip: diff_counts(before, after, skip).categories.set_index("category").at["gemm", "delta_mean"]
    assert gemm(0) == pytest.approx(-1.25)  # before: (7 + 2 + 2 + 2) / 4 = 3.25, after 2
    assert gemm(1) == 0


def test_check_counts_values(traces):
    counts = analyze(traces["after"])
    known = known_names(counts.categories)
    result = check_counts(counts, gather(["cast=0", "fill<=1", "total>=7", "step_ms=9.5+-0.01"], [], known,
                                         "value"), skip=1)
    assert result.findings["ok"].tolist() == [True, True, False, True]  # total is 6
    assert not result.passed
    assert result.failures["category"].tolist() == ["total"]


def test_summarize_ranks_mean_and_disagreement(traces):
    ranks = analyze_ranks(traces["ranks_disagree"])
    assert [Path(c.path).name for c in ranks] == ["run_rank0.json", "run_rank1.json"]
    side = summarize(ranks, skip=1, path=str(traces["ranks_disagree"]))
    assert side.categories.at["fill", "mean"] == 2.0  # (1 + 3) / 2
    assert side.categories.at["fill", "min"] == 1.0 and side.categories.at["fill", "max"] == 3.0
    # rank1 fills 3 times per step, rank0 once: fill, total (6 vs 8) and direct (4 vs 6) differ.
    assert list(side.warnings) == DISAGREE
    assert len(side.ranks) == 2


def test_counts_json_matches_schema(traces, capsys):
    doc = counts_document(analyze(traces["before"]), skip=1)
    jsonschema.validate(doc, _schema("counts"))
    assert [s["total"] for s in doc["steps"]] == [16, 11, 11, 11]  # 11 + 5 warm-up gemms in step 0
    assert doc["summary"]["fill"]["mean"] == 3.0
    code, out, err = run_cli(capsys, "counts", traces["ranks_disagree"], "--format", "json", "--skip", "1")
    assert code == 0, err
    ranks = json.loads(out)
    jsonschema.validate(ranks, _schema("counts"))
    assert ranks["schema"] == "traceview.counts-ranks/1" and len(ranks["ranks"]) == 2
    assert ranks["notes"] == DISAGREE  # the same notes as summarize's (one function, analyses.summary)
    assert err.splitlines() == [f"note: {note}" for note in DISAGREE]


# --- CLI: diff ----------------------------------------------------------------------------------

def test_cli_diff_table_passes(traces, capsys):
    code, out, err = run_cli(capsys, "diff", traces["before"], traces["after"], "--skip", "1", "--expect", "cast=-2",
                             "--expect", "fill=-2", "--expect", "metadata=-1±0.5", "--expect", "step_pct<=-4")
    assert code == 0, err
    assert "Launches per step" in out and "Kernels whose count per step changed most" in out
    assert "4/4 expectations hold" in out


def test_cli_diff_fails_naming_category(traces, capsys):
    code, _, err = run_cli(capsys, "diff", traces["before"], traces["after"], "--skip", "1",
                           "--expect", "cast=-2", "--expect", "metadata=-3+-0.5", "--quiet")
    assert code == 1
    assert "FAILED metadata: expected delta = -3 ± 0.5 per step, got -1" in err
    assert "cast" not in err.replace("FAILED metadata", "")  # only the failing expectation is listed


def test_cli_diff_json_schema(traces, capsys):
    code, out, err = run_cli(capsys, "diff", traces["before"], traces["after"], "--skip", "1", "-f", "json",
                             "--expect", "cast=-2", "--label-before", "eager", "--label-after", "fixed")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, _schema("diff"))
    assert doc["schema"] == "traceview.diff/2" and doc["ok"] is True
    assert doc["categories"]["cast"] == {"before": 2.0, "after": 0.0, "delta": -2.0, "before_median": 2.0,
                                         "after_median": 0.0, "delta_median": -2.0}
    assert doc["latency"]["delta_pct"] == pytest.approx(-5.0)
    assert (doc["before"]["label"], doc["after"]["label"], doc["before"]["steps"]) == ("eager", "fixed", 3)
    assert doc["expectations"][0]["actual"] == -2.0


def test_cli_diff_markdown(traces, capsys):
    code, out, _ = run_cli(capsys, "diff", traces["before"], traces["after"], "--skip", "1", "-f", "markdown",
                           "--expect", "fill=-5")
    assert code == 1
    assert "| fill | 3 | 1 | -2 |" in out
    assert "| \u274c | fill = -5 | delta | -2 | fill=-5 |  |" in out  # no why for a command-line expectation
    # Each changed kernel names the CPU op and the record_function that launched it.
    assert "| -2 | 2 | 0 | cast | bfloat16->float32 at::native::unrolled_elementwise_kernel" in out
    assert "| aten::copy_ under moe_router |" in out


def test_cli_diff_junit(traces, capsys, tmp_path):
    report = tmp_path / "junit.xml"
    code, out, _ = run_cli(capsys, "diff", traces["before"], traces["after"], "--skip", "1", "-f", "junit",
                           "-o", report, "--expect", "cast=-2", "--expect", "fill=-1", "--expect", "total<=-5")
    assert code == 1 and out == ""  # -o: nothing on stdout
    suite = ET.parse(report).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 3 and suite.get("tests") == "3" and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("classname") for c in failed] == ["traceview.diff.fill"]
    assert "got -2" in failed[0].find("failure").get("message")


def test_cli_diff_rank_directory(traces, capsys):
    code, out, err = run_cli(capsys, "diff", traces["before"], traces["ranks_after"], "--skip", "1", "-f", "json",
                             "--expect", "cast=-2")
    assert code == 0, err
    doc = json.loads(out)
    assert [Path(r["path"]).name for r in doc["after"]["ranks"]] == ["rank0.pt.trace.json", "rank1.pt.trace.json"]
    assert doc["categories"]["fill"]["after"] == 1.0 and doc["warnings"] == []


def test_cli_diff_ranks_disagree_warns(traces, capsys):
    code, out, err = run_cli(capsys, "diff", traces["before"], traces["ranks_disagree"], "--skip", "1", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["categories"]["fill"]["after"] == 2.0  # mean of 1 and 3
    assert any("ranks disagree on fill" in w for w in doc["warnings"])
    assert "ranks disagree on fill" in err


# --- CLI: check ---------------------------------------------------------------------------------

def test_cli_check_json_passes(traces, capsys):
    code, out, err = run_cli(capsys, "check", traces["after"], "-f", "json", "--expect", "cast=0",
                             "--expect", "fill<=1", "--expect", "graph_replayed=2", "--expect", "step_ms<=10")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, _schema("check"))
    assert doc["schema"] == "traceview.check/2" and doc["ok"] is True
    assert doc["categories"]["total"]["mean"] == 6.0 and doc["counts"]["steps"] == 4


def test_cli_check_table_fails(traces, capsys):
    code, out, err = run_cli(capsys, "check", traces["before"], "--skip", "1", "--expect", "cast<=1")
    assert code == 1
    assert "FAILED cast: expected value <= 1 per step, got 2" in err
    assert "0/1 expectations hold, 1 FAILED" in out


def test_cli_check_junit_skips_delta_entries(traces, capsys, tmp_path):
    budget = tmp_path / "budget.toml"
    budget.write_text('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = -2\n'
                      '[[expect]]\ncategory = "fill"\nvalue = 1\nop = "<="\n')
    code, out, _ = run_cli(capsys, "check", traces["after"], "--expect-file", budget, "-f", "junit")
    assert code == 0
    suite = ET.fromstring(out).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "0", "1")
    assert suite.findall("testcase")[0].find("skipped") is not None


def test_cli_check_table_to_file_is_plain_text(traces, capsys, tmp_path):
    target = tmp_path / "check.txt"
    code, out, _ = run_cli(capsys, "check", traces["after"], "-o", target, "--expect", "cast=0")
    text = target.read_text()
    assert (code, out) == (0, "")
    assert "Launches per step" in text and "1/1 expectations hold" in text and "\x1b[" not in text  # no colour codes


def test_cli_check_markdown_to_file(traces, capsys, tmp_path):
    target = tmp_path / "check.md"
    code, out, _ = run_cli(capsys, "check", traces["after"], "-f", "markdown", "-o", target, "--expect", "cast=0")
    assert (code, out) == (0, "")
    assert "| cast | 0 | 0 | 0 | 0 |" not in target.read_text()  # all-zero categories are left out
    assert "| fill | 1 | 1 | 1 | 1 |" in target.read_text()


# --- CLI: exit 2 --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["check", "missing.json", "--expect", "cast=0"], "missing.json: no such file or directory"),
    (["check", "{after}", "--expect", "cast=>0"], "--expect 'cast=>0': expected CATEGORY OP NUMBER"),
    (["check", "{after}", "--expect", "casts=0"], "unknown category 'casts'"),
    (["check", "{after}", "--expect", "step_pct<=-2"], "step_pct is a change in percent"),
    (["check", "{after}"], "check needs at least one --expect or --expect-file"),
    (["check", "{after}", "--expect-file", "{bad_toml}"], "invalid TOML"),
    (["check", "{after}", "--expect-file", "{no_number}"], "expect #1 (cast): give exactly one of delta or value"),
    (["check", "{after}", "--expect-file", "{deltas_only}"], "none of the 1 expectations applies to one trace"),
    (["diff", "{before}", "{after}", "--skip", "4"], "--skip 4 leaves no steps"),
    (["diff", "{before}", "{after}", "--expect-file", "no_such_file.toml"], "no_such_file.toml: no such file"),
    (["diff", "{before}", "{empty_dir}"], "directory holds no trace file"),
])
def test_cli_usage_errors_exit_2(traces, capsys, tmp_path, argv, message):
    files = {"bad_toml": tmp_path / "bad.toml", "no_number": tmp_path / "no_number.toml",
             "deltas_only": tmp_path / "deltas.toml", "empty_dir": tmp_path / "empty"}
    files["bad_toml"].write_text("schema_version = 1\n[[expect]\n")
    files["no_number"].write_text('schema_version = 1\n[[expect]]\ncategory = "cast"\n')
    files["deltas_only"].write_text('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = -2\n')
    files["empty_dir"].mkdir()
    names = {**{k: str(v) for k, v in traces.items()}, **{k: str(v) for k, v in files.items()}}
    code, _, err = run_cli(capsys, *[a.format(**names) for a in argv])
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one line


def test_cli_bad_format_is_usage_error(traces, capsys):
    code, _, err = run_cli(capsys, "diff", traces["before"], traces["after"], "-f", "yaml")
    assert code == 2 and "yaml" in err


# --- GPU sample traces (sample_traces/, collected by sample_traces/collect_gpu_samples.sh) --------

@pytest.mark.parametrize("mode", ["eager", "graph", "vllm_eager"])
def test_shipped_expectations_pass_on_sample_traces(mode, capsys):
    before = SAMPLES / f"demo_{mode}_before.pt.trace.json.gz"
    after = SAMPLES / f"demo_{mode}_after.pt.trace.json.gz"
    if not (before.exists() and after.exists()):
        pytest.skip(f"GPU sample traces {before.name} / {after.name} not collected yet")
    code, out, _ = run_cli(capsys, "diff", before, after, "--expect-file", "deepseek_v32_decode", "-f", "json",
                           "--quiet")
    doc = json.loads(out)
    jsonschema.validate(doc, _schema("diff"))
    assert code == 0, [e for e in doc["expectations"] if not e["ok"]]
    assert [(e["category"], e["actual"]) for e in doc["expectations"]] == \
        [("cast", -58.0), ("fill", -54.0), ("metadata", -1.0)]


@pytest.mark.parametrize("mode", ["eager", "graph", "vllm_eager"])
def test_example_budget_passes_on_sample_after_traces(mode, capsys):
    # examples/launch-budget.toml is what the CI examples check: it must hold on the demo's "after" traces.
    after = SAMPLES / f"demo_{mode}_after.pt.trace.json.gz"
    if not after.exists():
        pytest.skip(f"GPU sample trace {after.name} not collected yet")
    budget = REPO / "examples" / "launch-budget.toml"
    code, out, _ = run_cli(capsys, "check", after, "--expect-file", budget, "--skip", "1", "-f", "json", "--quiet")
    doc = json.loads(out)
    assert code == 0, [e for e in doc["expectations"] if not e["ok"]]
    # 2 int64->int32 casts remain, no fill or metadata launch, 1030 launches per step.
    assert [e["actual"] for e in doc["expectations"]] == [2.0, 0.0, 0.0, 1030.0]


def test_ci_examples_are_valid_yaml_and_use_shipped_files():
    yaml = pytest.importorskip("yaml")
    github = yaml.safe_load((REPO / "examples" / "github-actions-traceview.yml").read_text())
    gitlab = yaml.safe_load((REPO / "examples" / "gitlab-ci-traceview.yml").read_text())
    steps = github["jobs"]["launch-counts"]["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    script = " ".join(gitlab["traceview-launch-counts"]["script"])
    for text in (runs, script):
        assert "traceview check" in text and "--expect-file examples/launch-budget.toml" in text
        assert "--expect-file deepseek_v32_decode" in text and "--format junit" in text
    assert gitlab["traceview-launch-counts"]["artifacts"]["reports"]["junit"] == "traceview-*.xml"
