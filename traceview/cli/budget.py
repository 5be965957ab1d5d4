"""``traceview budget write``: a run's steady-state launches per step as a TOML budget for ``check --budget``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from traceview.analyses.budget import KEYS, budget_toml, launches_by, rules_digest
from traceview.cli.app import app
from traceview.cli.common import analyze_run, engine_config
from traceview.cli.formats import BY_EXTENSION
from traceview.cli.options import NoCacheOpt, QuietOpt, RulesOpt, SkipOpt, StepMarkerOpt, TpBinOpt
from traceview.cli.render import write_output

budget_app = typer.Typer(name="budget", help="Launch budgets: write a run's launches per step, for "
                                             "traceview check --budget.", no_args_is_help=True)
app.add_typer(budget_app)


def header(path: Path, counts, by: str, skip: int, rules: Path | None, output: Path | None) -> list[str]:
    """The comments that say where the budget came from (``load_budget`` reads back ``rules:`` and ``skip:``)."""
    name = output.name if output is not None else "launches.toml"
    ranks = f", {len(counts)} ranks averaged" if len(counts) > 1 else ""
    one = counts[0]
    return [f"traceview launch budget: launches per step by {by} (mean over the steady steps{ranks})",
            f"trace: {path}",
            f"step marker: {one.step_marker} ({one.step_regex or 'whole trace'})",
            f"skip: {skip} ({len(one.steady_steps(skip))} steady steps)",
            f"rules: {rules_digest(rules)} ({rules or 'packaged categories.toml'})",
            f"check: traceview check TRACE --budget {name} --skip {skip} [--tolerance N|P%]",
            f"update: traceview budget write TRACE --by {by} --skip {skip} -o {name}"]


@budget_app.command("write")
def write_command(
    trace: Annotated[Path, typer.Argument(metavar="TRACE", show_default=False, help=(
        "A trace file, or a directory of per-rank traces (averaged). "
        "Example: sample_traces/demo_eager_after.pt.trace.json.gz"))],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the TOML budget here (atomically) instead of stdout. "
                               "Example: -o launches.toml")] = None,
    by: Annotated[str, typer.Option("--by", help="One entry per category, per kernel name, or per launching "
                                                 "Python frame (needs with_stack). Example: --by kernel")] = "category",
    skip: SkipOpt = 0,
    step_marker: StepMarkerOpt = None,
    rules: RulesOpt = None,
    tp_bin: TpBinOpt = None,
    quiet: QuietOpt = False,
    no_cache: NoCacheOpt = False,
) -> int:
    """Write the steady-state launches per step of TRACE as a TOML budget.

    `traceview check TRACE --budget FILE` then fails (exit 1) when an entry grows beyond --tolerance.

    Examples:
      traceview budget write sample_traces/demo_eager_after.pt.trace.json.gz --skip 1 -o launches.toml
      traceview budget write after.pt.trace.json.gz --by kernel -o kernels.toml
      traceview budget write stack.pt.trace.json.gz --by frame -o frames.toml
    """
    if by not in KEYS:
        raise typer.BadParameter(f"{by!r} is not one of {', '.join(KEYS)}", param_hint="--by")
    if output is not None and output.suffix.lower() in BY_EXTENSION:
        raise typer.BadParameter(f"budget write writes TOML, not {BY_EXTENSION[output.suffix.lower()].value} "
                                 f"({output.suffix}): name it .toml", param_hint="--output")
    counts = analyze_run(trace, step_marker, rules, engine_config(tp_bin), quiet, no_cache)
    table = launches_by(counts, by, skip)
    write_output(budget_toml(table, by, header(trace, counts, by, skip, rules, output)), output)
    return 0
