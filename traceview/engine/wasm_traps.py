"""What a trap of the wasm trace processor means, in one line, and whether it was out of memory.

Only an out-of-memory trap of the 4 GiB wasm32 build is worth a second load on
the memory64 build; any other trap (an out-of-bounds access, a failed
assertion) would fail the same way there, and a memory64 build that ran out has
nowhere bigger to go. So the decision rests on evidence of a failed
allocation, never on the word "memory" in a message: wasmtime's
"out of bounds memory access" is a bug or a corrupt input, not a full heap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence


class WasmTrap(RuntimeError):
    """The trace processor aborted or trapped; the message is one line.

    ``out_of_memory``: the trap followed a failed allocation (see ``is_out_of_memory``).
    """

    def __init__(self, reason: str, out_of_memory: bool = False) -> None:
        super().__init__(reason)
        self.out_of_memory = out_of_memory


# What the host functions raise when the processor gives up on its own (abort(), a failed assert).
ABORTED = "trace processor aborted"


@dataclass(frozen=True)
class HeapRefusal:
    """A heap growth the host refused (emscripten_resize_heap returned 0); sizes in bytes."""

    current: int
    requested: int
    limit: int
    # Why the host said no: None when ``requested`` is over ``limit``, else wasmtime's grow error.
    host_error: str | None = None

    def __str__(self) -> str:
        grow = f"heap could not grow from {_gib(self.current)} to {_gib(self.requested)}"
        if self.host_error is None:
            return f"{grow}, over the build's {_gib(self.limit)} limit"
        return f"{grow}: {self.host_error}"


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.2f} GiB"


# A failed allocation, in the processor's own words: PERFETTO_CHECK's strerror(ENOMEM)
# ("errno: 48, Out of memory"), or libc++'s name for a failed new.
_OOM_LOG = re.compile(r"out of memory|\bENOMEM\b|bad_alloc", re.IGNORECASE)
# wasmtime's message for an allocation it refused outright (TrapCode.ALLOCATION_TOO_LARGE).
_TOO_LARGE = "allocation size too large"
# How the processor stops when malloc returns NULL without logging: a PERFETTO_CHECK
# (__builtin_trap: wasm `unreachable`) or operator new's abort() (built without exceptions).
_SILENT_STOPS = ("wasm `unreachable` instruction executed", ABORTED)


def is_out_of_memory(message: str, logged: Sequence[str], refusal: HeapRefusal | None) -> bool:
    """Whether a trap is the processor running out of heap.

    ``message``: wasmtime's trap message (``wasmtime_message``) or ABORTED; ``logged``: the
    processor's log lines (``meaningful_log_lines``); ``refusal``: the last heap growth the host
    refused, if any. Yes when the log says so, when wasmtime refused an allocation, or when the
    processor stopped itself right after a refused growth; no for every other trap.
    """
    if any(_OOM_LOG.search(line) for line in logged):
        return True
    if _TOO_LARGE in message:
        return True
    return refusal is not None and any(stop in message for stop in _SILENT_STOPS)


def trap_reason(message: str, logged: Sequence[str], refusal: HeapRefusal | None = None,
                memory64: bool = False) -> str:
    """One line: out of memory (with the heap sizes when known), else the processor's
    last words if it logged any, else wasmtime's message."""
    if is_out_of_memory(message, logged, refusal):
        words = f"({logged[-1] if logged else message})"
        # memory64 has nothing bigger to retry on: it says so, and how far the heap got.
        what = "memory on the memory64 build" if memory64 else "wasm memory"
        heap = f": {refusal}" if refusal is not None else ""
        return f"trace processor ran out of {what}{heap} {words}"
    if logged:
        return f"trace processor failed: {logged[-1]} ({message})"
    if message == ABORTED or message.startswith("trace processor "):
        return message
    return f"trace processor trapped: {message}"


def wasmtime_message(err: BaseException) -> str:
    """The line of a wasmtime error that names the trap.

    A trap's text starts with "error while executing at wasm backtrace:" and a
    backtrace; the cause comes last ("wasm trap: out of bounds memory access").
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    traps = [line for line in lines if "wasm trap: " in line]
    if traps:
        return traps[-1].split("wasm trap: ", 1)[1]
    return re.sub(r"^\d+: ", "", lines[-1])


# Log lines that never explain a failure: progress, crash-log frame markers,
# the trace id the crash log starts with, syscalls we deliberately leave out.
_LOG_NOISE = re.compile(r"-+(BEGIN|END) PERFETTO PRE-CRASH LOG-+|trace_uuid: |Loading trace |"
                        r"warning: unsupported syscall")


def meaningful_log_lines(entries: Sequence[str]) -> list[str]:
    """The processor's stderr split into lines, whitespace collapsed, noise dropped.

    A PERFETTO_CHECK failure logs its reason, then a "PRE-CRASH LOG" block that
    repeats it and ends with a marker line: the last raw line is that marker.
    """
    lines = (" ".join(part.split()) for entry in entries for part in re.split(r"[\r\n]", entry))
    return [line for line in lines if line and not _LOG_NOISE.match(line)]
