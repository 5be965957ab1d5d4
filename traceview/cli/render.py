"""Output plumbing for commands: one stdout console, one stderr console, atomic files."""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from traceview.cli.formats import OutputFormat
from traceview.errors import TraceviewError

if TYPE_CHECKING:  # pandas is imported by the commands that print frames, not at start-up
    import pandas as pd

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)
# Width of tables that go to a pipe or a file (CI logs): wide enough that no kernel name is cut.
PIPE_WIDTH = 4000


def fit_stdout_to_destination() -> None:
    """A terminal gets tables cut to its width; a pipe or a file (a CI log) gets them whole, where
    rich would otherwise assume 80 columns and cut every kernel name."""
    stdout.width = None if stdout.is_terminal else PIPE_WIDTH


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


def plain_text(renderables: list[RenderableType]) -> str:
    """Renderables as uncoloured text, full width (a table written with ``-o FILE.txt``)."""
    console = Console(file=io.StringIO(), width=PIPE_WIDTH, color_system=None, force_terminal=False, soft_wrap=True)
    for item in renderables:
        console.print(item)
    return console.file.getvalue()


def emit(rendered: str | list[RenderableType], output: Path | None) -> None:
    """Text goes to stdout or ``output`` as it is; rich renderables (a table) print to the stdout
    console, or to ``output`` as plain text."""
    if isinstance(rendered, str):
        write_output(rendered, output)
    elif output is not None:
        write_output(plain_text(rendered), output)
    else:
        for item in rendered:
            stdout.print(item)


def _json_scalar(value: object) -> object:
    """numpy scalars (int64 counts, float64 rates, bool) as the Python numbers json writes."""
    return value.item() if hasattr(value, "item") else str(value)


def cell_text(value: object) -> str:
    """A table cell's text: "" for a missing value (None, <NA>, NaN), never "None", "<NA>" or "nan"."""
    import pandas as pd

    return "" if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)


def md_cell(text: str) -> str:
    """``text`` safe inside a markdown table cell: ``|`` escaped, one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def frame_markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub-flavoured markdown table; <NA> is an empty cell."""
    import pandas as pd

    def row(cells) -> str:
        return "| " + " | ".join(md_cell(cell_text(c)) for c in cells) + " |"

    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes]
    lines = [row(frame.columns), "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += [row(values) for values in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_frame(frame: pd.DataFrame, fmt: OutputFormat, output: Path | None) -> bool:
    """Writes ``frame`` as CSV, JSON records or markdown; returns False for ``table``, which the
    caller renders with rich and passes to ``emit``."""
    if fmt is OutputFormat.csv:
        write_output(frame.to_csv(index=False), output)
    elif fmt is OutputFormat.json:  # json.dumps, not to_json: no escaped "/" in the file paths of frames
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        write_output(json.dumps(records, indent=2, default=_json_scalar), output)
    elif fmt is OutputFormat.markdown:
        write_output(frame_markdown(frame), output)
    else:
        return False
    return True
