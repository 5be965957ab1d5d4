"""Three ways to run one CLI command on one fuzz input, all returning an ``Outcome``.

- ``subprocess``: ``python -m traceview ARGS`` exactly as a user runs it (each
  call pays interpreter start-up and imports, ~0.5 s on the 2-core dev box).
- ``fork``: this process imports traceview once (``fork_warmup``), then forks
  one child per command; the child runs the same ``run(argv)`` the entry point
  runs, with stdout/stderr on files. Still one process per command, so a
  segfault, a wasm abort or a hang kills only that child; only start-up is shared.
- ``inprocess``: ``run(argv)`` in a thread of this process with captured
  output and a join timeout (for CI: no process start at all). A hang cannot be
  killed here, so the caller stops the campaign after one.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("subprocess", "fork", "inprocess")


@dataclass(frozen=True)
class Command:
    """One command of a case: ``label`` for reports, ``argv`` after the program name."""

    label: str
    argv: tuple[str, ...]

    def shell(self) -> str:
        """The command line a person pastes to reproduce it."""
        return " ".join(["traceview", *(_quote(a) for a in self.argv)])


@dataclass(frozen=True)
class Outcome:
    rc: int | None  # None when it timed out; negative = killed by that signal
    stdout: str
    stderr: str
    timed_out: bool


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _call(command: Command) -> int:
    """Runs the command in this process, as the entry point would; returns its exit code."""
    from traceview.cli.app import run

    return run(list(command.argv))


def run_subprocess(command: Command, timeout: float) -> Outcome:
    argv = [sys.executable, "-m", "traceview", *command.argv]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as err:
        return Outcome(None, _text(err.stdout), _text(err.stderr), True)
    return Outcome(done.returncode, _text(done.stdout), _text(done.stderr), False)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


class ForkPool:
    """Runs commands in children forked from this (already warm, single-threaded) process.

    Up to ``slots`` children at a time; ``wait`` returns finished ones and kills any
    that ran past its timeout. The parent must hold no threads when it forks (a
    child would inherit their locks), so this pool never starts any.
    """

    def __init__(self, slots: int, workdir: Path) -> None:
        import fork_warmup  # noqa: F401  (imports everything a child needs, before the first fork)

        self.slots = slots
        self.workdir = workdir
        self.running: dict[int, tuple[object, float, float, Path]] = {}  # pid -> (tag, started, timeout, dir)
        self.timed_out: set[int] = set()

    @property
    def free(self) -> int:
        return self.slots - len(self.running)

    def submit(self, command: Command, timeout: float, tag: object) -> None:
        where = Path(tempfile.mkdtemp(prefix="cmd-", dir=self.workdir))
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: never returns
            code = 1
            try:
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    target = os.open(where / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(target, fd)
                    os.close(target)
                # Fresh text streams on fds 1/2: the parent's sys.stdout may not be fd 1 (pytest's capture).
                sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
                code = _call(command)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - what Python itself does with an uncaught exception
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.running[pid] = (tag, time.monotonic(), timeout, where)

    def wait(self) -> list[tuple[object, Outcome]]:
        """Blocks until at least one child ends (or is killed for its timeout); returns (tag, outcome)s."""
        while True:
            done = []
            for pid, (tag, started, timeout, where) in list(self.running.items()):
                if pid not in self.timed_out and time.monotonic() - started > timeout:
                    os.kill(pid, signal.SIGKILL)
                    self.timed_out.add(pid)
                finished, status = os.waitpid(pid, os.WNOHANG)
                if finished == 0:
                    continue
                del self.running[pid]
                hung = pid in self.timed_out
                self.timed_out.discard(pid)
                rc = None if hung else os.waitstatus_to_exitcode(status)
                done.append((tag, Outcome(rc, _read(where / "stdout"), _read(where / "stderr"), hung)))
                shutil.rmtree(where, ignore_errors=True)
            if done or not self.running:
                return done
            time.sleep(0.005)


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


def run_fork(command: Command, timeout: float) -> Outcome:
    """One command in a forked child (the campaign drives ``ForkPool`` directly to run several at once)."""
    with tempfile.TemporaryDirectory(prefix="tv-fuzz-") as tmp:
        pool = ForkPool(1, Path(tmp))
        pool.submit(command, timeout, None)
        return pool.wait()[0][1]


def run_inprocess(command: Command, timeout: float) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    result: dict[str, int] = {}

    def target() -> None:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                result["rc"] = _call(command)
            except SystemExit as exit_:
                result["rc"] = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - an escaped exception is what the fuzzer looks for
                traceback.print_exc()
                result["rc"] = 1

    saved = sys.stdout, sys.stderr
    worker = threading.Thread(target=target, name="fuzz-case", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        sys.stdout, sys.stderr = saved  # the stuck thread never leaves its redirect: take the streams back
        return Outcome(None, out.getvalue(), err.getvalue(), True)
    return Outcome(result.get("rc", 1), out.getvalue(), err.getvalue(), False)


RUNNERS = {"subprocess": run_subprocess, "fork": run_fork, "inprocess": run_inprocess}
