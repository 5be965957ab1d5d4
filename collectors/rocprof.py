"""Run a command under rocprofv3 (ROCm's rocprofiler-sdk) and gather what it wrote.

The command line is ``rocprofv3 --kernel-trace --marker-trace --hip-trace --output-format
pftrace csv -d OUT -o NAME -- CMD...``: kernel dispatches, roctx markers (and the
``record_function`` ranges PyTorch emits through roctx) and HIP API calls; ``pftrace`` is the
Perfetto trace traceview loads, ``csv`` gives ``NAME_kernel_trace.csv``,
``NAME_hip_api_trace.csv`` and ``NAME_marker_api_trace.csv``, ``rocpd`` a SQLite ``.db``.
rocprofv3 may nest outputs under ``%hostname%`` folders, so discovery searches recursively.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from traceview.collectors.errors import CollectError, MissingToolError

FORMATS = ("csv", "json", "pftrace", "otf2", "rocpd")
TRACES = ("kernel", "marker", "hip", "memory-copy", "hsa", "rccl")
ROCM_BIN = Path("/opt/rocm/bin")


@dataclass(frozen=True)
class RocprofConfig:
    """What to trace and where; defaults are what traceview's kernel counting needs."""

    out_dir: Path
    name: str = "rocprof"  # rocprofv3 -o: prefix of every output file
    formats: tuple[str, ...] = ("pftrace", "csv")
    traces: tuple[str, ...] = ("kernel", "marker", "hip")  # each becomes --<trace>-trace
    binary: str = "rocprofv3"

    def validate(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise CollectError(None, f"unknown rocprofv3 output format(s) {bad}; use {', '.join(FORMATS)}")
        bad = [t for t in self.traces if t not in TRACES]
        if bad:
            raise CollectError(None, f"unknown trace kind(s) {bad}; use {', '.join(TRACES)}")


@dataclass(frozen=True)
class RocprofOutputs:
    """Files rocprofv3 wrote, each list sorted by path."""

    kernel_trace: list[Path] = field(default_factory=list)  # *_kernel_trace.csv
    hip_api_trace: list[Path] = field(default_factory=list)  # *_hip_api_trace.csv
    marker_api_trace: list[Path] = field(default_factory=list)  # *_marker_api_trace.csv
    pftrace: list[Path] = field(default_factory=list)  # *.pftrace (Perfetto)
    rocpd: list[Path] = field(default_factory=list)  # *.db (SQLite)

    def all(self) -> list[Path]:
        return [*self.pftrace, *self.rocpd, *self.kernel_trace, *self.hip_api_trace, *self.marker_api_trace]


def build_command(cfg: RocprofConfig, cmd: Sequence[str], binary: str | None = None) -> list[str]:
    """The rocprofv3 argv that runs ``cmd`` (``binary`` replaces ``cfg.binary``, e.g. a full path)."""
    cfg.validate()
    if not cmd:
        raise CollectError(None, "no command to profile; put it after --, e.g. -- python decode.py")
    flags = [f"--{t}-trace" for t in cfg.traces]
    return [binary or cfg.binary, *flags, "--output-format", *cfg.formats,
            "-d", str(cfg.out_dir), "-o", cfg.name, "--", *cmd]


def find_rocprofv3(binary: str = "rocprofv3") -> str:
    """Path of the rocprofv3 executable: PATH first, then /opt/rocm/bin; one-line error if neither."""
    found = shutil.which(binary) or shutil.which(binary, path=str(ROCM_BIN))
    if found is None:
        raise MissingToolError(binary, "rocprofv3 not found on PATH or in /opt/rocm/bin; "
                                       "install ROCm's rocprofiler-sdk (ROCm >= 6.2)")
    return found


def find_outputs(out_dir: str | Path) -> RocprofOutputs:
    """Recursively finds rocprofv3's outputs under ``out_dir``."""
    root = Path(out_dir)

    def grab(pattern: str) -> list[Path]:
        return sorted(p for p in root.rglob(pattern) if p.is_file())

    return RocprofOutputs(kernel_trace=grab("*_kernel_trace.csv"), hip_api_trace=grab("*_hip_api_trace.csv"),
                          marker_api_trace=grab("*_marker_api_trace.csv"), pftrace=grab("*.pftrace"),
                          rocpd=grab("*.db"))


def run_rocprof(cfg: RocprofConfig, cmd: Sequence[str]) -> RocprofOutputs:
    """Runs ``cmd`` under rocprofv3 (output streams pass through) and returns what it wrote."""
    argv = build_command(cfg, cmd, find_rocprofv3(cfg.binary))
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    try:
        rc = subprocess.run(argv, check=False).returncode
    except OSError as err:
        raise CollectError(argv[0], f"could not start: {err}") from err
    if rc != 0:
        raise CollectError(cmd[0], f"exited with status {rc} under rocprofv3")
    outputs = find_outputs(cfg.out_dir)
    if not outputs.all():
        raise CollectError(cfg.out_dir, "rocprofv3 ran but wrote none of the expected outputs")
    return outputs
