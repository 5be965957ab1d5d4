"""The plan's sort-based set operations answer exactly as np.unique does (engine/kineto/arrays.py)."""

from __future__ import annotations

import numpy as np
import pytest

from traceview.engine.kineto.arrays import distinct, distinct_pairs, first_of_runs, member


@pytest.mark.parametrize("n", [0, 1, 7, 5000])
def test_same_answers_as_np_unique(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.integers(-3, 60, n) * 1_000_000_007 + 1_712_195_495_000_000_000  # epoch-scale, with repeats
    pid = rng.integers(0, 3, n)
    assert np.array_equal(distinct(values), np.unique(values))
    got, want = distinct(values, counts=True), np.unique(values, return_counts=True)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    if n:
        want_pairs = np.unique(np.stack([values, pid]), axis=1)
        assert all(np.array_equal(g, w) for g, w in zip(distinct_pairs(values, pid), want_pairs))
    ordered = np.sort(values)
    assert np.array_equal(first_of_runs(ordered), np.unique(ordered, return_index=True)[1])
    some = values[::3]
    assert np.array_equal(member(values, some), np.isin(values, some))
    assert np.array_equal(member(values, some[:0]), np.isin(values, some[:0]))
