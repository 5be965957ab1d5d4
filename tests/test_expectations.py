"""Expectation expressions (``--expect``) and files (``--expect-file``): parsing, errors, evaluation."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from traceview.analyses.check import check_side
from traceview.analyses.expectations import (
    Expectation,
    evaluate,
    gather,
    known_names,
    load_expectation_file,
    parse_expectation,
)
from traceview.errors import RulesError, TraceviewError
from traceview.model.categories import category_order, load_category_rules

KNOWN = known_names(category_order(load_category_rules()))


@pytest.mark.parametrize("text, expected", [
    ("cast=-58", ("cast", "=", -58.0, 0.0)),
    ("fill = -54", ("fill", "=", -54.0, 0.0)),
    ("metadata=-1\u00b10.5", ("metadata", "=", -1.0, 0.5)),
    ("metadata=-1+-0.5", ("metadata", "=", -1.0, 0.5)),
    ("metadata = -1 +/- .5", ("metadata", "=", -1.0, 0.5)),
    ("cast<=4", ("cast", "<=", 4.0, 0.0)),
    ("total>=100", ("total", ">=", 100.0, 0.0)),
    ("fill==0", ("fill", "=", 0.0, 0.0)),
    ("direct<1e3", ("direct", "<", 1000.0, 0.0)),
    ("graph_replayed>0", ("graph_replayed", ">", 0.0, 0.0)),
    ("step_pct<=-2", ("step_pct", "<=", -2.0, 0.0)),
    ("step_ms<=\u221241.5", ("step_ms", "<=", -41.5, 0.0)),  # a typographic minus, as pasted from a doc
])
def test_parse(text, expected):
    exp = parse_expectation(text, KNOWN)
    assert (exp.category, exp.op, exp.expected, exp.tolerance) == expected
    assert exp.field == "delta" and exp.expression == text.strip()


@pytest.mark.parametrize("text, reason", [
    ("cast=>3", "expected CATEGORY OP NUMBER"),
    ("cast=", "expected CATEGORY OP NUMBER"),
    ("=3", "expected CATEGORY OP NUMBER"),
    ("cast=-58 fill=-54", "expected CATEGORY OP NUMBER"),
    ("cast!=3", "expected CATEGORY OP NUMBER"),
    ("cast=3±-1", "tolerance must not be negative"),
    ("casts=-58", "unknown category 'casts'"),
    ("Cast=-58", "unknown category 'Cast'"),  # names are case-sensitive, like the rules
])
def test_parse_errors_name_the_expression(text, reason):
    with pytest.raises(RulesError) as err:
        parse_expectation(text, KNOWN)
    message = str(err.value)
    assert message.startswith(f"--expect {text!r}: ") and reason in message
    assert "\n" not in message


def test_step_pct_is_only_a_delta():
    with pytest.raises(RulesError, match="step_pct is a change in percent"):
        parse_expectation("step_pct<=-2", KNOWN, field="value")


def test_rules_categories_are_known():
    # Every category of the packaged rules, then the aggregates and latencies.
    assert KNOWN[:3] == ("metadata", "fill", "cast")
    assert KNOWN[-5:] == ("total", "graph_replayed", "direct", "step_ms", "step_pct")
    assert "other" in KNOWN


@pytest.mark.parametrize("op, expected, tol, actual, holds", [
    ("=", -58, 0, -58, True),
    ("=", -58, 0, -57, False),
    ("=", -1, 0.5, -1.5, True),  # the tolerance is inclusive
    ("=", -1, 0.5, -0.4, False),
    ("=", 2.0, 0, 2.0 + 1e-12, True),  # float noise from averaging integers
    ("<=", 4, 0, 4, True),
    ("<=", 4, 0, 4.5, False),
    ("<=", 4, 1, 4.5, True),
    (">=", 100, 0, 99, False),
    (">=", 100, 2, 99, True),
    ("<", 4, 0, 4, False),
    ("<", 4, 0, 4 - 1e-12, False),  # float noise of 4 is not less than 4
    (">", 4, 0, 5, True),
])
def test_holds(op, expected, tol, actual, holds):
    assert Expectation("cast", op, expected, tol, "delta", "x").holds(actual) is holds


def test_nan_never_holds():
    assert not Expectation("cast", "<=", 4, 0, "value", "x").holds(math.nan)


def test_evaluate_frame_and_skipped():
    exps = [Expectation("cast", "=", -2, 0, "delta", "cast=-2"), Expectation("fill", "<=", 1, 0, "value", "fill<=1")]
    findings = evaluate(exps, lambda e: -2.0 if e.field == "delta" else None)
    assert findings["ok"].tolist() == [True, True]
    assert findings["skipped"].tolist() == [False, True]
    assert math.isnan(findings["actual"].iloc[1])
    assert list(findings.columns) == ["category", "field", "op", "expected", "tolerance", "actual", "ok", "skipped",
                                      "expression", "why", "unit"]
    assert findings["unit"].tolist() == ["", ""]  # only latency expectations carry a unit


def test_evaluate_nothing_is_an_empty_frame():
    findings = evaluate([], lambda e: 0.0)
    assert findings.empty and "ok" in findings.columns


def test_shipped_deepseek_file():
    exps = load_expectation_file("deepseek_v32_decode", KNOWN)
    assert [(e.category, e.op, e.expected, e.tolerance, e.field) for e in exps] == [
        ("cast", "=", -58.0, 0.0, "delta"), ("fill", "=", -54.0, 0.0, "delta"), ("metadata", "=", -1.0, 0.5, "delta")]
    # Latency is not asserted in the shipped file: the demo traces run elsewhere.
    assert not any(e.category in ("step_ms", "step_pct") for e in exps)
    assert all(e.why for e in exps)


def _write(tmp_path, text: str):
    path = tmp_path / "expect.toml"
    path.write_text(text)
    return path


def test_file_all_keys(tmp_path):
    path = _write(tmp_path, 'schema_version = 1\ndescription = "x"\n'
                            '[[expect]]\ncategory = "fill"\nvalue = 4\nop = "<="\ntolerance = 1\nwhy = "budget"\n'
                            '[[expect]]\ncategory = "step_pct"\ndelta = -2\nop = "<="\n')
    fill, pct = load_expectation_file(path, KNOWN)
    assert (fill.category, fill.op, fill.expected, fill.tolerance, fill.field, fill.why) == \
        ("fill", "<=", 4.0, 1.0, "value", "budget")
    assert fill.expression == "expect.toml expect #1"  # the file name: reports show it
    assert (pct.category, pct.field, pct.expected) == ("step_pct", "delta", -2.0)


@pytest.mark.parametrize("body, reason", [
    ('[[expect]]\ncategory = "cast"\ndelta = 1\n', "schema_version must be 1, got None"),
    ('schema_version = 2\n[[expect]]\ncategory = "cast"\ndelta = 1\n', "schema_version must be 1, got 2"),
    ("schema_version = 1\n", "needs at least one [[expect]] table"),
    ('schema_version = 1\nexpects = 1\n[[expect]]\ncategory = "cast"\ndelta = 1\n', "unknown top-level key(s) expects"),
    ('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = 1\nvalue = 2\n',
     "expect #1 (cast): give exactly one of delta or value"),
    ('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = "-58"\n', "expect #1 (cast): delta must be a number"),
    ('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = true\n', "expect #1 (cast): delta must be a number"),
    ('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = -58\ntolerance = -1\n',
     "expect #1 (cast): tolerance must not be negative"),
    ('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = -58\nop = "!="\n', "op must be one of"),
    ('schema_version = 1\n[[expect]]\ncategory = "cats"\ndelta = -58\n', "expect #1: unknown category 'cats'"),
    ('schema_version = 1\n[[expect]]\ndelta = -58\n', 'expect #1: needs category = "NAME"'),
    ('schema_version = 1\n[[expect]]\ncategory = "cast"\ndelta = -58\nbudget = 3\n', "unknown key(s) budget"),
    ('schema_version = 1\n[[expect]]\ncategory = "step_pct"\nvalue = -2\n', "step_pct is a change in percent"),
    ("schema_version = 1\n[[expect]\n", "invalid TOML"),
])
def test_file_errors_name_file_and_entry(tmp_path, body, reason):
    path = _write(tmp_path, body)
    with pytest.raises(RulesError) as err:
        load_expectation_file(path, KNOWN)
    assert str(err.value).startswith(f"{path}: ") and reason in str(err.value)


def test_missing_file_and_unknown_shipped_name(tmp_path):
    with pytest.raises(RulesError, match="no such file"):
        load_expectation_file(tmp_path / "nope.toml", KNOWN)
    with pytest.raises(RulesError, match="no_such_shipped_file: no such file"):
        load_expectation_file("no_such_shipped_file", KNOWN)


def test_gather_keeps_order(tmp_path):
    path = _write(tmp_path, 'schema_version = 1\n[[expect]]\ncategory = "fill"\nvalue = 4\n')
    exps = gather(["cast<=4"], [path], KNOWN, field="value")
    assert [(e.category, e.field) for e in exps] == [("cast", "value"), ("fill", "value")]


def test_errors_are_traceview_errors():
    # The CLI turns TraceviewError into one stderr line and exit 2.
    assert issubclass(RulesError, TraceviewError)


def test_check_refuses_only_deltas():
    # No value of the side is read when every expectation is skipped; only its GPU event count is.
    side = SimpleNamespace(gpu_events=1, path="t.json")
    with pytest.raises(RulesError, match="none of the 2 expectations applies to one trace"):
        check_side(side, [parse_expectation("cast=-58", KNOWN), parse_expectation("fill=-54", KNOWN)])


def test_documented_file_example_parses(tmp_path):
    # The ```toml block of docs/json-schema.md#expectation-files is a working file.
    doc = (Path(__file__).resolve().parents[1] / "docs" / "json-schema.md").read_text()
    block = doc.split("## Expectation files", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    exps = load_expectation_file(_write(tmp_path, block), KNOWN)
    assert [(e.category, e.field, e.op, e.expected) for e in exps] == [
        ("cast", "delta", "=", -58.0), ("fill", "value", "<=", 6.0), ("step_pct", "delta", "<=", -2.0)]
