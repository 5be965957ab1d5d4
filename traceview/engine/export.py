"""A trace written out the way the processor is fed it: for the Perfetto UI (``traceview open``).

The UI imports JSON with the same processor, so the original file would lose there
the events traceview keeps (epoch timestamps read through a double, overlapping
kernels dropped, threads merged). The canonical JSON has exact times relative to a
base, overlap lanes beside their stream or thread, and ids kept apart
(``kineto/pipeline.py``). Perfetto protobuf files need none of it and are used as they are.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from traceview.engine.api import _canonical
from traceview.engine.config import EngineConfig
from traceview.engine.formats import ProgressFn, default_cache_dir, inspect_file
from traceview.errors import TraceLoadError


def canonical_copy(path: Path, directory: Path, config: EngineConfig | None = None,
                   on_progress: ProgressFn | None = None) -> Path:
    """Writes ``path`` as canonical JSON into ``directory`` and returns the new file; a file that is
    fed to the processor as it is (Perfetto protobuf) is returned unchanged. Nothing is left half
    written: the copy appears under its name once complete."""
    config = replace(config or EngineConfig(cache_dir=default_cache_dir() / "wasm"), lean=False, shards=1)
    file = inspect_file(Path(path))
    try:
        canonical = _canonical(file, config, on_progress)
    except TraceLoadError as err:
        raise TraceLoadError(file.path, err.reason) from None
    if canonical is None:
        return file.path
    out = directory / f"{file.path.name.split('.')[0]}.traceview.json"
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as fh:
        for chunk in canonical.chunks():
            fh.write(chunk)
    partial.replace(out)
    return out
