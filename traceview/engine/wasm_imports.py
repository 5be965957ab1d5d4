"""The host side of the wasm trace processor: the ``env`` and WASI functions it imports.

It is an emscripten build. It only needs a clock, stdio and heap growth; every
file-system syscall answers ``ENOSYS`` because we never hand it a path. Each
import is one method of ``HostFunctions``; ``build_imports`` types them from the
module, so the same methods serve the wasm32 and the memory64 builds, whose
pointer arguments differ (i32 vs i64).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from typing import Callable

import wasmtime

from traceview.engine.wasm_traps import ABORTED, HeapRefusal, WasmTrap

ENOSYS = 52
EBADF = 8
ESPIPE = 70
WASM_PAGE = 65536
_LOG_LINES_KEPT = 50  # the tail of the processor's stderr: the reason is at the end


@dataclass
class HostState:
    """What the imports need to reach: memory (set after instantiation), logs, heap facts."""

    memory: wasmtime.Memory | None = None
    stderr: list[str] = field(default_factory=list)
    heap_max: int = 0
    is64: bool = False
    # The last heap growth refused: evidence that a later abort was out of memory.
    heap_refusal: HeapRefusal | None = None


class HostFunctions:
    """One method per import the processor calls by name (the ``handlers`` table)."""

    def __init__(self, store: wasmtime.Store, state: HostState) -> None:
        self.store = store
        self.state = state

    # -- linear memory ------------------------------------------------------------------------
    def _mem(self) -> wasmtime.Memory:
        assert self.state.memory is not None, "an import ran before instantiation finished"
        return self.state.memory

    def _put(self, ptr: int, data: bytes) -> None:
        self._mem().write(self.store, data, ptr)

    def _ptr_size(self) -> int:
        return 8 if self.state.is64 else 4

    def _read_int(self, ptr: int, size: int, signed: bool = False) -> int:
        return int.from_bytes(self._mem().read(self.store, ptr, ptr + size), "little", signed=signed)

    def c_string(self, ptr: int) -> str:
        mem = self.state.memory
        if mem is None or ptr == 0:
            return ""
        end = ptr
        size = mem.data_len(self.store)
        while end < size and mem.read(self.store, end, end + 1) != b"\0":
            end += 1
        return mem.read(self.store, ptr, end).decode("utf-8", "replace")

    # -- WASI stdio and environment -----------------------------------------------------------
    def fd_write(self, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
        size = self._ptr_size()
        chunks = []
        for i in range(iovs_len):
            base = self._read_int(iovs + i * 2 * size, size)
            length = self._read_int(iovs + i * 2 * size + size, size)
            chunks.append(self._mem().read(self.store, base, base + length))
        text = b"".join(chunks).decode("utf-8", "replace")
        if fd in (1, 2) and text.strip():
            self.state.stderr.append(text.rstrip())
            del self.state.stderr[:-_LOG_LINES_KEPT]
        self._put(nwritten, sum(map(len, chunks)).to_bytes(size, "little"))
        return 0

    def fd_fdstat_get(self, fd: int, out: int) -> int:
        if fd > 2:
            return EBADF
        self._put(out, bytes([2]) + b"\0" * 23)  # character device, no flags/rights
        return 0

    def environ_sizes_get(self, count: int, size: int) -> int:
        self._put(count, b"\0" * self._ptr_size())
        self._put(size, b"\0" * self._ptr_size())
        return 0

    def getcwd(self, buf: int, size: int) -> int:
        self._put(buf, b"/\0")
        return 2

    # -- clocks and time zones (traces are analysed in UTC) -----------------------------------
    def clock_time_get(self, clock_id: int, precision: int, out: int) -> int:
        ns = time.time_ns() if clock_id == 0 else time.monotonic_ns()
        self._put(out, ns.to_bytes(8, "little"))
        return 0

    def tzset(self, timezone: int, daylight: int, std_name: int, dst_name: int) -> None:
        self._put(timezone, b"\0" * 4)
        self._put(daylight, b"\0" * 4)
        self._put(std_name, b"UTC\0")
        self._put(dst_name, b"UTC\0")

    def gmtime(self, t: int, tm_ptr: int) -> None:
        tm = time.gmtime(int(t))
        fields = [tm.tm_sec, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon - 1,
                  tm.tm_year - 1900, (tm.tm_wday + 1) % 7, tm.tm_yday - 1, 0]
        self._put(tm_ptr, b"".join(int(v).to_bytes(4, "little", signed=True) for v in fields))

    def timegm(self, tm_ptr: int) -> int:
        v = [self._read_int(tm_ptr + 4 * i, 4, signed=True) for i in range(6)]
        return calendar.timegm((v[5] + 1900, v[4] + 1, v[3], v[2], v[1], v[0], 0, 0, 0))

    # -- heap ---------------------------------------------------------------------------------
    def resize_heap(self, requested: int) -> int:
        """emscripten_resize_heap: 1 when the heap now holds ``requested`` bytes, 0 when refused."""
        memory = self._mem()
        requested &= (1 << 64) - 1  # memory64's size_t is i64; wasm32's arrives unsigned already
        old = memory.data_len(self.store)
        if requested > self.state.heap_max:
            self.state.heap_refusal = HeapRefusal(old, requested, self.state.heap_max)
            return 0
        # Grow by at least 20 % (capped at 256 MiB) like emscripten, so
        # many small grows do not each pay a call.
        target = max(requested, min(old + old // 5, old + (256 << 20)))
        target = min(target, self.state.heap_max)
        pages = (target - old + WASM_PAGE - 1) // WASM_PAGE
        try:
            memory.grow(self.store, pages)
        except wasmtime.WasmtimeError as err:
            why = str(err).strip().splitlines()[0] if str(err).strip() else "refused"
            self.state.heap_refusal = HeapRefusal(old, target, self.state.heap_max, f"the host refused ({why})")
            return 0
        return 1

    # -- the processor giving up ----------------------------------------------------------------
    def abort(self, *_: int) -> None:
        raise WasmTrap(ABORTED)

    def assert_fail(self, cond: int, file: int, line: int, func: int) -> None:
        raise WasmTrap(f"trace processor assertion failed: {self.c_string(cond)}")

    def emscripten_err(self, ptr: int) -> None:
        self.state.stderr.append(self.c_string(ptr))

    def handlers(self) -> dict[str, Callable]:
        """Import name -> handler; imports not named here answer ENOSYS (see ``build_imports``)."""
        state = self.state
        return {
            "emscripten_get_now": lambda: time.perf_counter() * 1000.0,
            "emscripten_date_now": lambda: time.time() * 1000.0,
            "emscripten_get_heap_max": lambda: state.heap_max,
            "emscripten_resize_heap": self.resize_heap,
            "emscripten_err": self.emscripten_err,
            "__assert_fail": self.assert_fail,
            "_abort_js": self.abort,
            "_tzset_js": self.tzset,
            "_gmtime_js": self.gmtime,
            "_localtime_js": self.gmtime,  # traces are analysed in UTC
            "_timegm_js": self.timegm,
            "__syscall_getcwd": self.getcwd,
            "fd_write": self.fd_write,
            "fd_read": lambda fd, iovs, n, nread: EBADF,
            "fd_close": lambda fd: 0,
            "fd_sync": lambda fd: 0,
            "fd_seek": lambda fd, off, whence, out: ESPIPE,
            "fd_fdstat_get": self.fd_fdstat_get,
            "clock_time_get": self.clock_time_get,
            "environ_sizes_get": self.environ_sizes_get,
            "environ_get": lambda env, buf: 0,
        }


def build_imports(store: wasmtime.Store, module: wasmtime.Module, state: HostState) -> list[wasmtime.Func]:
    """One host function per import of ``module``, in its order, typed from the module itself."""
    handlers = HostFunctions(store, state).handlers()
    result = []
    for imp in module.imports:
        ftype = imp.type
        assert isinstance(ftype, wasmtime.FuncType), f"unexpected import {imp.module}.{imp.name}"
        handler = handlers.get(imp.name)
        if handler is None:
            # File-system and mmap syscalls: the processor never opens files.
            handler = (lambda *a: -ENOSYS) if ftype.results else (lambda *a: None)
        result.append(wasmtime.Func(store, ftype, typed(handler, ftype)))
    return result


def typed(handler: Callable, ftype: wasmtime.FuncType) -> Callable:
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
        return lambda *a: wrap_signed(int(handler(*a)), 32)
    if kind == "i64":
        return lambda *a: wrap_signed(int(handler(*a)), 64)
    return handler


def wrap_signed(value: int, bits: int) -> int:
    """``value`` as the signed ``bits``-wide integer wasmtime-py expects for an i32/i64 result."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value
