"""A small pool of decoding processes, started as ``python -m`` this module.

multiprocessing's pools start each worker by importing the caller's main
script again (spawn, forkserver), which breaks every notebook-style script
without an ``if __name__ == "__main__"`` guard, or fork a process whose other
threads (a progress bar, the wasm watchdog) may hold locks. These workers are
plain interpreters that import only the piece decoder and answer pickled
requests on stdin/stdout, one at a time.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, BinaryIO

from traceview.errors import EngineError

_HEADER = struct.Struct("<Q")


def _write(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=5)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read(stream: BinaryIO) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        self.waiting: deque[Future] = deque()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_results, daemon=True, name="traceview-decode-reader")
        self.reader.start()

    def submit(self, fn, args: tuple) -> Future:
        future: Future = Future()
        with self.lock:
            self.waiting.append(future)
        try:  # unlocked: the reader thread must be able to take results while this blocks
            _write(self.process.stdin, (fn, args))
        except (BrokenPipeError, OSError, ValueError):
            with self.lock:
                if future in self.waiting:
                    self.waiting.remove(future)
            if not future.done():
                future.set_exception(EngineError(None, "a JSON decoding worker process died"))
        return future

    def _read_results(self) -> None:
        while True:
            try:
                ok, value = _read(self.process.stdout)
            except (EOFError, OSError, ValueError):
                break
            with self.lock:
                future = self.waiting.popleft()
            if future.cancelled():  # the caller gave up on it (a piece merged with the next)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        with self.lock:
            for future in self.waiting:
                if not future.done():
                    future.set_exception(EngineError(None, "a JSON decoding worker process died"))
            self.waiting.clear()

    def load(self) -> int:
        return len(self.waiting)

    def end_input(self) -> None:
        """Tells the process to exit once it has answered what it was sent."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        self.end_input()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        self.process.stdout.close()


class WorkerPool:
    """``submit(fn, *args) -> Future``, run in the least busy of ``n`` worker processes.
    ``fn`` must be a module-level function importable by the worker."""

    def __init__(self, n: int) -> None:
        self.workers = [_Worker() for _ in range(n)]
        self._leaving: list[_Worker] = []  # told to exit by shrink(), reaped at shutdown()

    def submit(self, fn, *args) -> Future:
        worker = min(self.workers, key=_Worker.load)
        return worker.submit(fn, args)

    def shrink(self, n: int) -> None:
        """Keeps ``n`` workers and ends the others (idle ones: each still holds ~30 MB), without
        waiting for them to exit."""
        extra, self.workers = self.workers[n:], self.workers[:n]
        self._leaving += extra
        for worker in extra:
            worker.end_input()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        everyone = self.workers + self._leaving
        for worker in everyone:  # all exit side by side (~0.1 s each with numpy loaded)
            worker.end_input()
        for worker in everyone:
            worker.close()


def _give_memory_back() -> None:
    """Returns the memory a task freed to the system: a pool of idle workers would otherwise each
    keep its largest task's peak (80 MB for an 8 MB piece; 16 of them outweigh the trace)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _serve() -> None:
    """Worker main loop: (function, args) in, (ok, result or exception) out, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but results goes to the pipe
    gc.disable()  # decoded events hold no cycles; collecting would rescan every piece
    while True:
        try:
            fn, args = _read(stdin)
        except EOFError:
            return
        try:
            reply = (True, fn(*args))
        except Exception as err:  # handed back to the caller's future
            reply = (False, err)
        _write(stdout, reply)
        del reply
        _give_memory_back()


if __name__ == "__main__":
    _serve()
