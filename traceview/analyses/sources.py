"""Which Python function a diff's added or removed launches came from.

Each launch carries its source frame (``LaunchCounts.launches["frame"]``: the launch call's
innermost user-code Python frame, recorded with ``with_stack``). ``frame_deltas`` splits each
category's per-step change between two runs over those frames, largest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from traceview.model.columns import typed
from traceview.model.counts import LaunchCounts

SOURCE_DTYPES = {"category": "string", "frame": "string", "before_per_step": "float64", "after_per_step": "float64",
                 "delta": "float64"}
SOURCE_COLUMNS = list(SOURCE_DTYPES)
KERNEL_SOURCE_DTYPES = {"category": "string", "frame": "string", "kernel": "string", "before_per_step": "float64",
                        "after_per_step": "float64", "delta": "float64"}
KERNEL_SOURCE_COLUMNS = list(KERNEL_SOURCE_DTYPES)
# Stands for <NA> (no frame) while rates of several traces are aligned: NA is no index label to join on.
_NO_FRAME = "\x00no frame"
# Per-step rates are means of integers: a difference below this is float noise, not a change.
_SAME = 1e-9


def _rates(counts: LaunchCounts | Sequence[LaunchCounts], skip: int,
           keys: tuple[str, ...] = ("category", "frame")) -> pd.Series:
    """Launches per steady step by ``keys``; for several traces (ranks, runs) their mean, as the category
    counts of a side are (a key a trace lacks counts 0 there)."""
    traces = [counts] if isinstance(counts, LaunchCounts) else list(counts)
    rates = []
    for one in traces:
        rows, steps = one.steady_launches(skip)
        rows = rows.assign(frame=rows["frame"].fillna(_NO_FRAME))
        rates.append(rows.groupby(list(keys), observed=True, dropna=False)["launches"].sum() / max(steps, 1))
    return pd.concat(rates, axis=1).fillna(0.0).mean(axis=1)


def _changed(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """The keys whose rate changed, with before_per_step, after_per_step, delta and size (``|delta|``), largest
    change first, then by the keys; <NA> frames restored."""
    frame = pd.concat({"before_per_step": before, "after_per_step": after}, axis=1).fillna(0.0).reset_index()
    keys = list(frame.columns[:before.index.nlevels])
    frame["frame"] = frame["frame"].replace(_NO_FRAME, None)
    frame["delta"] = frame["after_per_step"] - frame["before_per_step"]
    frame = frame[frame["delta"].abs() > _SAME].assign(size=lambda f: f["delta"].abs())
    return frame.sort_values(["size", *keys], ascending=[False] + [True] * len(keys), kind="stable")


def frame_deltas(before: LaunchCounts | Sequence[LaunchCounts], after: LaunchCounts | Sequence[LaunchCounts],
                 skip: int = 0, coverage: float = 0.95) -> pd.DataFrame:
    """Each category's per-step launch change (after - before) attributed to source frames.

    Returns SOURCE_COLUMNS: category, frame (string, ``FILE(LINE): FUNCTION``; <NA> for launches
    without one: no with_stack, or graph replays), before_per_step, after_per_step, delta
    (float64, launches per steady step; ``skip`` drops each side's first steps). Only frames
    whose rate changed; per category, the largest ``|delta|`` first until they cover at least
    ``coverage`` of the category's summed ``|delta|`` (the rest are the smallest changes). Rows of
    all categories together are sorted by ``|delta|``, largest first. Empty (same columns) when
    nothing changed.
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    frame = _changed(_rates(before, skip), _rates(after, skip))
    # Rows before this one in its category cover less than `coverage`: it is needed.
    covered_before = frame.groupby("category", observed=True)["size"].cumsum() - frame["size"]
    total = frame.groupby("category", observed=True)["size"].transform("sum")
    frame = frame[covered_before.to_numpy() < coverage * total.to_numpy() - _SAME]
    return typed(frame.reset_index(drop=True), SOURCE_DTYPES)[SOURCE_COLUMNS]


def frame_kernel_deltas(before: LaunchCounts | Sequence[LaunchCounts], after: LaunchCounts | Sequence[LaunchCounts],
                        skip: int = 0) -> pd.DataFrame:
    """The kernels behind ``frame_deltas``: per (category, frame, kernel), the launches per steady step
    before and after and their change, only where it changed; largest ``|delta|`` first. Columns:
    KERNEL_SOURCE_COLUMNS (frame <NA> as in ``frame_deltas``)."""
    keys = ("category", "frame", "kernel")
    frame = _changed(_rates(before, skip, keys), _rates(after, skip, keys))
    return typed(frame.reset_index(drop=True), KERNEL_SOURCE_DTYPES)[KERNEL_SOURCE_COLUMNS]
