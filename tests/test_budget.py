"""Launch budgets: budget write, check --budget/--tolerance, assert_launch_budget, and docs/ci.md's job."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import pytest
import typer
import yaml
from conftest import REPO, run_cli
from traceview.collectors.demo_decode import expected_counts

from traceview.cli.app import COMMAND_MODULES, app, run
from traceview.model.categories import category_order, load_category_rules
from traceview.testing import assert_launch_budget

SAMPLES = REPO / "sample_traces"
BEFORE = SAMPLES / "demo_eager_before.pt.trace.json.gz"
AFTER = SAMPLES / "demo_eager_after.pt.trace.json.gz"
CATEGORIES = category_order(load_category_rules())
# What "before" launches per step more than "after", by the demo's construction (collectors/demo_decode.py).
_B, _A = expected_counts("before"), expected_counts("after")
GROWTH = {"cast": _B.cast_bf16_fp32 - _A.cast_bf16_fp32, "fill": _B.fill - _A.fill,
          "metadata": _B.metadata - _A.metadata}  # 58, 54, 1


@pytest.fixture(scope="module")
def after_budget(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("budget") / "launches.toml"
    assert run(["budget", "write", str(AFTER), "--skip", "1", "-o", str(path)]) == 0
    return path


def test_written_budget_holds_every_category_and_its_provenance(after_budget):
    text = after_budget.read_text()
    assert re.findall(r'^category = "(\w+)"$', text, re.M) == CATEGORIES  # zeros included, rule order
    assert "# skip: 1 (4 steady steps)" in text and "# rules: sha256:" in text and str(AFTER) in text
    assert "# step marker: torch-profiler-step" in text


def test_same_trace_passes(after_budget, capsys):
    code, _, err = run_cli(capsys, "check", AFTER, "--budget", after_budget, "--skip", "1")
    assert code == 0 and "FAILED" not in err


def test_before_fails_on_after_budget_naming_each_grown_entry(after_budget, capsys):
    code, out, err = run_cli(capsys, "check", BEFORE, "--budget", after_budget, "--skip", "1", "--format", "junit")
    assert code == 1
    failed = re.findall(r"^FAILED (\w+): .* \(launches.toml budget: \+(\d+)/step, launched by (\S+)\)$", err, re.M)
    assert {name: int(n) for name, n, _ in failed} == GROWTH
    ops = {name: op for name, _, op in failed}
    assert ops["cast"] == "aten::copy_" and ops["fill"] == "aten::fill_"  # the ops the demo calls
    cases = ET.fromstring(out).findall(".//testcase")
    assert len(cases) == len(CATEGORIES)  # one testcase per budget entry
    assert sorted(c.get("classname").rsplit(".", 1)[1] for c in cases if c.find("failure") is not None) == \
        sorted(GROWTH)


def test_tolerance_in_launches_and_percent(after_budget, capsys):
    # +58 casts: an allowance of 58 per entry passes every growth (58, 54, 1); 57 fails only the casts.
    assert run_cli(capsys, "check", BEFORE, "--budget", after_budget, "--skip", "1", "--tolerance", "58")[0] == 0
    code, _, err = run_cli(capsys, "check", BEFORE, "--budget", after_budget, "--skip", "1", "--tolerance", "57")
    assert code == 1 and re.findall(r"^FAILED (\w+):", err, re.M) == ["cast"]
    # A percentage of the budget: cast's budget is 2 (the int casts), 2900% of it is 58; fill's and
    # metadata's budgets are 0, so no percentage lets them grow.
    code, _, err = run_cli(capsys, "check", BEFORE, "--budget", after_budget, "--skip", "1", "--tolerance", "2900%")
    assert code == 1 and sorted(re.findall(r"^FAILED (\w+):", err, re.M)) == ["fill", "metadata"]
    code, _, err = run_cli(capsys, "check", BEFORE, "--budget", after_budget, "--skip", "1", "--tolerance", "2899%")
    assert sorted(re.findall(r"^FAILED (\w+):", err, re.M)) == ["cast", "fill", "metadata"]


def test_shrink_passes_with_a_note(tmp_path, capsys):
    before_budget = tmp_path / "before.toml"
    assert run(["budget", "write", str(BEFORE), "--skip", "1", "-o", str(before_budget)]) == 0
    code, _, err = run_cli(capsys, "check", AFTER, "--budget", before_budget, "--skip", "1")
    assert code == 0
    assert f"cast shrank -{GROWTH['cast']}/step" in err and "lock it in with traceview budget write" in err


def test_by_kernel_names_new_kernels(tmp_path, capsys):
    kernels = tmp_path / "kernels.toml"
    assert run(["budget", "write", str(AFTER), "--skip", "1", "--by", "kernel", "-o", str(kernels)]) == 0
    code, out, err = run_cli(capsys, "check", BEFORE, "--budget", kernels, "--skip", "1", "--format", "json")
    assert code == 1
    net: dict[str, float] = {}
    for finding in json.loads(out)["expectations"]:
        category = finding["category"].split(": ", 1)[0]
        net[category] = net.get(category, 0.0) + finding["actual"] - finding["expected"]
    # Per kernel name, growth minus shrink adds up to the category's change: +58 casts, +54 fills, +1 metadata;
    # elsewhere 0 (the MoE kernels that see fp32 logits before are other template instantiations, same count).
    assert {c: n for c, n in net.items() if n} == GROWTH
    assert "new: not in the budget" in out


def test_by_frame_needs_frames(tmp_path, capsys):
    code, _, err = run_cli(capsys, "budget", "write", AFTER, "--by", "frame", "-o", tmp_path / "f.toml")
    assert code == 2 and "has no Python frames" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f.toml").exists()
    stack = tmp_path / "frames.toml"
    assert run(["budget", "write", str(SAMPLES / "demo_stack_eager_after.pt.trace.json.gz"), "--by", "frame",
                "-o", str(stack)]) == 0
    code, _, err = run_cli(capsys, "check", SAMPLES / "demo_stack_eager_before.pt.trace.json.gz", "--budget", stack)
    grown = re.findall(r"^FAILED (\w+) @ (\S+\(\d+\): \w+): .*\+(\d+)/step", err, re.M)
    assert code == 1 and {c: 0 for c, _, _ in grown} == {c: 0 for c in GROWTH}
    assert sum(int(n) for c, _, n in grown if c == "fill") == GROWTH["fill"]


def test_assert_launch_budget(after_budget):
    assert_launch_budget(AFTER, after_budget, skip=1)
    assert_launch_budget(BEFORE, after_budget, skip=1, tolerance=58)
    with pytest.raises(AssertionError) as failed:
        assert_launch_budget(BEFORE, after_budget, skip=1, tolerance="5%")
    message = str(failed.value)
    assert "3 launch budget entries" in message
    for name, n in GROWTH.items():
        assert re.search(rf"^  {name}: \d+ -> \d+ per step \(\+{n}, ", message, re.M)


@pytest.mark.parametrize("text, why", [
    ("schema_version = 1\nby = 'category'\n", "needs [[budget]] tables"),
    ("schema_version = 1\nby = 'op'\n[[budget]]\ncategory = 'cast'\nper_step = 1\n", "by must be one of"),
    ("schema_version = 1\nby = 'category'\n[[budget]]\ncategory = 'cast'\nper_step = -1\n", "budget #1: per_step"),
    ("schema_version = 1\nby = 'category'\n[[budget]]\ncategory = 'cast'\nper_step = 1\nfoo = 2\n", "unknown key"),
    ("schema_version = 2\nby = 'category'\n", "schema_version must be 1"),
    ("by = [", "invalid TOML"),
])
def test_bad_budget_exit_2_one_line(tmp_path, capsys, text, why):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    code, out, err = run_cli(capsys, "check", AFTER, "--budget", bad, "-o", tmp_path / "out.json")
    assert code == 2 and why in err and str(bad) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists()


def test_bad_tolerance_and_tolerance_alone_exit_2(after_budget, capsys):
    assert run_cli(capsys, "check", AFTER, "--budget", after_budget, "--tolerance", "lots")[0] == 2
    code, _, err = run_cli(capsys, "check", AFTER, "--tolerance", "5%")
    assert code == 2 and "--tolerance applies to a --budget" in err


def _ci_commands() -> list[list[str]]:
    text = (REPO / "docs" / "ci.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    job = yaml.safe_load(block)["jobs"]["launch-budget"]
    lines = [line.strip() for step in job["steps"] for line in str(step.get("run", "")).splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("traceview ")]


def test_ci_doc_job_uses_real_commands_and_options():
    commands = _ci_commands()
    assert [c[1] for c in commands] == ["collect", "doctor", "check", "report"]
    assert "--budget" in commands[2] and "report.html" in commands[3]
    for module in COMMAND_MODULES.values():
        __import__(f"traceview.cli.{module}")
    root = typer.main.get_command(app)
    for words in commands:
        group, args = root, words[1:]
        ctx = click.Context(root, info_name="traceview")
        while isinstance(group, click.Group):  # collect demo, budget write: walk down to the command
            group, args = group.get_command(ctx, args[0]), args[1:]
            assert group is not None, words
        group.make_context(words[1], list(args))  # raises on an unknown option or a missing argument


@pytest.mark.parametrize("entry,message", [
    ('category = "castz"\nper_step = 2', "unknown category 'castz'; did you mean 'cast'?"),
    ('category = "cast"\nper_step = nan', "per_step must be a finite number >= 0, got nan"),
    ('category = "cast"\nper_step = inf', "per_step must be a finite number >= 0, got inf"),
])
def test_a_budget_entry_that_cannot_be_checked_is_refused(tmp_path, capsys, entry, message):
    # A misspelled category would pass as "shrank to 0" forever; inf could never grow; nan never compares.
    budget = tmp_path / "bad.toml"
    budget.write_text(f'schema_version = 1\nby = "category"\n\n[[budget]]\n{entry}\n')
    assert run(["check", str(AFTER), "--budget", str(budget)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_assert_launch_budget_refuses_a_misspelled_category_like_check_does(tmp_path):
    """Counted against the trace, 'castz' would read 0 launches: always 'shrank', never failing."""
    from traceview.errors import TraceviewError

    budget = tmp_path / "bad.toml"
    budget.write_text('schema_version = 1\nby = "category"\n\n[[budget]]\ncategory = "castz"\nper_step = 2\n')
    with pytest.raises(TraceviewError, match="unknown category 'castz'; did you mean 'cast'"):
        assert_launch_budget(AFTER, budget, skip=1)


def test_a_zero_entry_that_grows_is_grown_not_new(tmp_path, capsys):
    budget = tmp_path / "after.toml"
    assert run(["budget", "write", str(AFTER), "--skip", "1", "-o", str(budget)]) == 0
    code, out, err = run_cli(capsys, "check", BEFORE, "--budget", budget, "--skip", "1", "--format", "json")
    # "after" has fill = 0 and metadata = 0 written in the budget: growing them is growth, not a new entry.
    assert code == 1 and "new: not in the budget" not in out
    found = {f["category"]: f for f in json.loads(out)["expectations"]}
    assert (found["fill"]["expected"], found["fill"]["actual"], found["fill"]["unit"]) == (0.0, 54.0, None)
