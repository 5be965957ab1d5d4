"""Nsight Systems reports (``.nsys-rep``, older ``.qdrep``) exported to SQLite with ``nsys``, once.

The report container is NVIDIA's own and undocumented, so traceview does not read it:
``nsys export --type sqlite`` turns it into the tables ``translate.py`` reads. The
export is kept in traceview's cache under the SHA-256 of the report's bytes, so a
report is exported once however often it is counted, and a changed report again.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from traceview.engine.formats import NSYS_REPORT_SUFFIXES as REPORT_SUFFIXES
from traceview.engine.formats import cache_root, file_sha256
from traceview.errors import TraceLoadError


def export_command(path: Path) -> str:
    """The command that exports ``path`` next to itself, for messages."""
    stem = path.name[: -len(next(s for s in REPORT_SUFFIXES if path.name.lower().endswith(s)))]
    return f"nsys export --type sqlite --output {stem}.sqlite {path.name}"


def export_dir() -> Path:
    """Where exports are kept: ``nsys/`` in traceview's cache."""
    return cache_root() / "nsys"


@functools.lru_cache(maxsize=64)
def _digest(path: str, identity: tuple[int, ...]) -> str:
    """A report's SHA-256, once per process while the file is unchanged (``identity``): one load
    sniffs the file several times, and a report is often hundreds of MB."""
    return file_sha256(Path(path))


def exported(path: Path) -> Path:
    """The SQLite export of report ``path``, made with ``nsys`` on PATH unless already cached.

    Raises TraceLoadError naming the report when nsys is missing or the export fails.
    """
    nsys = shutil.which("nsys")
    if nsys is None:
        raise TraceLoadError(path, f"is an Nsight Systems report and nsys is not on PATH to export it: run "
                                   f"`{export_command(path)}` and pass the .sqlite file")
    try:
        stat = path.stat()
        identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        out = export_dir() / f"{_digest(str(path.resolve()), identity)}.sqlite"
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TraceLoadError(path, f"cannot read the report or the export cache ({err.strerror or err})") from None
    partial = out.with_name(f"{out.stem}.{os.getpid()}.partial.sqlite")
    partial.unlink(missing_ok=True)
    try:
        done = subprocess.run([nsys, "export", "--type", "sqlite", "--output", str(partial), str(path)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    except OSError as err:
        raise TraceLoadError(path, f"cannot run {nsys} ({err.strerror or err})") from None
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        why = f": {said[-1]}" if said else ""
        raise TraceLoadError(path, f"`nsys export --type sqlite` failed (exit {done.returncode}){why}")
    partial.replace(out)  # whole or absent: a reader never sees a half-written export
    return out
