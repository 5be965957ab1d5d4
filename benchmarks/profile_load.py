"""Where a traceview load spends its time, stage by stage, for one trace.

Runs the same pipeline as ``open_trace`` (read -> rewrite -> RPC framing -> copy
into wasm memory -> trace processor append -> finalize -> one query), timing
each stage by wrapping the functions that do it. Variants answer "what if":
another chunk size, no python_function/memcpy rewrite pass, a prefetch thread
that reads and rewrites the next chunk while the trace processor parses, an
append request framed by hand instead of through the protobuf message, code
compiled without epoch interruption (the hang watchdog's checks).

    python -m benchmarks.profile_load benchmarks/data/kineto_1GB.json
    python -m benchmarks.profile_load TRACE --chunk-mb 1 4 8 32 --variant plain prefetch
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

from benchmarks.load_child import peak_rss_kib
from traceview.engine import EngineConfig, backends, formats, wasm_host
from traceview.engine.formats import default_cache_dir, inspect_file, iter_chunks
from traceview.engine.json_rewrite import separate_nonnesting_events


class Timers:
    """Accumulated seconds per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, stage: str | Callable[[], str], fn: Callable) -> Callable:
        """``stage`` may be a function, read when the call starts."""
        def timed(*args, **kwargs):
            name = stage() if callable(stage) else stage
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed

    def wrap_iter(self, stage: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Times the producer's work, not what the consumer does between items."""
        it = iter(chunks)
        while True:
            start = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.seconds[stage] += time.perf_counter() - start
            yield item


def prefetch(chunks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """Produces chunks on a thread: wasm calls release the GIL (wasmtime-py goes
    through ctypes.cdll), so reading and the regex pass overlap with parsing."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                q.put(chunk)
        except BaseException as err:  # handed to the consumer, re-raised there
            q.put(err)
        q.put(done)
    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _raw_frame_parse(self, chunk: bytes):
    """TPM_APPEND_TRACE_DATA framed by hand: TraceProcessorRpcStream.msg (field 1)
    holding request (field 2) = 1 and append_trace_data (field 101) = chunk.
    Same bytes as the protobuf path, without the message's two copies of the chunk."""
    inner_head = b"\x10\x01" + b"\xaa\x06" + _varint(len(chunk))
    self.transport.send(b"\x0a" + _varint(len(inner_head) + len(chunk)) + inner_head + chunk)
    return self._reply().append_result


def _instrument(timers: Timers, raw_frame: bool) -> None:
    """Wraps the stages in place (this process only). Wasm time is split by the
    request that caused it: appending chunks, or the finalize after the last one."""
    phase = {"now": "wasm_other"}

    def in_phase(name: str, fn: Callable) -> Callable:
        def run_in(*args, **kwargs):
            phase["now"] = name
            try:
                return fn(*args, **kwargs)
            finally:
                phase["now"] = "wasm_other"
        return run_in

    client = backends._RpcClient
    if raw_frame:
        client.parse = _raw_frame_parse
    client.parse = timers.wrap("append_request_total", in_phase("wasm_append", client.parse))
    client.notify_eof = in_phase("wasm_finalize", client.notify_eof)
    host = wasm_host.WasmTraceProcessor
    host._call = timers.wrap(lambda: phase["now"], host._call)
    # wasm_host copies requests with ctypes.memmove (older versions: Memory.write).
    wasm_host.ctypes.memmove = timers.wrap("copy_into_wasm", wasm_host.ctypes.memmove)


def _without_epochs() -> None:
    """Compiles the module without epoch checks (the watchdog then cannot stop a hang)."""
    config = wasm_host._engine_config

    def no_epochs(memory64: bool, cache_dir: Path | None):
        out = config(memory64, cache_dir)
        out.epoch_interruption = False
        return out
    wasm_host._engine_config = no_epochs


def measure(path: Path, chunk_mb: int, variant: str) -> dict:
    """One instrumented load; returns seconds per stage, wall time and peak RSS (MiB)."""
    timers = Timers()
    _instrument(timers, raw_frame=variant == "raw-frame")
    cpu_start = time.process_time()
    info = inspect_file(path)
    start = time.perf_counter()
    cache = default_cache_dir() / "wasm"
    if variant == "no-epoch":
        _without_epochs()
        cache = Path(tempfile.gettempdir()) / "traceview-profile-no-epoch"  # never mix artefacts
    backend = backends.select_backend(EngineConfig(cache_dir=cache, wasm_only=True), info.estimated_raw_size)
    timers.seconds["backend_start"] = time.perf_counter() - start
    chunks = timers.wrap_iter("read", iter_chunks(info, chunk_bytes=chunk_mb << 20))
    if variant != "no-rewrite":
        chunks = timers.wrap_iter("read+rewrite", separate_nonnesting_events(chunks))
    if variant == "prefetch":
        chunks = timers.wrap_iter("waiting_for_prefetch", prefetch(chunks))
    backend.load(chunks)
    query_start = time.perf_counter()
    slices = int(backend.query("select count(*) as n from slice").n.iloc[0])
    timers.seconds["query"] = time.perf_counter() - query_start
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    memory = backend.memory_bytes
    backend.close()
    return {"trace": str(path), "bytes": info.size, "chunk_mb": chunk_mb, "variant": variant, "slices": slices,
            "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "stages_s": _stages(timers.seconds),
            "wasm_memory_mib": memory >> 20, "peak_rss_mib": peak_rss_kib() >> 10}


def _stages(seconds: dict[str, float]) -> dict[str, float]:
    """Turns nested timings into exclusive ones (each second counted once)."""
    out = dict(seconds)
    total = out.pop("append_request_total", 0.0)
    out["append_python (framing, copies)"] = total - out.get("wasm_append", 0.0) - out.get("copy_into_wasm", 0.0)
    if "read+rewrite" in out:
        out["rewrite (regex, joins)"] = out.pop("read+rewrite") - out["read"]
    if "waiting_for_prefetch" in out:  # read and rewrite ran on the thread; this is what was not hidden
        out["read (thread)"] = out.pop("read")
        out["rewrite (thread)"] = out.pop("rewrite (regex, joins)", 0.0)
    return {k: round(v, 3) for k, v in sorted(out.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--chunk-mb", type=int, nargs="+", default=[formats.CHUNK_BYTES >> 20])
    parser.add_argument("--variant", nargs="+", default=["plain"],
                        choices=["plain", "no-rewrite", "prefetch", "raw-frame", "no-epoch"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one measurement per process: RSS and caches start clean
        print(json.dumps(measure(args.trace, args.chunk_mb[0], args.variant[0])))
        return 0
    for chunk_mb in args.chunk_mb:
        for variant in args.variant:
            cmd = [sys.executable, "-m", "benchmarks.profile_load", str(args.trace), "--child",
                   "--chunk-mb", str(chunk_mb), "--variant", variant]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            print(out.strip(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
