"""Is a step-latency change real or noise? A bootstrap confidence interval of the median's change.

Each side is one or more runs, each a sequence of per-step latencies in ms (steady steps). The
statistic is the median step latency, after minus before. With one run a side, steps are
resampled with replacement. With several, the bootstrap is hierarchical: runs are resampled with
replacement, then steps within each chosen run, so that run-to-run noise (another process,
another clock, another placement) widens the interval instead of hiding in the pooled steps.
The 95 % interval is the 2.5th to 97.5th percentile of the resampled changes; a change is
"faster" or "slower" only when the whole interval is below or above 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from traceview.analyses.expectations import LATENCY_CI, Expectation
from traceview.model.counts import LaunchCounts

FASTER, SLOWER, NO_CHANGE, TOO_FEW = "faster", "slower", "no significant change", "too few steps"
# Below this many steps a side, resampled medians take a handful of values (one step: a zero-width
# interval around one difference): no verdict, and a latency expectation fails instead of passing.
MIN_STEPS = 3
METRICS = {"cpu_step_ms": "cpu_dur_ns", "gpu_span_ms": "gpu_span_ns"}  # metric -> LaunchCounts.steps column
METRIC_LABELS = {"cpu_step_ms": "CPU step span", "gpu_span_ms": "GPU span"}  # how every surface names them
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
_CHUNK_VALUES = 1 << 22  # resampled latencies held at once per side (32 MB of float64)

Runs = Sequence[float] | np.ndarray | Sequence[Sequence[float] | np.ndarray]


@dataclass(frozen=True)
class LatencySummary:
    """One side: ``n`` steps over ``runs`` runs; median and mean of all its steps (ms)."""

    n: int
    runs: int
    median_ms: float
    mean_ms: float


@dataclass(frozen=True)
class LatencyVerdict:
    """The change of the median ``metric`` (after - before) with its bootstrap 95 % interval.

    ``delta_pct`` and ``ci95_pct`` are in percent of the before median (the interval's bounds are
    percentiles of each resample's own change in percent). ``verdict``: ``faster`` when the whole
    ms interval is below 0, ``slower`` when above, else ``no significant change``.
    """

    metric: str
    before: LatencySummary
    after: LatencySummary
    delta_ms: float
    delta_pct: float
    ci95_ms: tuple[float, float]
    ci95_pct: tuple[float, float]
    verdict: str
    resamples: int
    seed: int
    # The resampled changes (ms) the interval is read from: for plotting the bootstrap distribution.
    changes: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)


def as_runs(latencies: Runs) -> list[np.ndarray]:
    """One float64 array per run: a flat sequence is one run, a sequence of sequences several.

    Raises ValueError for a side without runs, a run without steps, or a latency that is NaN.
    """
    items = list(latencies) if not isinstance(latencies, np.ndarray) or latencies.ndim > 1 else [latencies]
    if items and np.ndim(items[0]) == 0:
        items = [np.asarray(items, dtype="float64")]
    runs = [np.asarray(run, dtype="float64").ravel() for run in items]
    if not runs or any(run.size == 0 for run in runs):
        raise ValueError("every side needs at least one run, and every run at least one step")
    if any(np.isnan(run).any() for run in runs):
        raise ValueError("a step latency is NaN")
    return runs


def summarize_runs(runs: Sequence[np.ndarray]) -> LatencySummary:
    steps = np.concatenate(runs)
    return LatencySummary(int(steps.size), len(runs), float(np.median(steps)), float(np.mean(steps)))


def _medians(runs: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The median of each of ``resamples`` hierarchical resamples of ``runs`` (float64 array).

    Works on ranks, not values: each step is replaced by its rank among the side's steps, so a
    resample is a row of small integers that numpy sorts several times faster than floats, and
    its middle ranks map back to the middle values (rank order is value order).
    """
    lengths = np.array([run.size for run in runs])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pooled = np.concatenate(runs)
    order = np.argsort(pooled, kind="stable")
    ranked = pooled[order]
    dtype = np.int16 if pooled.size < np.iinfo(np.int16).max else np.int32  # positions up to the sentinel
    rank_of = np.empty(pooled.size + 1, dtype=dtype)
    rank_of[order] = np.arange(pooled.size)
    rank_of[-1] = pooled.size  # a slot past a short run's end: sorts after every real rank
    width, count = int(lengths.max()), len(runs)
    same_length = bool((lengths == width).all())
    out = np.empty(resamples)
    chunk = max(1, _CHUNK_VALUES // (count * width))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        chosen = rng.integers(0, count, size=(size, count))  # runs, with replacement
        position = _step_positions(rng, chosen, lengths, offsets, width, same_length, dtype)
        rows = np.sort(rank_of[position].reshape(size, -1), axis=1)
        steps = lengths[chosen].sum(axis=1)
        low = np.take_along_axis(rows, ((steps - 1) // 2)[:, None], axis=1)[:, 0]
        high = np.take_along_axis(rows, (steps // 2)[:, None], axis=1)[:, 0]
        out[start:start + size] = (ranked[low] + ranked[high]) / 2
    return out


def _step_positions(rng: np.random.Generator, chosen: np.ndarray, lengths: np.ndarray, offsets: np.ndarray,
                    width: int, same_length: bool, dtype: type) -> np.ndarray:
    """Positions in the pooled steps of each chosen run's resampled steps, shape (resamples, runs,
    width); a slot past a short run's end gets the pooled size (the sentinel). Small integer
    dtypes: the arrays are large, and numpy fills and sorts them faster."""
    offset = offsets[chosen][..., None].astype(dtype)
    if same_length:
        position = rng.integers(0, width, size=chosen.shape + (width,), dtype=dtype)
        position += offset
        return position
    length = lengths[chosen][..., None]
    scaled = rng.random(chosen.shape + (width,), dtype=np.float32)
    scaled *= length.astype(np.float32)
    position = np.minimum(scaled.astype(dtype), (length - 1).astype(dtype))  # float32 may round up to length
    position += offset
    return np.where(np.arange(width, dtype=dtype) < length, position, dtype(offsets[-1] + lengths[-1]))


def _resampled(before: list[np.ndarray], after: list[np.ndarray], resamples: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The before medians and the changes of the median (after - before), one per resample."""
    rng = np.random.default_rng(seed)
    med_before = _medians(before, resamples, rng)
    return med_before, _medians(after, resamples, rng) - med_before


def _verdict(lo: float, hi: float) -> str:
    if hi < 0:
        return FASTER
    if lo > 0:
        return SLOWER
    return NO_CHANGE


def bootstrap_latency(before: Runs, after: Runs, metric: str = "cpu_step_ms", resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> LatencyVerdict:
    """Bootstraps the change of the median step latency from ``before`` to ``after``.

    Each side: one run (a sequence of per-step ms) or several (a sequence of such sequences).
    ``metric`` only labels the result (e.g. ``cpu_step_ms``, ``gpu_span_ms``). The same inputs
    and ``seed`` give the same interval. Raises ValueError for an empty side or run, NaN, a
    before median of 0, or fewer than 100 resamples.
    """
    if resamples < 100:
        raise ValueError(f"resamples must be at least 100 for a 95 % interval, got {resamples}")
    runs_before, runs_after = as_runs(before), as_runs(after)
    b, a = summarize_runs(runs_before), summarize_runs(runs_after)
    if b.median_ms == 0:
        raise ValueError("the before median is 0 ms: a change in percent of it is undefined")
    med_before, change = _resampled(runs_before, runs_after, resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        change_pct = change / med_before * 100.0
    lo, hi = (float(x) for x in np.percentile(change, [2.5, 97.5]))
    lo_pct, hi_pct = (float(x) for x in np.nanpercentile(change_pct, [2.5, 97.5]))
    delta = a.median_ms - b.median_ms
    verdict = TOO_FEW if min(b.n, a.n) < MIN_STEPS else _verdict(lo, hi)
    return LatencyVerdict(metric, b, a, delta, delta / b.median_ms * 100.0, (lo, hi), (lo_pct, hi_pct),
                          verdict, resamples, seed, change)


def leading_metric(cpu_step_ms: Runs, gpu_span_ms: Runs) -> str:
    """Which latency bounds the step: ``cpu_step_ms`` or ``gpu_span_ms``, whichever has the larger
    median per step over all runs (a tie goes to the CPU: launches then still set the pace)."""
    cpu = float(np.median(np.concatenate(as_runs(cpu_step_ms))))
    gpu = float(np.median(np.concatenate(as_runs(gpu_span_ms))))
    return "gpu_span_ms" if gpu > cpu else "cpu_step_ms"


def step_latencies(counts: LaunchCounts | Sequence[LaunchCounts], metric: str = "cpu_step_ms",
                   skip: int = 0) -> list[np.ndarray]:
    """Per-step ``metric`` in ms of the steady steps (``skip`` dropped) of each run: one array per
    LaunchCounts. ``gpu_span_ms`` leaves out steps that launched no GPU work (no span)."""
    if metric not in METRICS:
        raise ValueError(f"unknown latency metric {metric!r} (known: {', '.join(METRICS)})")
    runs = [counts] if isinstance(counts, LaunchCounts) else list(counts)
    out = []
    for run in runs:
        column = run.steady_steps(skip)[METRICS[metric]]
        out.append(pd.to_numeric(column.dropna(), errors="raise").to_numpy(dtype="float64") / 1e6)
    return out


def latency_actual(expectation: Expectation, verdict: LatencyVerdict) -> float:
    """The end of the 95 % interval that decides ``expectation`` on ``latency``, in its unit.

    ``<``/``<=`` hold when the whole interval is below the bound: the upper end decides.
    ``>``/``>=``: the lower end. ``=`` (± tolerance): the end farther from the number, which is
    within the tolerance only when the whole interval is. Give it to ``evaluate`` as the actual.
    """
    if expectation.category != LATENCY_CI:
        raise ValueError(f"not a latency expectation: {expectation.describe()}")
    if verdict.verdict == TOO_FEW:
        return float("nan")  # no interval to trust: the expectation fails
    lo, hi = verdict.ci95_pct if expectation.unit == "%" else verdict.ci95_ms
    if expectation.op in ("<", "<="):
        return hi
    if expectation.op in (">", ">="):
        return lo
    return lo if abs(lo - expectation.expected) >= abs(hi - expectation.expected) else hi


def latency_holds(expectation: Expectation, verdict: LatencyVerdict) -> bool:
    """Whether the bootstrap interval satisfies ``expectation`` (see ``latency_actual``)."""
    return expectation.holds(latency_actual(expectation, verdict))
