"""Fixed dtypes for the frames the model hands out.

Every frame that leaves ``traceview.model`` goes through ``typed``: its columns get the
dtypes the model's docstrings promise, whatever a query, a concat of shards, an empty
result or the result cache (Arrow IPC files) gave them. A missing value is <NA> (pandas nullable
``Int64``, ``string``, ``Float64``, ``boolean``), never NaN or None, so every surface
shows it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def typed(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with each column named in ``dtypes`` cast to its dtype; a column it lacks is added,
    all <NA>. Other columns are kept as they are. Raises (pandas) when a value cannot take its
    dtype, e.g. <NA> in a non-nullable ``int64`` column: a bug, not bad input."""
    out = frame.copy()
    for column, dtype in dtypes.items():
        if column not in out.columns:
            out[column] = pd.Series(pd.NA, index=out.index, dtype=_nullable(dtype))
    changed = {c: t for c, t in dtypes.items() if str(out[c].dtype) != t}
    return out.astype(changed) if changed else out


def empty(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A frame of no rows with the columns and dtypes of ``dtypes``."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dtypes.items()})


def _nullable(dtype: str) -> str:
    return {"int64": "Int64", "float64": "Float64", "bool": "boolean"}.get(dtype, dtype)
