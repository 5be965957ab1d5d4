"""Process and thread ids that the trace processor maps one to one.

The v52 processor keeps an integer pid or tid only within [0, 2**32), and a tid
of 0 means "the process's main thread". It maps every other value (negative,
64-bit, null) to the pid, and strings to small interned numbers that can equal
a real id. Kineto writes negative tids (a pthread id cast to int), ROCm puts
kernels on stream 0, and two threads merged into one nest each other's events
and lose some. So each distinct (pid, tid) of the file gets ids the processor
keeps apart: its own where they are plain positive ints below 2**31, else a
synthetic one from a reserved range, with "M" name events that show the
original. Overlap lanes get synthetic tids of their own.
"""

from __future__ import annotations

SYNTHETIC_BASE = 0xE000_0000  # remapped pids and tids
LANE_BASE = 0xF000_0000  # overlap lanes
_PLAIN_LIMIT = 1 << 31

Key = tuple[int | str, int | str]


def _plain(value: int | str, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value < _PLAIN_LIMIT


class CanonicalIds:
    """The ids every (pid, tid) and every overlap lane is fed under."""

    def __init__(self) -> None:
        self._pids: dict[int | str, int] = {}
        self._tids: dict[Key, int] = {}
        self._lanes: dict[tuple[Key, int], int] = {}

    def pid(self, pid: int | str) -> int:
        if _plain(pid, 0):
            return pid  # type: ignore[return-value]
        return self._pids.setdefault(pid, SYNTHETIC_BASE + len(self._pids))

    def tid(self, pid: int | str, tid: int | str) -> int:
        if _plain(tid, 1):
            return tid  # type: ignore[return-value]
        return self._tids.setdefault((pid, tid), SYNTHETIC_BASE + len(self._tids))

    def lane(self, key: Key, lane: int) -> int:
        return self._lanes.setdefault((key, lane), LANE_BASE + len(self._lanes))

    def renamed(self, thread_names: dict[Key, str], process_names: dict[int | str, str]) -> list[tuple[str, int, int, str]]:
        """("process_name" | "thread_name", pid, tid, name) for every id made up here,
        unless the file names it already: the original id stays visible."""
        out = [("process_name", value, 0, str(pid)) for pid, value in self._pids.items() if pid not in process_names]
        out += [("thread_name", self.pid(pid), value, str(tid)) for (pid, tid), value in self._tids.items()
                if (pid, tid) not in thread_names]
        for (key, lane), value in self._lanes.items():
            base = thread_names.get(key, str(key[1]))
            out.append(("thread_name", self.pid(key[0]), value, f"{base} (overlap lane {lane})"))
        return out
