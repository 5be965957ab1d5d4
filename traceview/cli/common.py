"""Opening traces from commands: engine config from flags, progress bar on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from traceview.batch import analyze_ranks
from traceview.cache import cached_analyze, wasm_dir
from traceview.cli.render import load_progress
from traceview.engine.config import EngineConfig, processor_ready
from traceview.model.counts import LaunchCounts

if TYPE_CHECKING:
    from traceview.engine import Trace


def engine_config(tp_bin: str | None, strict: bool = False) -> EngineConfig:
    """The engine settings a command's --tp-bin and --strict flags ask for."""
    return EngineConfig(tp_bin=tp_bin, cache_dir=wasm_dir(), strict=strict)


def _loading(path: Path, config: EngineConfig) -> str:
    """The progress bar's label; it says when this load also compiles the trace processor."""
    first_run = "" if processor_ready(config) else " (and compiling the trace processor: once, ~20 s)"
    return f"loading {path.name}{first_run}"


def load(path: Path, engine: EngineConfig, quiet: bool) -> Trace:
    """Opens one trace with a progress bar (stderr, TTY only, after ~1 s)."""
    from traceview.engine.api import open_trace  # the loaders: imported once a trace is opened

    with load_progress(quiet, _loading(path, engine)) as on_progress:
        return open_trace(path, engine, on_progress)


def analyze_with_progress(path: Path, step_marker: str | None, rules: Path | None, engine: EngineConfig,
                          quiet: bool, no_cache: bool = False, frames_from: list[str] | None = None) -> LaunchCounts:
    """``cache.cached_analyze`` (``model.counts.analyze`` behind the result cache) with the CLI's
    engine config and progress bar."""
    with load_progress(quiet, _loading(path, engine)) as on_progress:
        return cached_analyze(path, step_marker, rules, engine, on_progress, use_cache=not no_cache,
                              frames_from=frames_from)


def analyze_run(path: Path, step_marker: str | None, rules: Path | None, engine: EngineConfig,
                quiet: bool, no_cache: bool = False, frames_from: list[str] | None = None) -> list[LaunchCounts]:
    """``batch.analyze_ranks`` (a trace, or each rank's trace of a directory) with a progress bar per file."""
    return analyze_ranks(path, step_marker, rules, engine, lambda file: load_progress(quiet, _loading(file, engine)),
                         use_cache=not no_cache, frames_from=frames_from)
