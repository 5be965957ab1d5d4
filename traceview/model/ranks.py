"""Multi-rank inputs: a directory of per-rank traces, and the one parser of rank names.

Rank names (``parse_rank``), read from a file name, case-insensitively; a keyword counts
only at the start of a word (``tp3``, ``_tp3``, ``-tp-3``, not ``stp3``), and when one
appears several times its last occurrence counts (vLLM appends its suffix after a
user's ``profile_prefix``):

1. An explicit global rank wins: ``rank3``, ``rank_3``, ``-rank-3`` (vLLM's
   ``dp0_pp0_tp3_dcp0_ep0_rank3`` and ``<instance>-rank-3``), else ``worker3`` (the
   ``worker_name`` convention of torch's ``tensorboard_trace_handler``). Label ``rank3``.
2. Else the parallel coordinates ``dp``, ``pp``, ``pcp``, ``tp`` (outermost first, as
   vLLM lays out its ranks: tp innermost). When every outer coordinate the name gives is
   0, the innermost one is the global rank (``dp0_pp0_tp3`` and ``trace_tp3`` are rank 3):
   label ``rank3``. Otherwise the global rank depends on group sizes the name does not
   give, so the label is the coordinates themselves (``dp1_pp0_tp3``). ``dcp`` and ``ep``
   are ignored: in vLLM they index sub-groups of tp and of dp x tp, so they never tell two
   workers apart that dp/pp/tp do not.
3. Else the file has no rank: its name is its label.

Order (``rank_sort_key``): names with a global rank by that number (rank2 before
rank10), then coordinate labels by (dp, pp, pcp, tp), then unranked files; ties by name.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from traceview.engine.formats import inspect_file
from traceview.errors import TraceLoadError

TRACE_SUFFIXES = (".json", ".json.gz", ".pftrace", ".pftrace.gz", ".perfetto-trace", ".perfetto-trace.gz")
NOT_A_TRACE = "not a trace (a JSON object without traceEvents)"
_EXPLICIT = ("rank", "worker")  # first found wins
_COORDINATES = ("dp", "pp", "pcp", "tp")  # outermost first
_KEYWORD = re.compile(r"(?<![a-z])(rank|worker|dcp|pcp|dp|pp|tp|ep)[-_]?(\d+)")
# A JSON file up to this size (uncompressed) is decoded whole to tell a trace from another JSON
# document (a manifest: a few KB). A larger one is left for the loader, which names the problem.
_SMALL_JSON_BYTES = 8 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RankName:
    """What a trace's file name says about its rank.

    ``label``: ``rank3``, ``dp1_pp0_tp3`` or the file name; ``rank``: the global rank
    when the name gives it, else None; ``key``: the sort key (see the module docstring).
    """

    label: str
    rank: int | None
    key: tuple


@dataclass(frozen=True)
class TraceDir:
    """The traces a path stands for, in rank order, and the files of a directory left out.

    ``traces``: paths to count; ``skipped``: (path, reason) of each file that has a trace
    suffix but is certainly no trace (``manifest.json``), in name order.
    """

    traces: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]


def _last_numbers(name: str) -> dict[str, int]:
    """Keyword -> the number after its last occurrence in ``name`` (lower case)."""
    return {m.group(1): int(m.group(2)) for m in _KEYWORD.finditer(name.lower())}


def parse_rank(name: str) -> RankName:
    """The rank a file name gives (rules in the module docstring); never raises.

    Returns a RankName whose label is ``name`` itself and rank None when the name has no rank.
    """
    found = _last_numbers(name)
    for keyword in _EXPLICIT:
        if keyword in found:
            return RankName(f"rank{found[keyword]}", found[keyword], (0, found[keyword], name))
    coords = [(k, found[k]) for k in _COORDINATES if k in found]
    if not coords:
        return RankName(name, None, (2, name))
    if all(value == 0 for _, value in coords[:-1]):
        rank = coords[-1][1]
        return RankName(f"rank{rank}", rank, (0, rank, name))
    label = "_".join(f"{k}{v}" for k, v in coords)
    return RankName(label, None, (1, *(found.get(k, 0) for k in _COORDINATES), name))


def rank_label(path: str | Path) -> str:
    """``rank3``-style label of a trace from its file name (``parse_rank``), else the file name."""
    return parse_rank(Path(path).name).label


def rank_sort_key(path: str | Path) -> tuple:
    """Sort key putting traces in rank order: rank2 before rank10, unranked last by name."""
    return parse_rank(Path(path).name).key


def sort_by_rank(paths: Iterable[Path]) -> list[Path]:
    """``paths`` in rank order (``rank_sort_key``)."""
    return sorted(paths, key=rank_sort_key)


def _read_small(path: Path, compressed: bool) -> bytes | None:
    """The whole (decompressed) file, or None when it is larger than ``_SMALL_JSON_BYTES``."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read(_SMALL_JSON_BYTES + 1)
    except (OSError, EOFError):
        return None  # corrupt: the loader reports it
    return data if len(data) <= _SMALL_JSON_BYTES else None


def not_a_trace(path: Path) -> str | None:
    """Why ``path`` is certainly not a trace, or None when it is one or may be one.

    Only a JSON document that decodes whole as an object without a ``traceEvents`` key
    (a manifest, a config) is certainly not a trace: the loader would refuse it. A file
    that is unreadable, malformed or large is left for the loader to report.
    """
    try:
        info = inspect_file(path)
    except TraceLoadError:
        return None
    if info.format != "json" or info.estimated_raw_size > _SMALL_JSON_BYTES:
        return None  # Perfetto/rocprof formats; a big JSON (gzip's size is a lower bound)
    data = _read_small(path, info.compressed)
    if data is None:
        return None
    data = data.removeprefix(_BOM)
    try:
        keys = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError:
        return None  # an array (Chrome's bare-array format) or malformed JSON
    return None if "traceEvents" in keys else NOT_A_TRACE


def _single_dir_trace(path: Path, skipped: list[tuple[Path, str]]) -> Path:
    """``path`` itself when the directory is one rocprofv3 output, else TraceLoadError."""
    try:
        inspect_file(path)
    except TraceLoadError:
        left_out = f"; not traces: {', '.join(p.name for p, _ in skipped)}" if skipped else ""
        raise TraceLoadError(path, "directory holds no trace files (per-rank Kineto/Perfetto traces "
                                   f"or one rocprofv3 output){left_out}") from None
    return path


def scan_traces(path: Path) -> TraceDir:
    """The traces ``path`` stands for: itself, or a directory's trace files in rank order.

    A directory's files with a trace suffix that are certainly not traces (``not_a_trace``)
    are left out and listed in ``skipped``. A directory with no trace file may be one
    rocprofv3 output: then it is its own single trace. Raises TraceLoadError for a missing
    path or a directory that holds no trace.
    """
    if not path.exists():
        raise TraceLoadError(path, "no such file or directory")
    if not path.is_dir():
        return TraceDir((path,), ())
    candidates = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(TRACE_SUFFIXES))
    traces, skipped = [], []
    for candidate in candidates:
        reason = not_a_trace(candidate)
        if reason is None:
            traces.append(candidate)
        else:
            skipped.append((candidate, reason))
    if not traces:
        return TraceDir((_single_dir_trace(path, skipped),), tuple(skipped))
    return TraceDir(tuple(sort_by_rank(traces)), tuple(skipped))


def trace_files(path: Path) -> list[Path]:
    """The trace files ``path`` stands for (``scan_traces(path).traces``): itself, or the
    traces in a directory sorted by rank, files that are no trace left out.

    Raises TraceLoadError for a missing path or a directory without traces.
    """
    return list(scan_traces(path).traces)
