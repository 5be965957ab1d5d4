"""Stops the wasm trace processor when it spins, by the CPU time it uses.

Some malformed inputs make Perfetto's v52 processor loop forever (process_name
metadata holding Infinity never finished finalizing). A wall-clock deadline
called valid traces hangs on slow or busy machines. Here the only clock is the
processor's own CPU time, on the thread that runs it: waiting for a core on a
loaded machine costs nothing, and the budget grows with the bytes it was fed,
tens of times what a load takes. A query a user wrote gets no budget at all.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import wasmtime

TICK_CPU_SECONDS = 0.05  # one epoch tick per this much processor CPU time
_POLL_SECONDS = 0.02
LOAD_BASE_CPU_SECONDS = 60.0
LOAD_CPU_SECONDS_PER_GB = 600.0  # a load takes ~10-30 CPU-s per GB of JSON
_NO_DEADLINE_TICKS = 1 << 62


def _cpu_clock(thread_id: int):
    """A function that reads the CPU time of thread ``thread_id`` (whole process where unsupported)."""
    try:
        clock = time.pthread_getcpuclockid(thread_id)
        return lambda: time.clock_gettime(clock)
    except (AttributeError, OSError):  # pragma: no cover - platforms without per-thread clocks
        return time.process_time


class CpuWatchdog:
    """Advances ``engine``'s epoch once per TICK_CPU_SECONDS of CPU used by the
    thread inside ``guard``; a daemon thread polls that thread's CPU clock."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._clock = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="traceview-wasm-watchdog")
        self._thread.start()

    def _run(self) -> None:
        last = None
        while not self._stop.wait(_POLL_SECONDS):
            with self._lock:
                clock = self._clock
            if clock is None:
                last = None
                continue
            now = clock()
            last = now if last is None else last
            while now - last >= TICK_CPU_SECONDS:
                self._engine.increment_epoch()
                last += TICK_CPU_SECONDS

    @contextmanager
    def guard(self, store: wasmtime.Store, budget_cpu_seconds: float | None) -> Iterator[None]:
        """Runs the body with a CPU budget (None: unlimited); when it is spent,
        wasmtime interrupts the call with an INTERRUPT trap."""
        ticks = _NO_DEADLINE_TICKS if budget_cpu_seconds is None else \
            max(1, int(budget_cpu_seconds / TICK_CPU_SECONDS))
        store.set_epoch_deadline(ticks)
        with self._lock:
            self._clock = _cpu_clock(threading.get_ident())
        try:
            yield
        finally:
            with self._lock:
                self._clock = None

    def stop(self) -> None:
        """Ends the polling thread and waits for it (one poll at most), so none outlives its processor."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def load_budget_seconds(fed_bytes: int) -> float:
    """The CPU budget of a call that loads trace data, given all bytes fed so far."""
    return LOAD_BASE_CPU_SECONDS + LOAD_CPU_SECONDS_PER_GB * fed_bytes / 1e9


def is_interrupt(trap: wasmtime.Trap) -> bool:
    return trap.trap_code == wasmtime.TrapCode.INTERRUPT
