"""Profile N steps of any callable under torch.profiler and write a gzipped Chrome trace.

Two step-marker modes:

- ProfilerStep (default): a ``torch.profiler.schedule(wait, warmup, active)`` and one
  ``prof.step()`` per step, so each recorded step is a ``ProfilerStep#N`` annotation
  (N counts from 0 at the first step, so with wait=1 warmup=2 the trace holds #3..#(2+active)).
- Named steps (``step_marker="..."``): no schedule and no ProfilerStep; the wait+warmup steps run
  with the profiler off, then each active step is wrapped in ``record_function(step_marker)``,
  the way vLLM annotates its steps (``execute_context_0(0)_generation_32(32)``).

``record_shapes=True`` always: the dtypes of the op that launched a kernel ("Input type" args)
are the only thing that tells a bf16->fp32 cast from a same-dtype copy running the same kernel.
torch is imported when a profiler starts, never at import time.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from traceview.collectors.errors import CollectError, MissingToolError

TRACE_SUFFIX = ".pt.trace.json.gz"


@dataclass(frozen=True)
class ProfileOptions:
    """How steps are profiled; every field has the default the CLI uses."""

    wait: int = 1  # steps run with the profiler off first (ProfilerStep mode: schedule "wait")
    warmup: int = 2  # steps traced then discarded (named-step mode: run with the profiler off)
    with_stack: bool = False  # Python stacks make traces several times larger; off unless asked
    step_marker: str | None = None  # None: ProfilerStep#N; else record_function name ("{step}" = index)
    device: str = "auto"  # auto: CPU + CUDA (CUDA also covers HIP on ROCm) when a GPU is there; cpu: CPU only
    sync_each_step: bool = True  # synchronize the GPU at the end of each step so its kernels land in it


def trace_path(out_dir: Path, name: str) -> Path:
    """Where a trace called ``name`` goes: ``out_dir/<name>.pt.trace.json.gz``."""
    return Path(out_dir) / f"{name}{TRACE_SUFFIX}"


def import_torch() -> Any:
    """torch, or MissingToolError (one line, exit 2 in the CLI) saying how to install it."""
    try:
        import torch
        import torch.profiler  # noqa: F401
    except ImportError as err:
        raise MissingToolError("torch", f"PyTorch is not installed ({err}); in a traceview checkout: "
                                        "pip install '.[collect]' (or pip install torch)") from err
    return torch


def _activities(torch: Any, device: str) -> list:
    acts = [torch.profiler.ProfilerActivity.CPU]
    if device not in ("auto", "cpu", "cuda"):
        raise CollectError(None, f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise CollectError(None, "device cuda asked for, but torch sees no GPU (CUDA or ROCm)")
    if device != "cpu" and torch.cuda.is_available():
        acts.append(torch.profiler.ProfilerActivity.CUDA)  # HIP kernels too on ROCm builds
    return acts


def gzip_atomic(src: Path, dest: Path) -> Path:
    """Gzips ``src`` into ``dest`` via a temp file in dest's folder + rename; returns ``dest``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as raw, open(src, "rb") as fin:
            # mtime=0: the same trace gzips to the same bytes.
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
                shutil.copyfileobj(fin, gz, 1 << 20)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a trace is meant to be shared
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


class StepProfiler:
    """Context manager that profiles the steps run inside it.

    Run ``total_steps`` steps, each inside ``with sp.step():``; after the ``with`` block,
    ``sp.path`` is the written ``<name>.pt.trace.json.gz``. Steps beyond ``total_steps`` run
    unprofiled. Raises CollectError if no active step was recorded.
    """

    def __init__(self, out_dir: str | Path, name: str, active: int = 5,
                 options: ProfileOptions | None = None) -> None:
        self.options = options or ProfileOptions()
        if active < 1 or self.options.wait < 0 or self.options.warmup < 0:
            raise CollectError(None, "need active >= 1 and wait, warmup >= 0")
        self.out_dir = Path(out_dir)
        self.name = name
        self.active = active
        self.path: Path | None = None
        self._torch: Any = None
        self._prof: Any = None
        self._index = 0
        self._json_tmp: Path | None = None

    @property
    def total_steps(self) -> int:
        """wait + warmup + active: the number of steps to run."""
        return self.options.wait + self.options.warmup + self.active

    def _profile(self, schedule: Any) -> Any:
        torch = self._torch
        return torch.profiler.profile(
            activities=_activities(torch, self.options.device), schedule=schedule,
            record_shapes=True, with_stack=self.options.with_stack,
            on_trace_ready=self._export if schedule is not None else None)

    def _export(self, prof: Any) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.name}.", suffix=".json", dir=self.out_dir)
        os.close(fd)
        prof.export_chrome_trace(tmp)
        self._json_tmp = Path(tmp)

    def __enter__(self) -> "StepProfiler":
        if not self.out_dir.is_dir():
            raise CollectError(self.out_dir, "output directory does not exist")
        self._torch = import_torch()
        _activities(self._torch, self.options.device)  # fail before running any step
        if self.options.step_marker is None:
            o = self.options
            schedule = self._torch.profiler.schedule(wait=o.wait, warmup=o.warmup, active=self.active, repeat=1)
            self._prof = self._profile(schedule)
            self._prof.__enter__()
        return self

    def _sync(self) -> None:
        if self.options.sync_each_step and self.options.device != "cpu" and self._torch.cuda.is_available():
            self._torch.cuda.synchronize()

    @contextmanager
    def step(self) -> Iterator[int]:
        """Runs one step; yields its index (0-based, counting wait and warmup steps)."""
        index = self._index
        self._index += 1
        if self.options.step_marker is None:
            yield index
            self._sync()
            self._prof.step()
            return
        first_active = self.options.wait + self.options.warmup
        if index == first_active:
            self._prof = self._profile(None)
            self._prof.start()
        if first_active <= index < self.total_steps:
            with self._torch.profiler.record_function(self.options.step_marker.format(step=index)):
                yield index
            self._sync()
            if index == self.total_steps - 1:
                self._prof.stop()
                self._export(self._prof)
                self._prof = None
        else:
            yield index

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._prof is not None:
                if self.options.step_marker is None:
                    self._prof.__exit__(exc_type, exc, tb)
                else:
                    self._prof.stop()
                    if exc_type is None:
                        self._export(self._prof)
            if exc_type is None:
                self._finish()
        finally:
            if self._json_tmp is not None:
                self._json_tmp.unlink(missing_ok=True)

    def _finish(self) -> None:
        if self._json_tmp is None:
            raise CollectError(trace_path(self.out_dir, self.name),
                               f"no active step was recorded: ran {self._index} steps, "
                               f"need wait+warmup+active = {self.total_steps}")
        self.path = gzip_atomic(self._json_tmp, trace_path(self.out_dir, self.name))


def profile_steps(step_fn: Callable[[], Any], steps: int = 5, *, out_dir: str | Path = ".",
                  name: str = "trace", options: ProfileOptions | None = None) -> Path:
    """Calls ``step_fn()`` wait+warmup+``steps`` times under torch.profiler.

    ``steps`` is the number of active (recorded) steps. Returns the path of the written
    ``<out_dir>/<name>.pt.trace.json.gz``.
    """
    with StepProfiler(out_dir, name, steps, options) as sp:
        for _ in range(sp.total_steps):
            with sp.step():
                step_fn()
    assert sp.path is not None  # _finish set it or raised
    return sp.path
