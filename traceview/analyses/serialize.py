"""Versioned JSON documents (plain dicts) for diff and check results.

(``traceview.counts/2`` is ``traceview.model.counts.counts_document``.)

Shapes are documented in docs/json-schema.md and pinned by docs/schemas/*.json.
A new key is a compatible change; renaming or removing one bumps the ``/1``.
"""

from __future__ import annotations

import pandas as pd

from traceview.analyses.check import CheckResult, RunCheck, all_passed
from traceview.analyses.diff import DiffResult
from traceview.analyses.latency import LatencyVerdict
from traceview.analyses.summary import Side, nan_to_none

DIFF_SCHEMA = "traceview.diff/2"
CHECK_SCHEMA = "traceview.check/2"
CHECK_MANY_SCHEMA = "traceview.check-many/2"


def _text(value: object) -> str | None:
    return None if value is None or value is pd.NA or value == "" else str(value)


def side_to_dict(side: Side) -> dict:
    """``{"label", "path", "steps", "step_ms", "step_ms_median", "gpu_busy_ms", "step_marker", "ranks": [...]}``."""
    ranks = [{"path": row.path, "steps": int(row.steps), "step_ms": nan_to_none(row.step_ms_mean),
              "step_ms_median": nan_to_none(row.step_ms_median), "gpu_busy_ms": nan_to_none(row.gpu_busy_ms_mean),
              "total": nan_to_none(row.total_mean)} for row in side.ranks.itertuples(index=False)]
    return {"label": side.label, "path": side.path, "steps": side.steps, "step_ms": nan_to_none(side.step_ms_mean),
            "step_ms_median": nan_to_none(side.step_ms_median), "gpu_busy_ms": nan_to_none(side.gpu_busy_ms_mean),
            "step_marker": side.step_marker, "ranks": ranks}


def findings_to_list(result: CheckResult) -> list[dict]:
    """One dict per expectation: category, field, op, expected, tolerance, actual, ok, skipped, expression, why,
    unit ("ms" or "%" for latency, whose ``actual`` is the end of the 95 % interval that decides it; else null)."""
    out = []
    for row in result.findings.itertuples(index=False):
        out.append({"category": row.category, "field": row.field, "op": row.op, "expected": float(row.expected),
                    "tolerance": float(row.tolerance), "actual": nan_to_none(row.actual), "ok": bool(row.ok),
                    "skipped": bool(row.skipped), "expression": row.expression, "why": _text(row.why),
                    "unit": _text(row.unit)})
    return out


def _kernel_rows(frame: pd.DataFrame, extra: list[str]) -> list[dict]:
    rows = []
    for row in frame.to_dict("records"):
        item = {key: _text(row[key]) for key in ("category", "kernel", "src_dtype", "dst_dtype", "op",
                                                  "annotation", "launch_api")}
        item.update({key: (nan_to_none(row[key]) if not isinstance(row[key], str) else row[key]) for key in extra})
        rows.append(item)
    return rows


def _source_rows(diff: DiffResult) -> list[dict]:
    return [{"category": row.category, "frame": _text(row.frame), "before_per_step": float(row.before_per_step),
             "after_per_step": float(row.after_per_step), "delta": float(row.delta)}
            for row in diff.sources.itertuples(index=False)]


def latency_to_dict(verdict: LatencyVerdict, leads: bool) -> dict:
    """``{"metric", "leads", "before": {"n", "runs", "median_ms", "mean_ms"}, "after": {…}, "delta_ms",
    "delta_pct", "ci95_ms": [lo, hi], "ci95_pct": [lo, hi], "verdict", "resamples", "seed"}``."""
    def side(summary) -> dict:
        return {"n": summary.n, "runs": summary.runs, "median_ms": summary.median_ms, "mean_ms": summary.mean_ms}

    return {"metric": verdict.metric, "leads": leads, "before": side(verdict.before), "after": side(verdict.after),
            "delta_ms": verdict.delta_ms, "delta_pct": nan_to_none(verdict.delta_pct),
            "ci95_ms": list(verdict.ci95_ms), "ci95_pct": [nan_to_none(x) for x in verdict.ci95_pct],
            "verdict": verdict.verdict, "resamples": verdict.resamples, "seed": verdict.seed}


def diff_to_dict(diff: DiffResult, check: CheckResult, skip: int, kernel_limit: int | None = 20) -> dict:
    """The ``traceview.diff/2`` document; ``kernels`` lists the ``kernel_limit`` biggest changes."""
    categories = {row.category: {"before": row.before_mean, "after": row.after_mean, "delta": row.delta_mean,
                                 "before_median": row.before_median, "after_median": row.after_median,
                                 "delta_median": row.delta_median}
                  for row in diff.categories.itertuples(index=False)}
    lat = diff.latency.set_index("metric")
    step, median, gpu = lat.loc["step_ms_mean"], lat.loc["step_ms_median"], lat.loc["gpu_busy_ms_mean"]
    step_times = {"before_ms": nan_to_none(step["before"]), "after_ms": nan_to_none(step["after"]),
                  "delta_ms": nan_to_none(step["delta"]), "delta_pct": nan_to_none(step["delta_pct"]),
                  "before_median_ms": nan_to_none(median["before"]), "after_median_ms": nan_to_none(median["after"]),
                  "gpu_busy_before_ms": nan_to_none(gpu["before"]), "gpu_busy_after_ms": nan_to_none(gpu["after"]),
                  "gpu_busy_delta_ms": nan_to_none(gpu["delta"])}
    verdicts = [latency_to_dict(v, v.metric == diff.leading) for v in diff.latencies]
    leading = next((v for v in verdicts if v["leads"]), None)
    kernels = _kernel_rows(diff.changed_kernels(kernel_limit), ["before_per_step", "after_per_step", "delta",
                                                                "change"])
    return {"schema": DIFF_SCHEMA, "skip": skip, "before": side_to_dict(diff.before),
            "after": side_to_dict(diff.after), "categories": categories, "latency": leading,
            "latency_metrics": verdicts, "step_times": step_times, "sources": _source_rows(diff), "kernels": kernels,
            "expectations": findings_to_list(check), "warnings": list(diff.warnings),
            "notes": list(diff.source_notes), "ok": check.passed}


def check_to_dict(side: Side, check: CheckResult, skip: int) -> dict:
    """The ``traceview.check/2`` document."""
    categories = {name: {stat: float(side.categories.at[name, stat]) for stat in ("mean", "median", "min", "max")}
                  for name in side.categories.index}
    latency = {"step_ms": nan_to_none(side.step_ms_mean), "step_ms_median": nan_to_none(side.step_ms_median),
               "gpu_busy_ms": nan_to_none(side.gpu_busy_ms_mean)}
    return {"schema": CHECK_SCHEMA, "skip": skip, "counts": side_to_dict(side), "categories": categories,
            "latency": latency, "expectations": findings_to_list(check), "warnings": list(side.warnings),
            "ok": check.passed}


def check_many_to_dict(checks: list[RunCheck], skip: int) -> dict:
    """The ``traceview.check-many/2`` document: ``runs`` holds each run's ``traceview.check/2`` document,
    in input order; ``ok`` is true when every run's ``ok`` is."""
    return {"schema": CHECK_MANY_SCHEMA, "skip": skip,
            "runs": [check_to_dict(run.side, run.result, skip) for run in checks], "ok": all_passed(checks)}
