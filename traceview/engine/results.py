"""Query results (TraceProcessor ``QueryResult`` protos) to typed DataFrames.

Cells arrive row-major in batches, each value in a per-type list. We decode
column by column with numpy rather than cell by cell, and fix dtypes here so
that no ``object`` column leaves the engine: integers are ``int64`` (``Int64``
when NULLs occur), reals ``float64``, text pandas ``string``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def _typed_series(name: str, parts: list[np.ndarray]) -> pd.Series:
    values = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    if values.dtype == np.int64:
        return pd.Series(values, name=name, dtype="int64")
    if values.dtype == np.float64:
        return pd.Series(values, name=name, dtype="float64")
    non_null = [v for v in values if v is not None]
    if not non_null:
        return pd.Series(values, name=name, dtype="object")
    if all(isinstance(v, (int, np.integer)) for v in non_null):
        return pd.Series(values, name=name, dtype="Int64")
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in non_null):
        return pd.Series([np.nan if v is None else v for v in values], name=name, dtype="float64")
    if all(isinstance(v, str) for v in non_null):
        return pd.Series(values, name=name, dtype="string")
    return pd.Series(values, name=name, dtype="object")


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
