"""Read probe inputs through the store's query API (DuckDB), never from files directly."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artlens import store
from artlens.errors import UserError
from artlens.store.filters import quote_ident, select_rows


class ProbeDataError(UserError):
    pass


@dataclass
class Rows:
    keys: np.ndarray
    X: np.ndarray                       # float32 (n, dim) embeddings
    columns: dict[str, np.ndarray]      # requested metadata columns


def table_columns(s: "store.Store", table: str) -> set[str]:
    if table not in s.tables():
        raise ProbeDataError(f"no table {table!r} in the store; tables: {s.tables()}")
    return set(s.sql(f"SELECT * FROM {quote_ident(table)} LIMIT 0").column_names)


def load_rows(s: "store.Store", table: str, columns: list[str], where: str | None = None,
              require: list[str] | None = None, optional: list[str] | None = None) -> Rows:
    """Embeddings and columns of a table; rows where any `require` column is NULL are left out. `optional`
    columns are read too where the table has them (e.g. `dup_group`), and are absent from `columns` if not."""
    available = table_columns(s, table)
    columns = list(dict.fromkeys([*columns, *(c for c in optional or [] if c in available)]))
    missing = [c for c in columns if c not in available]
    if missing:
        raise ProbeDataError(f"table {table!r} has no column(s) {missing}; columns: {sorted(available)}")
    conditions = [f"{quote_ident(c)} IS NOT NULL" for c in (require or [])]
    clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cols = "".join(f", {quote_ident(c)}" for c in columns)
    # the user's filter is one parsed expression, applied where it can read only the store (store/filters.py)
    table_data = select_rows(s, table, f"key{cols}, embedding", where, f"{clause} ORDER BY key")
    if table_data.num_rows == 0:
        shown = " AND ".join(conditions + ([f"({where})"] if where else []))
        raise ProbeDataError(f"no rows in {table!r}" + (f" WHERE {shown}" if shown else ""))
    flat = table_data.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    X = np.asarray(flat, dtype=np.float32).reshape(table_data.num_rows, -1)
    data = {c: np.asarray(table_data.column(c).to_pylist(), dtype=object) for c in columns}
    return Rows(np.asarray(table_data.column("key").to_pylist(), dtype=object), X, data)
