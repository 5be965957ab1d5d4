"""Launch budgets: the steady-state launches per step of a run, written as TOML, and a run checked against them.

``budget write`` keeps one entry per category (every category of the rules,
zeros included: a fill that appears later is a growth from 0), per kernel name
(``--by kernel``) or per launching Python frame (``--by frame``). ``compare``
finds the entries a run grew beyond a tolerance (a failure), and those it shrank
(a pass, with a note to lock the gain in). An entry the budget lacks is a growth
from 0. File format: docs/ci.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from traceview.analyses.check import CheckResult
from traceview.analyses.expectations import AGGREGATES, EPS, FINDING_COLUMNS, unknown_category
from traceview.errors import RulesError, TraceviewError
from traceview.model.categories import category_order, load_category_rules
from traceview.model.counts import LaunchCounts
from traceview.model.rules import checked_table, read_toml

# What an entry is keyed by, for each --by.
KEYS = {"category": ("category",), "kernel": ("category", "kernel"), "frame": ("category", "frame")}
_TOLERANCE = re.compile(r"^\s*(?P<n>\d+(?:\.\d*)?|\.\d+)\s*(?P<pct>%)?\s*$")
_COMMENT = re.compile(r"^#\s*(?P<key>rules|skip):\s*(?P<value>\S+)", re.MULTILINE)
COMPARE_COLUMNS = ["category", "kernel", "frame", "budget", "actual", "delta", "allowed", "status", "op"]


@dataclass(frozen=True)
class Tolerance:
    """How far an entry may grow: ``amount`` launches per step, or ``amount`` % of the entry's budget."""

    amount: float = 0.0
    percent: bool = False

    def allowed(self, budget: float) -> float:
        return budget * self.amount / 100 if self.percent else self.amount

    def __str__(self) -> str:
        return f"{self.amount:g}{'%' if self.percent else ''}"


def parse_tolerance(text: str | None) -> Tolerance:
    """``"2"`` (launches per step) or ``"5%"`` (of each entry's budget); RulesError otherwise."""
    if text is None:
        return Tolerance()
    match = _TOLERANCE.match(text)
    if match is None:
        raise RulesError(None, f"--tolerance {text!r}: expected N (launches per step) or P% (of each budget entry), "
                               "e.g. --tolerance 2 or --tolerance 5%")
    return Tolerance(float(match["n"]), bool(match["pct"]))


@dataclass(frozen=True)
class Budget:
    """``entries``: KEYS[by] columns (string) and ``per_step`` (float64), plus ``op`` (string, who launched it
    when written; informational). ``rules``/``skip``: what the file's comments say it was written with."""

    by: str
    entries: pd.DataFrame
    source: str
    rules: str | None = None
    skip: int | None = None


def rules_digest(rules_path: Path | None = None) -> str:
    """``sha256:<hex>`` of the category rules in use (``--rules FILE``, or the packaged categories.toml)."""
    data = (Path(rules_path).read_bytes() if rules_path is not None
            else (resources.files("traceview.rules") / "categories.toml").read_bytes())
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _require_frames(counts: Sequence[LaunchCounts]) -> None:
    if not any(c.python_frames for c in counts):
        raise TraceviewError(counts[0].path, "has no Python frames (recorded without with_stack), so --by frame has "
                                             "nothing to key on: record with with_stack=True, or use --by category "
                                             "or --by kernel")


def launches_by(counts: Sequence[LaunchCounts], by: str, skip: int = 0) -> pd.DataFrame:
    """Launches per steady step of one run (its ranks averaged) keyed by ``by``.

    Columns: category, kernel, frame (string; "" = not a key, or no frame), per_step (float64), op (string: the
    launching op with the most launches, else the launch API, e.g. cudaGraphLaunch for a replay), top_frame
    (string: the launching frame with the most launches, "" when none). For ``by="category"`` every category
    of the rules is a row, zeros included. Raises TraceviewError for ``by="frame"`` without Python frames.
    """
    if by == "frame":
        _require_frames(counts)
    keys = list(KEYS[by])
    parts = []
    for one in counts:
        rows, steps = one.steady_launches(skip)
        rows = rows.assign(kernel=rows["kernel"].fillna("") if by == "kernel" else "",
                           frame=rows["frame"].fillna("") if by == "frame" else "",
                           who=rows["op"].fillna(rows["launch_api"] + " under " + rows["annotation"])
                           .fillna(rows["launch_api"]).fillna(""), where=rows["frame"].fillna(""))
        parts.append(rows.assign(per_step=rows["launches"] / max(steps, 1)))
    rows = pd.concat(parts, ignore_index=True)
    out = (rows.groupby(keys, observed=True, dropna=False)["per_step"].sum() / len(counts)).reset_index()
    for column in ("kernel", "frame"):
        if column not in keys:
            out[column] = ""
    index = pd.MultiIndex.from_frame(out[keys])
    out["op"] = _top(rows, keys, "who").reindex(index).fillna("").to_numpy()
    out["top_frame"] = _top(rows, keys, "where").reindex(index).fillna("").to_numpy()
    if by == "category":
        names = list(dict.fromkeys(c for one in counts for c in one.categories))
        out = out.set_index("category").reindex(names).rename_axis("category").reset_index()
        out = out.fillna({"per_step": 0.0, "kernel": "", "frame": "", "op": "", "top_frame": ""})
    columns = ["category", "kernel", "frame", "per_step", "op", "top_frame"]
    return out[columns].astype({c: "string" for c in columns if c != "per_step"} | {"per_step": "float64"})


def _top(rows: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    """Per key, the value of ``column`` with the most launches (ties: the first in sort order), indexed by the
    keys; keys whose rows all have ``column`` unset are absent. One grouping for all keys."""
    set_rows = rows[rows[column] != ""]
    sums = set_rows.groupby([*keys, column], observed=True, dropna=False)["launches"].sum().reset_index()
    top = sums.sort_values("launches", ascending=False, kind="stable").drop_duplicates(keys, keep="first")
    return top.set_index(keys)[column].astype(object)


def _toml_number(value: float) -> str:
    return str(int(round(value))) if abs(value - round(value)) < EPS else repr(round(value, 6))


def budget_toml(table: pd.DataFrame, by: str, header: Sequence[str]) -> str:
    """The budget file: ``header`` lines as comments, then one ``[[budget]]`` table per row of ``launches_by``."""
    lines = [f"# {line}" for line in header] + ["schema_version = 1", f"by = {json.dumps(by)}", ""]
    for row in table.itertuples(index=False):
        lines.append("[[budget]]")
        lines += [f"{key} = {json.dumps(str(getattr(row, key)))}" for key in KEYS[by]]
        lines.append(f"per_step = {_toml_number(float(row.per_step))}")
        if by != "category" and row.op:
            lines.append(f"op = {json.dumps(str(row.op))}  # launched by, when written")
        lines.append("")
    return "\n".join(lines)


def load_budget(path: Path) -> Budget:
    """Reads a budget file; RulesError (one line naming the file and the entry) when it is malformed."""
    data, source = read_toml(Path(path), "")
    by = data.get("by")
    if by not in KEYS:
        raise RulesError(source, f"by must be one of {', '.join(KEYS)}, got {by!r}")
    unknown = set(data) - {"schema_version", "by", "budget"}
    if unknown:
        raise RulesError(source, f"unknown key(s) {', '.join(sorted(unknown))}")
    entries = data.get("budget")
    if not isinstance(entries, list) or not entries:
        raise RulesError(source, "needs [[budget]] tables (traceview budget write TRACE -o FILE writes one)")
    rows = []
    for i, entry in enumerate(entries, 1):
        where = f"budget #{i}"
        entry = checked_table(entry, set(KEYS[by]) | {"per_step", "op"}, source, where)
        for key in KEYS[by]:
            if not isinstance(entry.get(key), str):
                raise RulesError(source, f"{where}: {key} must be a string")
        value = entry.get("per_step")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise RulesError(source, f"{where}: per_step must be a finite number >= 0, got {value!r}")
        rows.append({**{k: entry[k] for k in KEYS[by]}, "per_step": float(value), "op": str(entry.get("op", ""))})
    frame = pd.DataFrame(rows)
    duplicated = frame.duplicated(list(KEYS[by]))
    if duplicated.any():
        raise RulesError(source, f"budget #{int(duplicated.idxmax()) + 1}: the same {by} twice")
    comments = {m["key"]: m["value"] for m in _COMMENT.finditer(Path(path).read_text(encoding="utf-8"))}
    skip = int(comments["skip"]) if comments.get("skip", "").isdigit() else None
    return Budget(by, frame, source, comments.get("rules"), skip)


@dataclass(frozen=True)
class BudgetResult:
    """``entries``: COMPARE_COLUMNS, one row per budget entry and per entry the run has and the budget lacks;
    budget, actual, delta (actual - budget), allowed (growth the tolerance allows): launches per step, float64;
    status ``ok``, ``grown`` (beyond the tolerance: a failure), ``new`` (not in the budget and launched now: a
    failure too) or ``shrunk``; op: who launches it now, with the
    frame (``op @ frame``) where the run has one. ``notes``: what the reader should know (shrinks, a budget
    written with other rules or another --skip)."""

    passed: bool
    entries: pd.DataFrame
    notes: tuple[str, ...]
    source: str
    by: str


def _label(row, by: str) -> str:
    return {"category": row.category, "kernel": f"{row.category}: {row.kernel}",
            "frame": f"{row.category} @ {row.frame or '(no frame)'}"}[by]


def compare(budget: Budget, counts: Sequence[LaunchCounts], tolerance: Tolerance = Tolerance(), skip: int = 0,
            rules: str | None = None) -> BudgetResult:
    """Checks one run (its ranks averaged) against ``budget``; ``rules``: ``rules_digest`` of the rules in use.

    Raises TraceviewError when the run holds no GPU events (every entry would shrink to 0: proof of nothing).
    """
    if not sum(c.total_gpu_events for c in counts):
        raise TraceviewError(counts[0].path, "holds no GPU events (GPU activity not recorded, or a CPU-only run), "
                                             "so every launch count is 0: the budget cannot be checked")
    keys = list(KEYS[budget.by])
    actual = launches_by(counts, budget.by, skip)
    written = budget.entries[keys + ["per_step"]].rename(columns={"per_step": "budget"})
    merged = written.assign(order=range(len(written)), written=True).merge(
        actual.rename(columns={"per_step": "actual"}), on=keys, how="outer", sort=False)
    # The budget's order, then entries it lacks, as the run has them.
    merged = merged.sort_values("order", na_position="last", kind="stable").drop(columns="order")
    merged[["budget", "actual"]] = merged[["budget", "actual"]].fillna(0.0)
    merged = merged.fillna({"kernel": "", "frame": "", "op": "", "top_frame": ""})
    merged["delta"] = merged["actual"] - merged["budget"]
    merged["allowed"] = [tolerance.allowed(b) for b in merged["budget"]]
    grown = merged["delta"] > merged["allowed"] + EPS
    new = merged["written"].isna().to_numpy()
    merged["status"] = [("new" if n else "grown") if g else ("shrunk" if d < -EPS else "ok")
                        for g, d, n in zip(grown, merged["delta"], new)]
    merged["op"] = [op + (f" @ {frame}" if frame and budget.by != "frame" else "")
                    for op, frame in zip(merged["op"], merged["top_frame"])]
    notes = [f"{_label(r, budget.by)} shrank {r.delta:+g}/step ({r.budget:g} -> {r.actual:g}): lock it in with "
             "traceview budget write" for r in merged.itertuples(index=False) if r.status == "shrunk"]
    if rules is not None and budget.rules is not None and rules != budget.rules:
        notes.append(f"{budget.source} was written with other category rules ({budget.rules[:19]}…): "
                     "entries may have moved between categories")
    if budget.skip is not None and budget.skip != skip:
        notes.append(f"{budget.source} was written with --skip {budget.skip}, checked with --skip {skip}")
    entries = merged[COMPARE_COLUMNS].astype({c: "string" for c in ("category", "kernel", "frame", "status", "op")})
    return BudgetResult(not grown.any(), entries.reset_index(drop=True), tuple(notes), budget.source, budget.by)


def grown_lines(result: BudgetResult) -> list[str]:
    """One readable line per grown entry: ``cast: 2 -> 60 per step (+58, allowed +0), launched by aten::copy_``."""
    return [f"{_label(r, result.by)}: {r.budget:g} -> {r.actual:g} per step ({r.delta:+g}, allowed +{r.allowed:g})"
            + (f", launched by {r.op}" if r.op else "")
            for r in result.entries.itertuples(index=False) if r.status in ("grown", "new")]


def as_findings(result: BudgetResult) -> pd.DataFrame:
    """The comparison as expectation findings (expectations.FINDING_COLUMNS), one per entry: ``label <= budget``
    with the tolerance's allowance, so that every check output (table, markdown, JSON, JUnit) shows it."""
    name = Path(result.source).name
    rows = []
    for r in result.entries.itertuples(index=False):
        said = f"{name} budget" + (f": {r.delta:+g}/step" if r.status != "ok" else "")
        if r.status in ("grown", "new") and r.op:
            said += f", launched by {r.op}"
        why = ("shrank: lock it in with traceview budget write" if r.status == "shrunk" else
               ("new: not in the budget" if r.status == "new" else ""))
        rows.append({"category": _label(r, result.by), "field": "value", "op": "<=", "expected": r.budget,
                     "tolerance": r.allowed, "actual": r.actual, "ok": r.status not in ("grown", "new"),
                     "skipped": False, "expression": said, "why": why, "unit": ""})
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    return frame.astype({"category": "string", "field": "string", "op": "string", "expected": "float64",
                         "tolerance": "float64", "actual": "float64", "ok": "bool", "skipped": "bool",
                         "expression": "string", "why": "string"})


def with_budget(check: CheckResult, result: BudgetResult) -> CheckResult:
    """``check``'s findings followed by the budget's; passed when both pass."""
    findings = as_findings(result)
    frames = [f for f in (check.findings, findings) if not f.empty]
    merged = pd.concat(frames, ignore_index=True) if frames else check.findings
    return CheckResult(check.passed and result.passed, merged)


@dataclass(frozen=True)
class Limits:
    """``check --budget FILE --tolerance T``: the budget, read before any trace loads, and how to apply it."""

    budget: Budget
    tolerance: Tolerance
    rules: str

    @classmethod
    def read(cls, path: Path | None, tolerance: str | None, rules_path: Path | None = None) -> Limits | None:
        """None without a budget; RulesError for a bad budget file, a bad tolerance, or a tolerance alone."""
        if path is None:
            if tolerance is not None:
                raise RulesError(None, "--tolerance applies to a --budget: give one")
            return None
        budget = load_budget(path)
        if budget.by == "category":  # a misspelled category would only ever "shrink" to 0: refuse it
            known = [*category_order(load_category_rules(rules_path)), *AGGREGATES]
            for name in budget.entries["category"]:
                if name not in known:
                    raise unknown_category(name, known, budget.source)
        return cls(budget, parse_tolerance(tolerance), rules_digest(rules_path))

    def apply(self, check: CheckResult, counts: Sequence[LaunchCounts],
              skip: int) -> tuple[CheckResult, tuple[str, ...]]:
        """``check`` with one finding per budget entry added (``with_budget``), and the comparison's notes
        (failures are check's own FAILED lines, each naming the entry and its launching op)."""
        result = compare(self.budget, counts, self.tolerance, skip, self.rules)
        return with_budget(check, result), result.notes
