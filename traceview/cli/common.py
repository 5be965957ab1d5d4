"""Opening traces from commands: engine config from flags, progress bar on stderr."""

from __future__ import annotations

from pathlib import Path

from traceview.cli.render import load_progress
from traceview.engine import EngineConfig, Trace, open_trace
from traceview.cache import cached_analyze, wasm_dir
from traceview.model.counts import LaunchCounts


def engine_config(tp_bin: str | None) -> EngineConfig:
    return EngineConfig(tp_bin=tp_bin, cache_dir=wasm_dir())


def load(path: Path, tp_bin: str | None, quiet: bool) -> Trace:
    """Opens one trace with a progress bar (stderr, TTY only, after ~1 s)."""
    with load_progress(quiet, f"loading {path.name}") as on_progress:
        return open_trace(path, engine_config(tp_bin), on_progress)


def analyze_with_progress(path: Path, step_marker: str | None, rules: Path | None, tp_bin: str | None,
                          quiet: bool, no_cache: bool = False) -> LaunchCounts:
    """``cache.cached_analyze`` (``model.counts.analyze`` behind the result cache) with the CLI's
    engine config and progress bar."""
    with load_progress(quiet, f"loading {path.name}") as on_progress:
        return cached_analyze(path, step_marker, rules, engine_config(tp_bin), on_progress, use_cache=not no_cache)
