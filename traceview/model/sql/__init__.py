"""PerfettoSQL shipped with the package: attribution and grouping run inside the processor."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

from traceview.engine import Trace


@lru_cache(maxsize=None)
def sql_text(name: str) -> str:
    return (resources.files("traceview.model.sql") / name).read_text(encoding="utf-8")


def run_sql_file(trace: Trace, name: str, **params: str) -> pd.DataFrame:
    """Runs a packaged ``.sql`` file; ``{param}`` placeholders are filled from ``params``.

    Only trusted values (numbers, quoted literals built by ``sql_literal``) go in.
    """
    text = sql_text(name)
    return trace.query(text.format(**params) if params else text)


def prepare(trace: Trace, name: str) -> None:
    """Runs a packaged file of ``CREATE PERFETTO TABLE`` statements once per trace."""
    done = trace.__dict__.setdefault("_tv_prepared", set())
    if name not in done:
        trace.query(sql_text(name))
        done.add(name)


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
