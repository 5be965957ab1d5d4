"""Expectations on per-step counts: ``--expect cast=-58``, ``fill<=4``, ``metadata=-1±0.5``, or a TOML file.

An expectation names a category of the rules, an aggregate row (``total``,
``graph_replayed``, ``direct``) or a latency (``step_ms``, ``step_pct``), an
operator, a number and a tolerance. ``latency`` is the bootstrapped change of the
median step latency (analyses/latency.py): its number has a unit, ``ms`` or ``%``
(``latency<0``, ``latency<=-2%``, ``latency<=-0.5ms``), and it is checked against the
95 % confidence interval, not one number: ``<`` and ``<=`` hold when the whole
interval is below, ``>`` and ``>=`` when it is above, ``=`` when it lies within the
tolerance. ``diff`` checks ``delta`` expectations
against after-minus-before per-step means and ``value`` expectations against
the after side; ``check`` checks ``value`` expectations against one trace.
File format (``schema_version = 1``): see docs/json-schema.md#expectation-files.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from traceview.errors import RulesError
from traceview.model.rules import checked_table, read_toml

AGGREGATES = ("total", "graph_replayed", "direct")
LATENCY = ("step_ms", "step_pct")
# The bootstrapped median-latency change (a diff's delta only); its expected number carries a unit.
LATENCY_CI = "latency"
LATENCY_UNITS = ("ms", "%")
# Per-step means are float averages of integers: EPS absorbs their rounding, widening the
# inclusive operators and narrowing the strict ones (4 - 1e-13 is not < 4).
EPS = 1e-9
OPS: dict[str, Callable[[float, float, float], bool]] = {
    "=": lambda actual, expected, tol: abs(actual - expected) <= tol + EPS,
    "<=": lambda actual, expected, tol: actual <= expected + tol + EPS,
    ">=": lambda actual, expected, tol: actual >= expected - tol - EPS,
    "<": lambda actual, expected, tol: actual < expected + tol - EPS,
    ">": lambda actual, expected, tol: actual > expected - tol + EPS,
}
FIELDS = ("delta", "value")
FINDING_COLUMNS = ["category", "field", "op", "expected", "tolerance", "actual", "ok", "skipped", "expression", "why",
                   "unit"]
_NUMBER = r"[-+\u2212]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_UNIT = r"ms|%"
_EXPR = re.compile(rf"^\s*(?P<name>[A-Za-z_][\w-]*)\s*(?P<op>==|=|<=|>=|<|>)\s*(?P<value>{_NUMBER})"
                   rf"\s*(?P<unit>{_UNIT})?\s*(?:(?:\u00b1|\+-|\+/-)\s*(?P<tol>{_NUMBER})\s*(?P<tol_unit>{_UNIT})?)?\s*$")
_ALLOWED_KEYS = {"category", "delta", "value", "tolerance", "op", "why", "unit"}
EXPECTATIONS_PACKAGE = "expectations"


@dataclass(frozen=True)
class Expectation:
    """``category op expected ± tolerance`` on the per-step ``field`` (delta or value)."""

    category: str
    op: str
    expected: float
    tolerance: float
    field: str  # "delta" (diff: after - before) or "value" (check: one trace; diff: the after side)
    expression: str  # as the user wrote it, or "FILE_NAME expect #N"
    why: str = ""
    unit: str = ""  # "ms" or "%" for ``latency``; "" for every other name (launches per step, step_ms's ms)

    def holds(self, actual: float) -> bool:
        if math.isnan(actual):
            return False
        return OPS[self.op](actual, self.expected, self.tolerance)

    def describe(self) -> str:
        """``cast = -58 ± 0.5`` (tolerance only when non-zero)."""
        unit = f" {self.unit}" if self.unit else ""
        tol = f" \u00b1 {self.tolerance:g}{unit}" if self.tolerance else ""
        return f"{self.category} {self.op} {self.expected:g}{unit}{tol}"


def known_names(categories: Iterable[str]) -> tuple[str, ...]:
    """What an expectation may name: the rules' categories, the aggregate rows, the latencies."""
    return tuple(dict.fromkeys(list(categories) + list(AGGREGATES) + list(LATENCY)))


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def unknown_category(name: str, known: Iterable[str], source: str | None, where: str = "") -> RulesError:
    """The error for a category name the rules do not have, with the closest known name as a hint."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return RulesError(source, f"{where + ': ' if where else ''}unknown category {name!r}{hint} "
                              f"(known: {', '.join(known)})")


def _check_name(name: str, known: tuple[str, ...], source: str | None, where: str, field: str) -> None:
    # latency is always known: it names no category of the rules, and every diff has step latencies.
    if name not in known and name != LATENCY_CI:
        raise unknown_category(name, known + (LATENCY_CI,), source, where)
    if name == "step_pct" and field != "delta":
        raise RulesError(source, f"{where}: step_pct is a change in percent, only a delta (traceview diff)")
    if name == LATENCY_CI and field != "delta":
        raise RulesError(source, f"{where}: latency is a change between two runs, only a delta (traceview diff)")


def _unit(name: str, value: float, unit: str | None, tol_unit: str | None, source: str | None, where: str) -> str:
    """The unit of an expectation's number: ``ms`` or ``%`` for latency (0 needs none), none elsewhere."""
    if name != LATENCY_CI:
        if unit or tol_unit:
            raise RulesError(source, f"{where}: only latency takes a unit ({' or '.join(LATENCY_UNITS)}); "
                                     f"{name} is in its own units")
        return ""
    if unit and tol_unit and unit != tol_unit:
        raise RulesError(source, f"{where}: the number and its tolerance have different units ({unit}, {tol_unit})")
    unit = unit or tol_unit
    if unit is None and value != 0:
        raise RulesError(source, f"{where}: latency needs a unit, ms or %, e.g. latency<=-0.5ms or latency<=-2%")
    return unit or "ms"  # 0 ms and 0 % are the same bound


def parse_expectation(text: str, known: tuple[str, ...], field: str = "delta") -> Expectation:
    """Parses ``NAME OP NUMBER[±TOL]`` (``±``, ``+-`` or ``+/-``; ``OP`` one of = == <= >= < >).

    ``field`` says what the number is: ``delta`` (for diff) or ``value`` (for
    check). Raises RulesError naming the expression.
    """
    where = f"--expect {text!r}"
    match = _EXPR.match(text)
    if match is None:
        raise RulesError(None, f"{where}: expected CATEGORY OP NUMBER[±TOLERANCE], e.g. cast=-58, fill<=4, "
                               "metadata=-1±0.5, step_pct<=-2 or latency<=-2% (OP: = <= >= < >)")
    name = match["name"]
    _check_name(name, known, None, where, field)
    tol = _number(match["tol"]) if match["tol"] else 0.0
    if tol < 0:
        raise RulesError(None, f"{where}: tolerance must not be negative")
    value = _number(match["value"])
    unit = _unit(name, value, match["unit"], match["tol_unit"], None, where)
    op = "=" if match["op"] == "==" else match["op"]
    return Expectation(name, op, value, tol, field, text.strip(), unit=unit)


def _file_entry(entry: object, index: int, source: str, known: tuple[str, ...], shown: str) -> Expectation:
    where = f"expect #{index + 1}"
    entry = checked_table(entry, _ALLOWED_KEYS, source, where)
    name = entry.get("category")
    if not isinstance(name, str):
        raise RulesError(source, f"{where}: needs category = \"NAME\"")
    given = [f for f in FIELDS if f in entry]
    if len(given) != 1:
        raise RulesError(source, f"{where} ({name}): give exactly one of delta or value")
    field = given[0]
    _check_name(name, known, source, where, field)
    numbers = {key: entry.get(key, 0.0) for key in (field, "tolerance")}
    for key, number in numbers.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise RulesError(source, f"{where} ({name}): {key} must be a number, got {number!r}")
    if numbers["tolerance"] < 0:
        raise RulesError(source, f"{where} ({name}): tolerance must not be negative")
    op = entry.get("op", "=")
    op = "=" if op == "==" else op
    if op not in OPS:
        raise RulesError(source, f"{where} ({name}): op must be one of {', '.join(OPS)}, got {op!r}")
    why = entry.get("why", "")
    unit = entry.get("unit")
    if unit is not None and unit not in LATENCY_UNITS:
        raise RulesError(source, f"{where} ({name}): unit must be one of {', '.join(LATENCY_UNITS)}, got {unit!r}")
    unit = _unit(name, float(numbers[field]), unit, None, source, f"{where} ({name})")
    return Expectation(name, op, float(numbers[field]), float(numbers["tolerance"]), field,
                       f"{shown} {where}", str(why), unit)


def resolve_expect_file(path: str | Path) -> Path | None:
    """A user path as given, or a bare name like ``deepseek_v32_decode`` naming a shipped file.

    Returns None for the shipped file (``read_toml`` then reads it from the package).
    """
    path = Path(path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    shipped = resources.files("traceview.rules") / EXPECTATIONS_PACKAGE / f"{path.name}.toml"
    return None if shipped.is_file() else path


def load_expectation_file(path: str | Path, known: tuple[str, ...]) -> list[Expectation]:
    """Parses an expectation TOML file (or a shipped one by bare name). Raises RulesError."""
    resolved = resolve_expect_file(path)
    packaged = f"{EXPECTATIONS_PACKAGE}/{Path(path).name}.toml"
    data, source = read_toml(resolved, packaged)
    entries = data.get("expect")
    if not isinstance(entries, list) or not entries:
        raise RulesError(source, "needs at least one [[expect]] table")
    unknown = set(data) - {"schema_version", "expect", "description"}
    if unknown:
        raise RulesError(source, f"unknown top-level key(s) {', '.join(sorted(unknown))}")
    shown = resolved.name if resolved is not None else Path(packaged).name
    return [_file_entry(e, i, source, known, shown) for i, e in enumerate(entries)]


def gather(expressions: Iterable[str], files: Iterable[str | Path], known: tuple[str, ...],
           field: str = "delta") -> list[Expectation]:
    """``--expect`` expressions (read as ``field``) followed by every ``--expect-file``'s entries."""
    out = [parse_expectation(text, known, field) for text in expressions]
    for path in files:
        out += load_expectation_file(path, known)
    return out


def evaluate(expectations: Iterable[Expectation], actual: Callable[[Expectation], float | None]) -> pd.DataFrame:
    """Checks each expectation against ``actual(expectation)``; None means it does not apply (skipped).

    Returns FINDING_COLUMNS: category, field, op, expression, why, unit (string; "ms" or "%" for
    latency, "" otherwise);
    expected, tolerance, actual (float64, NaN when skipped); ok (bool, True
    when skipped), skipped (bool).
    """
    rows = []
    for exp in expectations:
        value = actual(exp)
        skipped = value is None
        number = float("nan") if skipped else float(value)
        rows.append({"category": exp.category, "field": exp.field, "op": exp.op, "expected": exp.expected,
                     "tolerance": exp.tolerance, "actual": number, "ok": skipped or exp.holds(number),
                     "skipped": skipped, "expression": exp.expression, "why": exp.why, "unit": exp.unit})
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    return frame.astype({"category": "string", "field": "string", "op": "string", "expected": "float64",
                         "tolerance": "float64", "actual": "float64", "ok": "bool", "skipped": "bool",
                         "expression": "string", "why": "string", "unit": "string"})
