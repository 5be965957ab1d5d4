"""Trace processor backends and the one place that picks between them.

Order (``select_backend``): an explicit binary (``--tp-bin`` /
``TRACEVIEW_TP_BIN``), then ``trace_processor_shell`` on PATH, then the
WebAssembly trace processor run in-process: the offline default. Nothing here
ever downloads a binary.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable, Protocol

import pandas as pd
from perfetto.common.exceptions import PerfettoException
from perfetto.trace_processor.platform import PlatformDelegate
from perfetto.trace_processor.protos import ProtoFactory
from perfetto.trace_processor.rpc import TraceProcessorRpc

from traceview.engine.config import (
    MEMORY64_THRESHOLD_BYTES,
    SHELL_NAME,
    EngineConfig,
    bundled_ui_dir,
    processor_ready,
    resolve_shell,
    wasm_build,
)
from traceview.engine.results import query_result_to_frame
from traceview.errors import EngineError, QueryError, TraceLoadError, TraceviewError, Wasm32MemoryError


def processor_reason(text: str | bytes) -> str:
    """The processor's error as one line: its last non-empty line is the reason
    (earlier lines are a 'Traceback' header and the offending SQL). protobuf
    hands over bytes when the message quotes invalid UTF-8 from the trace."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown trace processor error"


class Backend(Protocol):
    """What the engine needs from a trace processor."""

    name: str
    version: str

    def load(self, chunks: Iterable[bytes]) -> None: ...

    def query(self, sql: str) -> pd.DataFrame: ...

    def close(self) -> None: ...


class _WasmTransport:
    """The byte-stream transport ``TraceProcessorRpc`` expects, over the wasm host."""

    def __init__(self, host) -> None:
        self.host = host
        self._pending = bytearray()

    def send(self, data: bytes) -> None:
        for reply in self.host.send(data):
            self._pending += reply

    def read(self, n: int) -> bytes:
        if len(self._pending) < n:
            raise ConnectionError("trace processor sent an incomplete reply")
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    def close(self) -> None:
        self.host.close()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# TraceProcessorRpcStream{msg: TraceProcessorRpc{request (2) = TPM_APPEND_TRACE_DATA (1),
# append_trace_data (101) = chunk}}, framed by hand: building it through the protobuf
# message copies every trace byte twice more (1.6 s per GB).
_APPEND_HEAD = bytes([0x10, 0x01]) + _varint((101 << 3) | 2)


def append_request(chunk: bytes) -> bytes:
    """The serialized TPM_APPEND_TRACE_DATA request for ``chunk`` (byte-identical to protobuf's)."""
    inner_len = len(_APPEND_HEAD) + len(_varint(len(chunk))) + len(chunk)
    return b"".join((b"\x0a", _varint(inner_len), _APPEND_HEAD, _varint(len(chunk)), chunk))


class _RpcClient(TraceProcessorRpc):
    """perfetto's RPC client plus the two load requests it leaves out."""

    def parse(self, chunk: bytes):
        self.transport.send(append_request(chunk))
        return self._reply().append_result

    def notify_eof(self):
        stream = self.protos.TraceProcessorRpcStream()
        stream.msg.add().request = self.protos.TraceProcessorRpc.TPM_FINALIZE_TRACE_DATA
        self.transport.send(stream.SerializeToString())
        return self._reply()

    def _reply(self):
        message = self.protos.TraceProcessorRpc()
        message.ParseFromString(self._read_payload())
        self._check_envelope(message)
        return message


class WasmBackend:
    """Perfetto's wasm trace processor, in-process under wasmtime."""

    name = "wasm"

    def __init__(self, memory64: bool, cache_dir: Path | None) -> None:
        from traceview.engine.wasm_host import WasmTraceProcessor
        from traceview.engine.wasm_traps import WasmTrap

        self._trap = WasmTrap
        ui = bundled_ui_dir()
        self.version = ui.name.split("-")[0]
        self.memory64 = memory64
        wasm = ui / ("trace_processor_memory64.wasm" if memory64 else "trace_processor.wasm")
        self.name = "wasm64" if memory64 else "wasm"
        try:
            self._host = WasmTraceProcessor(wasm, memory64, cache_dir)
        except Exception as err:  # wasmtime compile/instantiate failure
            raise EngineError(wasm, f"cannot start the wasm trace processor: {str(err).splitlines()[0]}") from None
        try:
            self._rpc = _RpcClient(_WasmTransport(self._host), ProtoFactory(PlatformDelegate()))
        except BaseException:
            self._host.close()
            raise

    def load(self, chunks: Iterable[bytes]) -> None:
        self._host.loading = True  # loading calls run on a CPU budget; queries do not
        try:
            for chunk in chunks:
                result = self._guard(TraceLoadError, self._rpc.parse, chunk)
                if result.error:
                    raise TraceLoadError(None, processor_reason(result.error))
            # The processor reports some parse failures only here (e.g. "JSON trace file is incomplete").
            finalized = self._guard(TraceLoadError, self._rpc.notify_eof).finalize_data_result
            if finalized.error:
                raise TraceLoadError(None, processor_reason(finalized.error))
        finally:
            self._host.loading = False

    def query(self, sql: str) -> pd.DataFrame:
        result = self._guard(QueryError, self._rpc.execute_query, sql)
        if result.error:
            raise QueryError(None, processor_reason(result.error))
        return query_result_to_frame(result)

    def _guard(self, failure: type[TraceviewError], fn: Callable, *args):
        """Runs an RPC; a trap or a broken reply raises ``failure`` (TraceLoadError while loading,
        QueryError for a query), except wasm32 running out of heap: Wasm32MemoryError, which
        open_trace retries on memory64."""
        try:
            return fn(*args)
        except self._trap as trap:
            if trap.out_of_memory and not self.memory64:
                raise Wasm32MemoryError(None, str(trap)) from None
            raise failure(None, str(trap)) from None
        except (PerfettoException, ConnectionError, ValueError) as err:
            raise failure(None, f"trace processor RPC failed: {str(err).splitlines()[0]}") from None

    @property
    def memory_bytes(self) -> int:
        return self._host.memory_bytes

    def close(self) -> None:
        self._host.close()


class ShellBackend:
    """A native trace_processor_shell given by the user, driven by perfetto's API."""

    name = "native"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.version = _shell_version(binary)
        self._tp = None

    def load(self, chunks: Iterable[bytes]) -> None:
        from perfetto.trace_processor import TraceProcessor, TraceProcessorConfig

        try:
            self._tp = TraceProcessor(trace=(c for c in chunks), config=TraceProcessorConfig(bin_path=self.binary))
        except PerfettoException as err:
            raise TraceLoadError(None, f"{SHELL_NAME} failed: {processor_reason(str(err))}") from None

    def query(self, sql: str) -> pd.DataFrame:
        assert self._tp is not None, "load() first"
        try:
            response = self._tp._backend.execute_query(sql)
        except PerfettoException as err:
            raise QueryError(None, processor_reason(str(err))) from None
        if response.error:
            raise QueryError(None, processor_reason(response.error))
        return query_result_to_frame(response)

    def close(self) -> None:
        if self._tp is not None:
            self._tp.close()
            self._tp = None


def _shell_version(binary: str) -> str:
    import subprocess

    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise EngineError(binary, f"cannot run trace processor binary: {err}") from None
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def compile_ahead(config: EngineConfig, fed_bytes: int) -> threading.Thread | None:
    """Starts compiling the wasm build a load of about ``fed_bytes`` will need, on a thread, when it is
    not cached yet: the compile then overlaps the JSON decode instead of following it."""
    from traceview.engine.module_cache import compile_module

    build = wasm_build(config, fed_bytes)
    if build is None or config.cache_dir is None or processor_ready(config, fed_bytes):
        return None

    def run() -> None:
        try:
            compile_module(build[0], build[1], config.cache_dir)
        except Exception:  # the load compiles again, and reports what goes wrong there
            pass

    thread = threading.Thread(target=run, name="traceview-compile", daemon=True)
    thread.start()
    return thread


def select_backend(config: EngineConfig, fed_bytes: int) -> Backend:
    """Starts the backend the config asks for (see module docstring for the order);
    ``fed_bytes`` is how much trace data the processor will get."""
    binary = resolve_shell(config)
    if binary is not None:
        return ShellBackend(binary)
    memory64 = config.memory64 if config.memory64 is not None else fed_bytes > MEMORY64_THRESHOLD_BYTES
    return WasmBackend(memory64, config.cache_dir)
