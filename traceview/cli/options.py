"""Options shared by several commands, declared once so a flag means the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

TraceArg = Annotated[Path, typer.Argument(help="Trace file: Kineto/Chrome JSON or Perfetto protobuf, optionally .gz. "
                                               "Example: sample_traces/demo_eager_before.pt.trace.json.gz",
                                          show_default=False)]
TpBinOpt = Annotated[Optional[str], typer.Option("--tp-bin", envvar="TRACEVIEW_TP_BIN",
                                                 help="Native trace_processor_shell to use instead of the bundled "
                                                      "wasm one. Example: --tp-bin ~/bin/trace_processor_shell")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", envvar="TRACEVIEW_STRICT",
    help="Exit 2 when a GPU event or launch call of the trace does not reach the processor (a warning "
         "otherwise). Example: --strict, or TRACEVIEW_STRICT=1 in CI")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar on stderr.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o",
                                                   help="Write the result here (atomically) instead of stdout. "
                                                        "Example: -o counts.json")]

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
    "--jobs", "-j", min=1, help="Worker processes for several traces, or the cores one trace may use "
                                "(default: one per core). Example: -j 4")]
def _known_executor(value: str) -> str:
    from traceview.batch import EXECUTORS  # here, not at import: batch pulls in the engine

    if value not in EXECUTORS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(EXECUTORS)}")
    return value


ExecutorOpt = Annotated[str, typer.Option(
    "--executor", callback=_known_executor,
    help="process (a local pool) or ray (one task per trace; pip install '.[ray]' from the checkout). "
         "Example: --executor ray --address auto")]
FramesFromOpt = Annotated[Optional[list[str]], typer.Option(
    "--frames-from", show_default=False,
    help="A launch's source frame is its innermost Python frame under one of these path prefixes (repeatable), "
         "instead of the packaged rule (not the standard library, not an installed package: rules/frames.toml). "
         "Example: --frames-from vllm/model_executor/")]
AddressOpt = Annotated[Optional[str], typer.Option(
    "--address", help="Ray cluster address for --executor ray (default: start a local instance). Example: auto")]
