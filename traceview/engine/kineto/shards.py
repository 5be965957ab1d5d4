"""Splitting a lean load across several trace processors, by time, so they work side by side.

One processor parses and queries on one core. A lean load can instead go to N
processors that each hold one stretch of time, and the model runs its SQL in
each and adds the answers up (``model/counts.py``). What each one must hold
for its answers to be whole:

- a GPU event goes where the call that launched it is (its correlation id's
  launch call), so launch and GPU work are always joined in one processor; a
  GPU event with no launch call goes by its own start;
- every other event goes to each shard its time overlaps: the launch calls,
  ops, frames and annotations around a call are all present where it is, so
  nesting (the op a call sits in, its annotation) is answered in full. Only GPU
  events are counted, and each is in exactly one shard.

Shard bounds are quantiles of those times, so shards get about equal events,
and none is empty.
"""

from __future__ import annotations

import numpy as np

from traceview.engine.kineto.arrays import distinct, first_of_runs
from traceview.engine.kineto.kinds import MEMSET

# A shard per this much canonical JSON, at most one per core and MAX_SHARDS in all: each processor
# costs ~60 MB however little it holds, and below this it costs more than it saves.
SHARD_BYTES = 24 << 20
MAX_SHARDS = 8


def shard_count(fed_bytes: int, cores: int, asked: int | None) -> int:
    if asked is not None:
        return max(1, asked)
    return max(1, min(cores, MAX_SHARDS, fed_bytes // SHARD_BYTES))


def assign(kind: np.ndarray, ts: np.ndarray, dur: np.ndarray, corr: np.ndarray, keep: np.ndarray,
           launches: np.ndarray, shards: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) shard of every event; only kept events matter."""
    gpu = kind <= MEMSET  # GPU kinds are the smallest codes
    anchor = ts.copy()
    launch = np.flatnonzero(launches)
    if launch.size:
        order = np.argsort(corr[launch], kind="stable")
        ordered = corr[launch][order]
        first = first_of_runs(ordered)
        ids, launch_ts = ordered[first], ts[launch][order][first]
        gpu_idx = np.flatnonzero(gpu & (corr >= 0))
        at = np.searchsorted(ids, corr[gpu_idx])
        found = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == corr[gpu_idx])
        anchor[gpu_idx[found]] = launch_ts[at[found]]
    # Bounds at distinct times, the first after the earliest: every shard holds something.
    times = distinct(anchor[keep])
    at = (np.arange(1, shards) * len(times)) // shards
    cuts = np.unique(times[at[at >= 1]])
    lo = np.searchsorted(cuts, anchor, side="right").astype(np.int32)
    last = np.where(gpu, anchor, np.maximum(ts, ts + dur - 1))
    hi = np.searchsorted(cuts, last, side="right").astype(np.int32)
    return lo, hi
