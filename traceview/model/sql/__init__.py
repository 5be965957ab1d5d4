"""PerfettoSQL shipped with the package: attribution and grouping run inside the processor."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from traceview.engine import Trace


@lru_cache(maxsize=None)
def sql_text(name: str) -> str:
    return (resources.files("traceview.model.sql") / name).read_text(encoding="utf-8")


def run_sql_file(trace: Trace, name: str) -> pd.DataFrame:
    """Runs a packaged ``.sql`` file (``model/sql/<name>``)."""
    return trace.query(sql_text(name))


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def shards_of(trace) -> list[Trace]:
    """The processors a trace is in: a ShardedTrace's shards, or the one Trace."""
    return list(getattr(trace, "shards", [trace]))
