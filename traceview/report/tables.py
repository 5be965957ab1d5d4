"""HTML tables for the report: escaped text, aligned numbers, coloured deltas."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

import pandas as pd

from traceview.model.kernel_names import short_kernel_name


@dataclass(frozen=True)
class Column:
    """One table column: the frame's ``key``, its header and how a cell is drawn."""

    key: str
    header: str
    kind: str = "text"  # text | nowrap | num | delta | pct | kernel | badge
    digits: int = 2


def number(value: object, digits: int = 2, sign: bool = False) -> str:
    """``1234.5`` -> ``1,234.5``; integers stay integers; NaN/None -> an en dash."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    text = f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("+0", "-0"):
        text = "0"
    return text.replace("-", "−")


_EMPTY = '<td><span class="muted">–</span></td>'


def _cell(column: Column, value: object) -> str:
    if column.kind == "num":
        return f'<td class="num">{number(value, column.digits)}</td>'
    if column.kind in ("delta", "pct"):
        text = number(value, column.digits, sign=True) + ("%" if column.kind == "pct" else "")
        cls = "" if not isinstance(value, (int, float)) or math.isnan(value) or value == 0 else (
            " neg" if value < 0 else " pos")
        return f'<td class="num{cls}">{text}</td>'
    if column.kind == "kernel":
        short = escape(short_kernel_name(str(value), 72))
        if short == escape(str(value)):
            return f'<td class="kernel"><code>{short}</code></td>'
        # The full (often kilobytes long) C++ name unfolds on click; printed pages show the short one.
        return (f'<td class="kernel"><details><summary><code>{short}</code></summary>'
                f'<span class="full">{escape(str(value))}</span></details></td>')
    if column.kind == "badge":
        return f"<td>{value}</td>"  # already HTML, built by the report from fixed strings
    text = "" if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)
    klass = ' class="nowrap"' if column.kind == "nowrap" else ""
    return f"<td{klass}>{escape(text)}</td>" if text else _EMPTY


def _breakable(header: str) -> str:
    # Run labels like demo_eager_before: let a narrow numeric column wrap them after an underscore.
    return escape(header).replace("_", "_<wbr>")


def html_table(frame: pd.DataFrame, columns: Iterable[Column], css_class: str = "",
               row_class: Callable[[pd.Series], str] | None = None) -> str:
    """``frame``'s rows as an HTML table with ``columns`` (in that order)."""
    columns = list(columns)
    head = "".join(f'<th class="num">{_breakable(c.header)}</th>' if c.kind in ("num", "delta", "pct")
                   else f"<th>{_breakable(c.header)}</th>" for c in columns)
    rows = []
    for _, row in frame.iterrows():
        cls = row_class(row) if row_class else ""
        cells = "".join(_cell(c, row[c.key]) for c in columns)
        rows.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    klass = f' class="{css_class}"' if css_class else ""
    table = f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


def card(title: str, value: str, detail: str = "", tone: str = "") -> str:
    """A headline number: ``title`` above a big ``value`` (HTML allowed: built from numbers), ``detail`` below."""
    klass = f"card {tone}".strip()
    return (f'<div class="{klass}"><div class="title">{escape(title)}</div><div class="big">{value}</div>'
            f'<div class="detail">{detail}</div></div>')


def meta_table(items: list[tuple[str, str]]) -> str:
    """A two-column key/value table (escaped)."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in items)
    return f'<table class="meta">{rows}</table>'
