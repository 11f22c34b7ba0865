"""Write a pyarrow.Table of query results as a terminal table, CSV, JSON, JSON Lines or Parquet.

`json` is one JSON document, an array of row objects; `jsonl` is JSON Lines, one object per line. Both are
strict JSON (RFC 8259): NaN and ±infinity, which JSON cannot hold, are written as null. `table` shows at most
`max_rows` rows (0: all; the flags: artlens/cli/args.py `output_arguments`), and says on standard error how
many it left out.
"""
from __future__ import annotations

import contextlib
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

from artlens.cli.args import DEFAULT_MAX_ROWS
from artlens.errors import UserError


def _write(out, text: str, chunk: int = 1 << 16) -> None:
    """Write in pieces: a closed pipe (`| head`) then raises BrokenPipeError at the next piece, which the CLI
    turns into a quiet exit 141, where one huge write can lose the rest without a word."""
    for start in range(0, len(text), chunk):
        out.write(text[start:start + chunk])


def _flatten_lists(table: pa.Table) -> pa.Table:
    """CSV cannot hold lists: list columns (embeddings) become JSON text."""
    for i, fld in enumerate(table.schema):
        if pa.types.is_list(fld.type) or pa.types.is_fixed_size_list(fld.type) or pa.types.is_struct(fld.type):
            text = pa.array([None if v is None else json.dumps(v) for v in table.column(i).to_pylist()])
            table = table.set_column(i, fld.name, text)
    return table


def _table(table: pa.Table, out, max_rows: int = DEFAULT_MAX_ROWS) -> None:
    if not table.num_rows:
        out.write(f"(0 rows) columns: {', '.join(table.column_names)}\n")
        return
    shown = table.num_rows if not max_rows else min(max_rows, table.num_rows)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # DuckDB's box rendering, printed through Python's stdout
        duckdb.from_arrow(table).show(max_rows=max(shown, 1))
    _write(out, buf.getvalue())
    if shown < table.num_rows:
        print(f"artlens: {table.num_rows - shown:,} of {table.num_rows:,} rows not shown; --max-rows 0 shows "
              "all (or --format csv/jsonl)", file=sys.stderr)


def _csv(table: pa.Table, out, max_rows: int = 0) -> None:
    buf = io.BytesIO()
    pacsv.write_csv(_flatten_lists(table), buf)
    _write(out, buf.getvalue().decode())


def _finite(value):
    """The value with every float that JSON cannot hold (NaN, ±infinity) replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(value) -> str:
    return json.dumps(_finite(value), default=str, ensure_ascii=False, allow_nan=False)


def _json(table: pa.Table, out, max_rows: int = 0) -> None:
    """One JSON document: an array of row objects, one row a line (`[]` for no rows)."""
    rows = table.to_pylist()
    if not rows:
        out.write("[]\n")
        return
    _write(out, "[\n" + ",\n".join(_dumps(row) for row in rows) + "\n]\n")


def _jsonl(table: pa.Table, out, max_rows: int = 0) -> None:
    for row in table.to_pylist():
        out.write(_dumps(row) + "\n")


#: Text formats: (table, stream, max_rows) → written; `parquet` (a file) is handled by `write_result`.
FORMATS: dict[str, Callable[..., None]] = {"table": _table, "csv": _csv, "json": _json, "jsonl": _jsonl}


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


def write_result(table: pa.Table, fmt: str, out: str | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> None:
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
            FORMATS[fmt](table, fh, max_rows)
    else:
        FORMATS[fmt](table, sys.stdout, max_rows)
