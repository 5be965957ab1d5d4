"""Output plumbing for commands: one stdout console, one stderr console, atomic files."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from traceview.errors import TraceviewError

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def write_output(text: str, output: Path | None) -> None:
    """Prints ``text`` to stdout, or writes it to ``output`` via temp file + rename."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise TraceviewError(output, "output directory does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=directory)
    try:
        # mkstemp creates 0600; give the result the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def load_progress(quiet: bool, label: str, unit: str = "bytes") -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr (bytes read, or ``unit="items"`` counted); None (no bar) when
    quiet or stderr is not a TTY. The bar only appears after about a second, so quick loads stay silent.
    """
    if quiet or not stderr.is_terminal:
        yield None
        return
    amount = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), amount,
                        TimeRemainingColumn(), console=stderr, transient=True)
    task = progress.add_task(label, total=None)
    import time

    started = time.monotonic()

    def update(done: int, total: int) -> None:
        if not progress.live.is_started and time.monotonic() - started > 1.0:
            progress.start()
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()


def count_progress(quiet: bool, label: str):
    """A traces-done progress bar for batches (see load_progress)."""
    return load_progress(quiet, label, unit="items")


def write_frame(frame, fmt: str, output: Path | None) -> bool:
    """Writes ``frame`` as CSV or JSON records for ``--format csv|json``; returns False for ``table``,
    which the caller renders with rich (and which cannot go to ``-o``)."""
    import typer

    if fmt == "csv":
        write_output(frame.to_csv(index=False), output)
        return True
    if fmt == "json":
        write_output(frame.to_json(orient="records", indent=2), output)
        return True
    if output is not None:
        raise typer.BadParameter("-o needs --format json or csv", param_hint="--output")
    return False
