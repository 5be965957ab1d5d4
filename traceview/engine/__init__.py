"""Engine: a trace file in, a queryable Perfetto trace processor out."""

from __future__ import annotations

import importlib

_EXPORTS = {"EngineConfig": "traceview.engine.config", "LoadStat": "traceview.engine.api",
            "Trace": "traceview.engine.api", "open_trace": "traceview.engine.api",
            "ShardedTrace": "traceview.engine.api", "open_sharded": "traceview.engine.api"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # imported on first use: see traceview/__init__.py
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'traceview.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
