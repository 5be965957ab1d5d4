"""Query results (TraceProcessor ``QueryResult`` protos) to typed DataFrames.

Cells arrive row-major in batches, each value in a per-type list. We decode
column by column with numpy rather than cell by cell, and fix dtypes here so
that no ``object`` column leaves the engine (``column_dtype`` states the rule):
integers are ``int64`` (``Int64`` when NULLs occur), reals ``float64``
(``Float64`` when NULLs occur), text pandas ``string``, blobs arrow ``binary``.
A column of NULLs only is ``Int64`` (all <NA>), and a column mixing types takes
the widest, as SQLite's CAST would: numbers become text, text becomes bytes.
A missing value is always <NA>, never NaN or None.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

CELL_NULL, CELL_VARINT, CELL_FLOAT64, CELL_STRING, CELL_BLOB = 1, 2, 3, 4, 5


def _batch_columns(batch, ncols: int) -> list[np.ndarray]:
    kinds = np.fromiter(batch.cells, dtype=np.uint8, count=len(batch.cells)).reshape(-1, ncols)
    flat = kinds.reshape(-1)
    varints = np.fromiter(batch.varint_cells, dtype=np.int64, count=len(batch.varint_cells))
    floats = np.fromiter(batch.float64_cells, dtype=np.float64, count=len(batch.float64_cells))
    cells = batch.string_cells
    if isinstance(cells, bytes):  # protobuf gives bytes when a string is not valid UTF-8
        cells = cells.decode("utf-8", "replace")
    strings = np.array(cells.split("\0")[:-1] if cells else [], dtype=object)
    blobs = list(batch.blob_cells)
    sources = {CELL_VARINT: varints, CELL_FLOAT64: floats, CELL_STRING: strings}
    # Index of each cell within its type's value list (row-major order).
    index = {kind: np.cumsum(flat == kind) - 1 for kind in (CELL_VARINT, CELL_FLOAT64, CELL_STRING, CELL_BLOB)}
    columns = []
    for j in range(ncols):
        col_kinds = kinds[:, j]
        positions = np.arange(j, flat.size, ncols)
        present = set(np.unique(col_kinds).tolist()) - {CELL_NULL}
        if present <= {CELL_VARINT} or present <= {CELL_FLOAT64} or present <= {CELL_STRING}:
            kind = present.pop() if present else CELL_NULL
            if kind == CELL_NULL:
                columns.append(np.full(len(col_kinds), None, dtype=object))
                continue
            values = sources[kind][index[kind][positions[col_kinds == kind]]]
            if len(values) == len(col_kinds):
                columns.append(values)
            else:
                out = np.full(len(col_kinds), None, dtype=object)
                out[col_kinds == kind] = values
                columns.append(out)
            continue
        out = np.full(len(col_kinds), None, dtype=object)
        for kind in present:
            mask = col_kinds == kind
            src = sources.get(kind)
            if src is None:
                out[mask] = [blobs[i] for i in index[CELL_BLOB][positions[mask]]]
            else:
                out[mask] = src[index[kind][positions[mask]]]
        columns.append(out)
    return columns


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else _as_text(value).encode("utf-8")


def column_dtype(values: list[object]) -> str | pd.ArrowDtype:
    """The dtype of a result column whose cells (NULL = None) are ``values``: ``binary`` if a blob
    occurs, else ``string`` if a text does, else ``Int64`` if every value is an integer (or there
    is none: a column of NULLs has no SQL type, and Int64 casts to any other nullable dtype), else
    ``Float64``."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, bytes) for v in present):
        return pd.ArrowDtype(pa.binary())
    if any(isinstance(v, str) for v in present):
        return "string"
    if all(isinstance(v, (int, np.integer)) for v in present):
        return "Int64"
    return "Float64"


def _typed_series(name: str, parts: list[np.ndarray]) -> pd.Series:
    values = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    if values.dtype == np.int64:
        return pd.Series(values, name=name, dtype="int64")
    if values.dtype == np.float64:
        return pd.Series(values, name=name, dtype="float64")
    cells = values.tolist()
    dtype = column_dtype(cells)
    if dtype == "string":
        cells = [None if v is None else _as_text(v) for v in cells]
    elif isinstance(dtype, pd.ArrowDtype):
        cells = [None if v is None else _as_bytes(v) for v in cells]
    elif dtype == "Float64":
        cells = [None if v is None else float(v) for v in cells]
    return pd.Series(pd.array(cells, dtype=dtype), name=name)


def query_result_to_frame(result) -> pd.DataFrame:
    """Converts a ``QueryResult`` (all batches received) to a DataFrame."""
    names = list(result.column_names)
    if not names:
        return pd.DataFrame()
    per_column: list[list[np.ndarray]] = [[] for _ in names]
    for batch in result.batch:
        for j, col in enumerate(_batch_columns(batch, len(names))):
            per_column[j].append(col)
    series = [_typed_series(n, parts) for n, parts in zip(names, per_column)]
    frame = pd.concat(series, axis=1) if series else pd.DataFrame()
    frame.columns = names  # duplicate column names survive concat this way
    return frame
