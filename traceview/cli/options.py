"""Options shared by several commands, declared once so a flag means the same everywhere."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

TraceArg = Annotated[Path, typer.Argument(help="Trace file: Kineto/Chrome JSON or Perfetto protobuf, optionally .gz. "
                                               "Example: sample_traces/demo_eager_before.pt.trace.json.gz",
                                          show_default=False)]
TpBinOpt = Annotated[Optional[str], typer.Option("--tp-bin", envvar="TRACEVIEW_TP_BIN",
                                                 help="Native trace_processor_shell to use instead of the bundled "
                                                      "wasm one. Example: --tp-bin ~/bin/trace_processor_shell")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar on stderr.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o",
                                                   help="Write the result here (atomically) instead of stdout. "
                                                        "Example: -o counts.json")]


class Format(str, Enum):
    """Output formats; ``table`` is rich text for a terminal, the rest are plain text."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    junit = "junit"


def format_option(allowed: tuple[str, ...], default: str = "table"):
    """A ``--format`` option limited to the formats a command supports."""
    return typer.Option("--format", "-f", help=f"Output format: {'|'.join(allowed)}.", case_sensitive=False,
                        show_default=True)
StepMarkerOpt = Annotated[Optional[str], typer.Option(
    "--step-marker", help="Regex for the per-step annotation, overriding the packaged markers. "
                          "Example: --step-marker '^execute_model$'")]
RulesOpt = Annotated[Optional[Path], typer.Option(
    "--rules", help="Category rules TOML replacing the packaged traceview/rules/categories.toml. "
                    "Example: --rules my_categories.toml")]
SkipOpt = Annotated[int, typer.Option("--skip", min=0, help="Warm-up steps to drop before averaging. Example: --skip 2")]
NoCacheOpt = Annotated[bool, typer.Option(
    "--no-cache", help="Count from the trace even if the same file, rules and step marker were counted before "
                       "(the result cache lives in $TRACEVIEW_CACHE_DIR or ~/.cache/traceview; see `traceview cache`).")]
JobsOpt = Annotated[Optional[int], typer.Option(
    "--jobs", "-j", min=1, help="Worker processes for several traces (default: one per core). Example: -j 4")]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help="process (a local pool) or ray (one task per trace; pip install 'traceview[ray]'). "
                       "Example: --executor ray --address auto")]
AddressOpt = Annotated[Optional[str], typer.Option(
    "--address", help="Ray cluster address for --executor ray (default: start a local instance). Example: auto")]
