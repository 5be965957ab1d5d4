"""One -o rule for every command (issue 18, items 3-6): --format wins, else the extension decides,
else a clear error; full kernel names when stdout is not a terminal; no NaN in any table;
GPU span and GPU busy time named apart."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from traceview.cli.app import run

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
BEFORE = str(SAMPLES / "demo_eager_before.pt.trace.json.gz")
AFTER = str(SAMPLES / "demo_eager_after.pt.trace.json.gz")
GRAPH = str(SAMPLES / "demo_graph_before.pt.trace.json.gz")
# The demo's bf16->fp32 router cast (collectors/demo_model.py): its kernel name is 600+ characters.
CAST_KERNEL_TAIL = "at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1>)"

COMMANDS = {
    "info": ["info", BEFORE],
    "sql": ["sql", BEFORE, "select name, null as none_here, dur from slice where name glob 'ProfilerStep#*' "
                           "and category = 'user_annotation' order by ts"],
    "steps": ["steps", BEFORE],
    "kernels": ["kernels", BEFORE, "--skip", "1"],
    "counts": ["counts", BEFORE, "--skip", "1"],
    "diff": ["diff", BEFORE, AFTER, "--skip", "1", "--expect", "cast=-58"],
    "check": ["check", AFTER, "--skip", "1", "--expect", "fill=0"],
}
WRITES_JUNIT = {"diff", "check"}


def _is_json(text: str) -> bool:
    json.loads(text)
    return True


def _is_csv(text: str) -> bool:
    rows = list(csv.reader(io.StringIO(text)))
    return len(rows) >= 2 and len({len(r) for r in rows}) == 1 and len(rows[0]) >= 2


def _is_markdown(text: str) -> bool:
    return any(line.startswith("|---") or line.startswith("|--") for line in text.splitlines())


def _is_junit(text: str) -> bool:
    return ET.fromstring(text.split("\n", 1)[1]).tag == "testsuites"


CHECKS = {".json": _is_json, ".csv": _is_csv, ".md": _is_markdown, ".xml": _is_junit}


@pytest.mark.parametrize("ext", list(CHECKS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_extension_decides_the_format(tmp_path, capsys, command, ext):
    out = tmp_path / f"result{ext}"
    code = run([*COMMANDS[command], "-o", str(out)])
    err = capsys.readouterr().err
    if ext == ".xml" and command not in WRITES_JUNIT:
        assert code == 2 and f"{command} writes table, json, csv, markdown, not junit" in err
        assert not out.exists()
        return
    assert code == 0, err
    text = out.read_text()
    assert CHECKS[ext](text), text[:300]
    assert not re.search(r"\bnan\b|<NA>", text, re.IGNORECASE)  # no NaN cell in any format


@pytest.mark.parametrize("command", ["info", "steps", "diff"])
def test_format_wins_over_the_extension(tmp_path, capsys, command):
    out = tmp_path / "result.csv"
    assert run([*COMMANDS[command], "--format", "json", "-o", str(out)]) == 0, capsys.readouterr().err
    assert _is_json(out.read_text())


@pytest.mark.parametrize("command", ["sql", "counts", "check"])
def test_an_unknown_extension_is_a_usage_error(tmp_path, capsys, command):
    out = tmp_path / "result.dat"
    assert run([*COMMANDS[command], "-o", str(out)]) == 2
    assert "cannot tell the format of" in capsys.readouterr().err and not out.exists()


def test_txt_is_the_table_in_plain_text(tmp_path, capsys):
    out = tmp_path / "diff.txt"
    assert run([*COMMANDS["diff"], "-o", str(out)]) == 0
    text = out.read_text()
    assert "Launches per step" in text and "\x1b[" not in text
    assert CAST_KERNEL_TAIL in text  # the whole name: a file is not a terminal


def test_tables_in_a_pipe_keep_full_kernel_names(capsys):
    # capsys is not a terminal, like a CI log: rich would otherwise cut the table at 80 columns.
    assert run(COMMANDS["diff"]) == 0
    out = capsys.readouterr().out
    assert CAST_KERNEL_TAIL in out and "\u2026" not in out
    assert run(["kernels", GRAPH, "--skip", "1", "-c", "cast"]) == 0
    assert CAST_KERNEL_TAIL in capsys.readouterr().out


def test_no_nan_in_graph_replayed_kernel_tables(capsys):
    # Graph replays have no launching op, annotation or op dtypes: empty cells, never "nan" or "<NA>".
    assert run(["kernels", GRAPH, "--skip", "1", "-c", "cast"]) == 0
    out = capsys.readouterr().out
    assert "cudaGraphLaunch" in out and "nan" not in out and "<NA>" not in out
    assert run(["kernels", GRAPH, "--skip", "1", "-c", "cast", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # 58 router casts replayed by the graph; 2 int64->int32 casts launched eagerly by aten::copy_.
    assert {(r["per_step"], r["op"], r["src_dtype"]) for r in rows} == {("58.0", "", ""),
                                                                        ("2.0", "aten::copy_", "int64")}


def test_a_successful_sql_table_shows_null_as_empty(capsys):
    assert run(COMMANDS["sql"]) == 0
    out = capsys.readouterr().out
    assert "ProfilerStep#" in out and "nan" not in out and "None" not in out and "<NA>" not in out


def test_gpu_span_and_busy_time_are_named_apart(capsys):
    assert run([*COMMANDS["counts"], "--format", "json"]) == 0
    step = json.loads(capsys.readouterr().out)["steps"][1]
    assert "gpu_ms" not in step and 0 < step["gpu_busy_ms"] <= step["gpu_span_ms"] <= step["cpu_ms"] * 2
    assert run([*COMMANDS["diff"], "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "gpu_busy_ms" in doc["before"] and not any("gpu_kernel" in key for key in doc["latency"])
    assert run(COMMANDS["steps"]) == 0
    header = capsys.readouterr().out
    assert "gpu span ms" in header and "gpu busy ms" in header


@pytest.mark.parametrize("ext", [".json", ".csv", ".md", ".xml"])
def test_report_writes_html_only(tmp_path, capsys, ext):
    out = tmp_path / f"report{ext}"
    assert run(["report", BEFORE, AFTER, "--skip", "1", "-o", str(out)]) == 2
    assert "report writes one HTML page: name it .html" in capsys.readouterr().err and not out.exists()


def test_check_csv_holds_the_verdict(tmp_path, capsys):
    out = tmp_path / "check.csv"
    assert run(["check", AFTER, "--skip", "1", "--expect", "fill=0", "--expect", "cast<=1", "-o", str(out)]) == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    # "after" launches 0 fills and 2 int64->int32 casts per step: fill=0 holds, cast<=1 fails.
    assert [(r["category"], r["actual"], r["ok"]) for r in rows] == [("fill", "0.0", "True"), ("cast", "2.0", "False")]
    assert {r["run"] for r in rows} == {"demo_eager_after"}
