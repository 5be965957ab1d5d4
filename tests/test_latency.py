"""Latency bootstrap: step lists whose answer is known, run-to-run noise, reproducibility, and
``latency`` expectations decided by the confidence interval."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from itertools import product
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from traceview.analyses.expectations import evaluate, parse_expectation
from traceview.analyses.latency import (
    FASTER,
    NO_CHANGE,
    SLOWER,
    LatencySummary,
    LatencyVerdict,
    bootstrap_latency,
    latency_actual,
    latency_holds,
    leading_metric,
    step_latencies,
)
from traceview.model.counts import analyze

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "demo_stack_eager_before.pt.trace.json.gz"


def normal_steps(n: int, median: float, sd: float) -> np.ndarray:
    """``n`` step latencies at the normal quantiles (i + 0.5) / n: a sample with a known median."""
    return np.array([median + sd * NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])


def test_identical_lists_show_no_change():
    steps = normal_steps(500, 20.0, 0.5)
    v = bootstrap_latency(steps, steps.copy())
    assert v.delta_ms == 0.0 and v.delta_pct == 0.0
    assert v.ci95_ms[0] < 0 < v.ci95_ms[1] and v.ci95_pct[0] < 0 < v.ci95_pct[1]
    assert v.verdict == NO_CHANGE
    assert v.before == v.after
    assert (v.before.n, v.before.runs) == (500, 1) and v.before.median_ms == v.before.mean_ms == pytest.approx(20.0)


def test_a_one_ms_shift_is_faster():
    before = normal_steps(500, 20.0, 0.5)
    noise = np.where(np.arange(500) % 2 == 0, 0.01, -0.01)  # small, and symmetric
    after = before - 1.0 + noise
    v = bootstrap_latency(before, after, metric="gpu_span_ms")
    assert v.metric == "gpu_span_ms" and v.verdict == FASTER
    assert v.delta_ms == pytest.approx(-1.0, abs=0.01) and v.delta_pct == pytest.approx(-5.0, abs=0.05)
    # Median standard error of n normal steps: 1.2533 sd / sqrt(n) = 0.028 ms per side; of the
    # difference of two independent sides sqrt(2) times that, 0.040 ms; so the 95 % interval is
    # about -1 +- 1.96 * 0.040 = -1 +- 0.078 (half-width 0.06..0.10 allowing for resampling).
    lo, hi = v.ci95_ms
    assert -1.10 < lo < -1.04 and -0.96 < hi < -0.90
    assert hi < 0  # excludes 0: that is why it is "faster"
    assert -5.5 < v.ci95_pct[0] < v.ci95_pct[1] < -4.5  # the same interval in percent of 20 ms
    assert bootstrap_latency(after, before).verdict == SLOWER


def _runs(offsets: list[float], steps: int = 300) -> list[np.ndarray]:
    # Each run's steps sit within +-0.01 ms of its own level: run-to-run offsets dominate.
    return [level + np.linspace(-0.01, 0.01, steps) for level in offsets]


def test_run_to_run_offsets_widen_the_interval():
    before = _runs([10.0, 10.3, 10.6])
    after = _runs([9.9, 10.2, 10.5])  # every run 0.1 ms faster, but runs differ by 0.3 ms

    # Pooling the steps as one run hides the run offsets: the median stays in the middle
    # run's narrow block, so the interval is -0.1 ms +- a few microseconds and excludes 0.
    pooled = bootstrap_latency(np.concatenate(before), np.concatenate(after))
    assert pooled.verdict == FASTER and -0.11 < pooled.ci95_ms[0] <= pooled.ci95_ms[1] < -0.09

    # Hierarchically, a resample's median is the median of 3 runs drawn with replacement from
    # 3 (steps within a run are all but equal): the lowest run's level when it is drawn at least
    # twice, P = (3*2 + 1)/27 = 7/27, the highest likewise, the middle 13/27. Enumerating the
    # 27 x 27 equally likely draws of both sides gives the change's distribution exactly.
    levels_b, levels_a = (10.0, 10.3, 10.6), (9.9, 10.2, 10.5)
    changes = sorted(np.median([levels_a[i] for i in da]) - np.median([levels_b[i] for i in db])
                     for da in product(range(3), repeat=3) for db in product(range(3), repeat=3))
    # -0.7 with 49/729 = 6.7 % and +0.5 with 6.7 %: the 2.5th and 97.5th percentiles sit on them.
    low, high = changes[int(0.025 * len(changes))], changes[int(0.975 * len(changes))]
    assert (round(low, 6), round(high, 6)) == (-0.7, 0.5)
    v = bootstrap_latency(before, after)
    assert v.before.runs == v.after.runs == 3 and v.before.n == 900
    assert v.ci95_ms[0] == pytest.approx(low, abs=0.02) and v.ci95_ms[1] == pytest.approx(high, abs=0.02)
    assert v.verdict == NO_CHANGE
    assert v.delta_ms == pytest.approx(-0.1)  # the point estimate is the pooled medians' change either way


def test_runs_of_different_lengths():
    # Uneven runs take the sorting path; its answer must agree with the statistics of the data:
    # two runs per side, all steps at one level per side, so every resample's change is exact.
    before = [np.full(40, 12.0), np.full(70, 12.0)]
    after = [np.full(55, 11.0), np.full(30, 11.0), np.full(10, 11.0)]
    v = bootstrap_latency(before, after, resamples=1000)
    assert v.ci95_ms == (-1.0, -1.0) and v.verdict == FASTER
    assert v.ci95_pct == pytest.approx((-100 / 12, -100 / 12))
    assert (v.before.n, v.before.runs, v.after.n, v.after.runs) == (110, 2, 95, 3)


def test_same_seed_same_interval():
    # (What it costs is measured in benchmarks/bench_latency.py: tests do not assert timings.)
    rng = np.random.default_rng(7)
    before, after = rng.normal(41.5, 0.6, 1000), rng.normal(41.4, 0.6, 1000)
    first = bootstrap_latency(before, after)
    assert first == bootstrap_latency(before, after) and first.seed == 0 and first.resamples == 10_000
    other = bootstrap_latency(before, after, seed=1)
    assert other.ci95_ms != first.ci95_ms and other.delta_ms == first.delta_ms


def test_bad_inputs_raise():
    for before, after in (([], [1.0]), ([[1.0], []], [1.0]), ([1.0, float("nan")], [1.0])):
        with pytest.raises(ValueError):
            bootstrap_latency(before, after)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_latency([1.0], [1.0], resamples=10)


def test_leading_metric():
    assert leading_metric([10.0, 10.2, 9.9], [12.0, 11.0, 12.5]) == "gpu_span_ms"  # GPU median 12 > 10
    assert leading_metric([[10.0, 10.1], [10.2]], [[9.0], [9.5, 9.9]]) == "cpu_step_ms"  # 10.1 > 9.5
    assert leading_metric([5.0], [5.0]) == "cpu_step_ms"  # a tie goes to the CPU


def test_step_latencies_from_counts():
    # The ProfilerStep#N events' own durations in the raw JSON (microseconds, three decimals).
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        events = json.load(fh, parse_float=Decimal)["traceEvents"]
    steps = sorted((e["ts"], e["dur"]) for e in events
                   if e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep#"))
    assert len(steps) == 3
    cpu = step_latencies(analyze(SAMPLE), "cpu_step_ms", skip=1)
    assert len(cpu) == 1 and cpu[0].tolist() == pytest.approx([float(d) / 1000 for _, d in steps[1:]], abs=1e-9)
    gpu = step_latencies([analyze(SAMPLE)] * 2, "gpu_span_ms", skip=1)
    assert len(gpu) == 2 and len(gpu[0]) == 2 and (gpu[0] > 0).all()
    with pytest.raises(ValueError, match="unknown latency metric"):
        step_latencies(analyze(SAMPLE), "wall_ms")


def _verdict(ci_ms: tuple[float, float], ci_pct: tuple[float, float]) -> LatencyVerdict:
    side = LatencySummary(100, 1, 40.0, 40.0)
    return LatencyVerdict("cpu_step_ms", side, side, sum(ci_ms) / 2, sum(ci_pct) / 2, ci_ms, ci_pct,
                          FASTER if ci_ms[1] < 0 else NO_CHANGE, 10_000, 0)


@pytest.mark.parametrize("text, holds", [
    ("latency<0", True),  # the whole interval (-1.2, -0.8) ms is below 0
    ("latency<=-0.5ms", True),
    ("latency<=-0.8ms", True),  # inclusive at the upper end
    ("latency<-0.8ms", False),
    ("latency<=-1ms", False),  # -0.8 is not <= -1: part of the interval is above
    ("latency<=-1.9%", True),  # (-3.0, -1.9) %
    ("latency<=-2%", False),
    ("latency>=-1.5ms", True),  # the lower end -1.2 is >= -1.5
    ("latency>-1.2ms", False),
    ("latency>0", False),
    ("latency=-1ms\u00b10.2", True),  # both ends within 0.2 ms of -1
    ("latency=-1ms\u00b10.1", False),
    ("latency=-2.5%\u00b10.6%", True),
])
def test_latency_expectations_use_the_interval(text, holds):
    v = _verdict((-1.2, -0.8), (-3.0, -1.9))
    exp = parse_expectation(text, ("cast",))
    assert exp.category == "latency" and exp.unit in ("ms", "%")
    assert latency_holds(exp, v) is holds
    findings = evaluate([exp], lambda e: latency_actual(e, v))
    assert findings["ok"].tolist() == [holds]


def test_an_interval_across_zero_is_neither_faster_nor_slower():
    v = _verdict((-0.3, 0.2), (-0.75, 0.5))
    assert not latency_holds(parse_expectation("latency<0", ()), v)
    assert not latency_holds(parse_expectation("latency>0", ()), v)
    assert latency_holds(parse_expectation("latency<=0.5%", ()), v)


@pytest.mark.parametrize("text, reason", [
    ("latency<=-2", "latency needs a unit"),
    ("cast<=4ms", "only latency takes a unit"),
    ("latency<=-2%\u00b11ms", "different units"),
])
def test_latency_expectation_errors(text, reason):
    from traceview.errors import RulesError

    with pytest.raises(RulesError, match=reason):
        parse_expectation(text, ("cast",))
    with pytest.raises(RulesError, match="only a delta"):
        parse_expectation("latency<0", ("cast",), field="value")
