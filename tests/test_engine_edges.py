"""Engine edge cases (issue 18): failed starts, the module cache's temporary files, closed
traces, which traps count as out of memory, and query failures that keep their cause."""

from __future__ import annotations

import ast
import errno
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import wasmtime
from conftest import write_trace
from test_engine import small_trace

from traceview.engine import EngineConfig, module_cache, open_trace, wasm_host
from traceview.engine import api as engine_api
from traceview.engine.backends import WasmBackend
from traceview.engine.formats import default_cache_dir
from traceview.engine.wasm_traps import (
    ABORTED,
    HeapRefusal,
    WasmTrap,
    is_out_of_memory,
    trap_reason,
)
from traceview.errors import EngineError, QueryError, TraceClosedError, TraceLoadError, Wasm32MemoryError

ENGINE = Path(wasm_host.__file__).parent
WASM_CACHE = default_cache_dir() / "wasm"


def watchdogs() -> int:
    return sum(t.name == "traceview-wasm-watchdog" for t in threading.enumerate())


# -- 1. a failed start leaves no watchdog thread behind ------------------------------------------

@pytest.mark.parametrize("step", ["_instantiate", "_start_rpc"])
def test_no_watchdog_thread_survives_a_failed_start(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    def fail(*args):
        raise wasmtime.WasmtimeError("incompatible import type for `env.emscripten_resize_heap`")

    if step == "_instantiate":  # before the watchdog exists
        monkeypatch.setattr(wasm_host, "_instantiate", fail)
    else:  # after it started: the module's constructors or rpc_init trap
        monkeypatch.setattr(wasm_host.WasmTraceProcessor, "_start_rpc", lambda self, exports: fail())
    before = watchdogs()
    for _ in range(3):
        with pytest.raises(EngineError, match="cannot start the wasm trace processor: incompatible import"):
            WasmBackend(False, WASM_CACHE)
    assert watchdogs() == before


def test_a_closed_processor_stops_its_watchdog() -> None:
    before = watchdogs()
    backend = WasmBackend(False, WASM_CACHE)
    assert watchdogs() == before + 1
    backend.close()
    assert watchdogs() == before


# -- 2. the compiled-module cache: a temporary file per writer, none left behind ------------------

@pytest.fixture
def tiny_wasm(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.wasm"
    path.write_bytes(wasmtime.wat2wasm('(module (func (export "f") (result i32) i32.const 7))'))
    return path


def _load(wasm: Path, cache: Path) -> wasmtime.Module:
    return module_cache.load_module(wasmtime.Engine(module_cache.engine_config(False, cache)), wasm, cache)


def test_threads_compiling_at_once_leave_one_whole_cache_file(tiny_wasm: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real_serialize = wasmtime.Module.serialize

    def slow_serialize(self) -> bytearray:
        time.sleep(0.05)  # every thread is between its temporary file's creation and its rename
        return real_serialize(self)

    monkeypatch.setattr(wasmtime.Module, "serialize", slow_serialize)
    cache = tmp_path / "cache"
    start = threading.Barrier(8)
    modules, errors = [], []

    def compile_one() -> None:
        start.wait()
        try:
            modules.append(_load(tiny_wasm, cache))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=compile_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(modules) == 8
    files = list(cache.iterdir())
    assert [p.suffix for p in files] == [".cwasm"]  # one artefact, no temporary file
    engine = wasmtime.Engine(module_cache.engine_config(False, cache))
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)  # the config has the watchdog's epoch interruption on
    module = wasmtime.Module.deserialize_file(engine, str(files[0]))  # whole, not interleaved
    assert wasmtime.Instance(store, module, []).exports(store)["f"](store) == 7


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     wasmtime.WasmtimeError("failed to serialize module")])
def test_a_failed_cache_write_leaves_no_file_and_costs_only_the_cache(
        tiny_wasm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    def broken(self):
        raise failure

    monkeypatch.setattr(wasmtime.Module, "serialize", broken)
    cache = tmp_path / "cache"
    assert _load(tiny_wasm, cache) is not None  # the compiled module still serves this load
    assert list(cache.iterdir()) == []


def test_a_failed_rename_leaves_no_temporary_file(tiny_wasm: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(module_cache.os, "replace", refuse)
    cache = tmp_path / "cache"
    assert _load(tiny_wasm, cache) is not None
    assert list(cache.iterdir()) == []


# -- 3. a closed trace ---------------------------------------------------------------------------

def test_querying_a_closed_trace_says_so(tmp_path: Path) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    trace = open_trace(path, EngineConfig(wasm_only=True))
    trace.close()
    trace.close()  # twice is fine
    with pytest.raises(TraceClosedError) as info:
        trace.query("select 1")
    assert str(info.value) == f"{path}: this trace was closed; open it again to query it"


# -- 4. which traps are out of memory ------------------------------------------------------------

CHECK_OOM = "[1120.562] ... PERFETTO_CHECK(res) (errno: 48, Out of memory)"
REFUSED = HeapRefusal(current=(4 << 30) - (1 << 20), requested=(4 << 30) + (64 << 20), limit=(4 << 30) - 65536)


@pytest.mark.parametrize("message, logged, refusal, expected", [
    # wasmtime's own trap messages: bugs or corrupt input, however much "memory" they mention.
    ("out of bounds memory access", [], None, False),
    ("out of bounds memory access", [], REFUSED, False),  # even after a refused growth
    ("memory fault at wasm address 0x186a0 in linear memory of size 0x10000", [], None, False),
    ("call stack exhausted", [], None, False),
    ("integer divide by zero", [], REFUSED, False),
    ("indirect call type mismatch", [], None, False),
    ("trace processor assertion failed: it != end", [], None, False),
    ("wasm `unreachable` instruction executed", ["Parsing error: unexpected token"], None, False),
    ("wasm `unreachable` instruction executed", [], None, False),  # a CHECK, nothing says memory
    # The processor's own words for a failed allocation.
    ("wasm `unreachable` instruction executed", [CHECK_OOM], None, True),
    (ABORTED, ["libc++abi: terminating due to uncaught exception of type std::bad_alloc"], None, True),
    # A silent stop right after the host refused to grow the heap.
    ("wasm `unreachable` instruction executed", [], REFUSED, True),
    (ABORTED, [], REFUSED, True),
    ("allocation size too large", [], None, True),
])
def test_out_of_memory_is_told_from_other_traps(message: str, logged: list[str], refusal: HeapRefusal | None,
                                                expected: bool) -> None:
    assert is_out_of_memory(message, logged, refusal) is expected


_TRAP_MESSAGES = """
import json, wasmtime
from traceview.engine.wasm_traps import wasmtime_message
engine = wasmtime.Engine()
store = wasmtime.Store(engine)
wat = ('(module (memory 1) (func (export "oob") (drop (i32.load (i32.const 100000))))'
       ' (func (export "stop") unreachable))')
exports = wasmtime.Instance(store, wasmtime.Module(engine, wat), []).exports(store)
messages = []
for name in ("oob", "stop"):
    try:
        exports[name](store)
    except wasmtime.Trap as trap:
        messages.append(wasmtime_message(trap))
print(json.dumps(messages))
"""


def test_wasmtime_message_is_the_trap_not_the_backtrace_header() -> None:
    # wasmtime turns these traps into exceptions from its own SIGSEGV/SIGILL handlers; inside pytest,
    # whose faulthandler takes those signals too, a real trap can kill the whole run: a fresh interpreter.
    done = subprocess.run([sys.executable, "-c", _TRAP_MESSAGES], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    messages = json.loads(done.stdout)
    assert messages == ["out of bounds memory access", "wasm `unreachable` instruction executed"]
    assert not is_out_of_memory(messages[0], [], REFUSED)


def test_out_of_memory_reasons_name_the_build_and_the_heap() -> None:
    assert trap_reason("out of bounds memory access", []) == "trace processor trapped: out of bounds memory access"
    assert trap_reason(ABORTED, [], REFUSED) == (
        "trace processor ran out of wasm memory: heap could not grow from 4.00 GiB to 4.06 GiB, "
        "over the build's 4.00 GiB limit (trace processor aborted)")
    refused64 = HeapRefusal(60 << 30, 72 << 30, 16 << 40, "the host refused (failed to grow memory)")
    assert trap_reason("wasm `unreachable` instruction executed", [CHECK_OOM], refused64, memory64=True) == (
        "trace processor ran out of memory on the memory64 build: heap could not grow from 60.00 GiB "
        f"to 72.00 GiB: the host refused (failed to grow memory) ({CHECK_OOM})")


class _FakeWasm:
    """What WasmBackend._guard reads of its backend."""

    _trap = WasmTrap

    def __init__(self, memory64: bool) -> None:
        self.memory64 = memory64


@pytest.mark.parametrize("memory64, out_of_memory, expected", [
    (False, True, Wasm32MemoryError),  # open_trace retries these on memory64
    (True, True, TraceLoadError),  # already memory64: nothing bigger to retry on
    (False, False, TraceLoadError),
])
def test_only_wasm32_running_out_of_memory_asks_for_memory64(memory64: bool, out_of_memory: bool,
                                                             expected: type) -> None:
    def trapping():
        raise WasmTrap("trace processor ran out of ...", out_of_memory)

    with pytest.raises(TraceLoadError) as info:
        WasmBackend._guard(_FakeWasm(memory64), TraceLoadError, trapping)
    assert type(info.value) is expected


def test_open_trace_retries_on_memory64_only_after_wasm32_ran_out(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    tried = []

    def load(file, config, on_progress, failure):
        tried.append(config.memory64)
        raise failure

    cases = [(Wasm32MemoryError(None, "trace processor ran out of wasm memory (...)"), [None, True]),
             (TraceLoadError(None, "trace processor ran out of memory on the memory64 build (...)"), [None]),
             (TraceLoadError(None, "trace processor trapped: out of bounds memory access"), [None])]
    for failure, expected in cases:
        tried.clear()
        monkeypatch.setattr(engine_api, "_load", lambda f, c, p: load(f, c, p, failure))
        with pytest.raises(TraceLoadError):
            open_trace(path)
        assert tried == expected, failure


# -- 5. query failures keep their cause ----------------------------------------------------------

def test_a_bad_query_while_loading_reads_as_the_query_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    monkeypatch.setattr(engine_api, "_LOSS_SQL", "select nope from stats")
    with pytest.raises(QueryError) as info:
        open_trace(path, EngineConfig(wasm_only=True))
    assert str(info.value) == f"{path}: no such column: nope"


def test_a_bad_query_on_a_good_trace_gives_the_processor_message(tmp_path: Path) -> None:
    path = write_trace(tmp_path / "t.json", small_trace().events)
    with open_trace(path, EngineConfig(wasm_only=True)) as trace:
        with pytest.raises(QueryError) as info:
            trace.query("select nope from no_such_table")
        assert str(info.value) == f"{path}: no such table: no_such_table"
        assert trace.query("select count(*) as n from slice").n.iloc[0] == 7  # still usable


def test_a_broken_rpc_during_a_query_is_a_query_error() -> None:
    def broken():
        raise ConnectionError("trace processor sent an incomplete reply")

    with pytest.raises(QueryError, match="trace processor RPC failed: trace processor sent an incomplete reply"):
        WasmBackend._guard(_FakeWasm(False), QueryError, broken)


def test_a_truncated_json_file_is_a_parse_error(tmp_path: Path) -> None:
    data = write_trace(tmp_path / "t.json", small_trace().events).read_bytes()
    path = tmp_path / "truncated.json"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceLoadError) as info:
        open_trace(path, EngineConfig(wasm_only=True))
    assert type(info.value) is TraceLoadError and "truncated or malformed" in str(info.value)


def test_a_parse_error_the_processor_reports_at_the_end_is_raised() -> None:
    # The processor accepts each piece of a truncated JSON and only says so when the data ends.
    backend = WasmBackend(False, WASM_CACHE)
    try:
        with pytest.raises(TraceLoadError, match="JSON trace file is incomplete"):
            backend.load([b'{"traceEvents": [{"ph": "X", "name": "a", "ts": 1'])
    finally:
        backend.close()


# -- 6. the wasm host split into modules of one purpose --------------------------------------------

@pytest.mark.parametrize("name", ["wasm_host.py", "wasm_imports.py", "wasm_traps.py"])
def test_wasm_host_modules_stay_small(name: str) -> None:
    source = (ENGINE / name).read_text()
    assert len(source.splitlines()) <= 300
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno - node.lineno + 1 <= 60, f"{name}: {node.name}"

