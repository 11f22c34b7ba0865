"""Write a pyarrow.Table of query results as a terminal table, CSV, JSON lines or Parquet.

JSON lines are strict JSON (RFC 8259), one object per row: NaN and ±infinity, which JSON cannot hold, are
written as null.
"""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from artlens.errors import UserError


def _flatten_lists(table: pa.Table) -> pa.Table:
    """CSV cannot hold lists: list columns (embeddings) become JSON text."""
    for i, fld in enumerate(table.schema):
        if pa.types.is_list(fld.type) or pa.types.is_fixed_size_list(fld.type) or pa.types.is_struct(fld.type):
            text = pa.array([None if v is None else json.dumps(v) for v in table.column(i).to_pylist()])
            table = table.set_column(i, fld.name, text)
    return table


def _table(table: pa.Table, out) -> None:
    rel = duckdb.from_arrow(table)
    out.write(str(rel) if table.num_rows else f"(0 rows) columns: {', '.join(table.column_names)}\n")


def _csv(table: pa.Table, out) -> None:
    buf = io.BytesIO()
    pacsv.write_csv(_flatten_lists(table), buf)
    out.write(buf.getvalue().decode())


def _finite(value):
    """The value with every float that JSON cannot hold (NaN, ±infinity) replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json(table: pa.Table, out) -> None:
    for row in table.to_pylist():
        out.write(json.dumps(_finite(row), default=str, ensure_ascii=False, allow_nan=False) + "\n")


FORMATS: dict[str, Callable[[pa.Table, object], None]] = {"table": _table, "csv": _csv, "json": _json}


def output_file(out: str) -> Path:
    """`out` as a file to write: refused when it names a folder or lies under a file; missing folders
    above it are made."""
    path = Path(out)
    if path.is_dir():
        raise UserError(f"`out` {out} is a folder; name a file to write the result to (e.g. {path / 'result'})",
                        argument="out")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"`out` {out} lies under {parent}, which is a file, not a folder", argument="out")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_result(table: pa.Table, fmt: str, out: str | None = None) -> None:
    if fmt == "parquet":
        if not out:
            raise UserError("--format parquet needs --out FILE")
        pq.write_table(table, str(output_file(out)))
        return
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose from {sorted([*FORMATS, 'parquet'])}")
    if out:
        output_file(out)
        with open(Path(out), "w", encoding="utf-8") as fh:
            FORMATS[fmt](table, fh)
    else:
        FORMATS[fmt](table, sys.stdout)
