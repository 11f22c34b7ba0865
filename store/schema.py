"""One schema per table: every part of a table has the same columns, in the same order, with the same types.

So `pandas.read_parquet(folder)`, `polars.read_parquet(folder/*.parquet)` and plain DuckDB read a table's
folder as artlens does. The table's schema is the union of its parts' columns, each with the narrowest type
that holds every part's values (`widen`): a column absent from a part is null there; `null` (a column no row of
a part filled) takes the other's type; integers of any width become int64; integers and floats, float64;
anything else that differs (text and numbers, booleans and numbers, nested values) becomes text, recorded as
a schema conflict (never dropped). A part that brings a new column or needs a wider type makes the writer
rewrite the earlier parts to the widened schema (`conform_parts`), each to a temporary name and renamed, so a
crash leaves each part old or new, readable either way, and the next commit, `TableWriter.finish` or
`artlens repair` finishes the job (the widened schema is carried by the new part itself).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from artlens.store.parts import EMBEDDING, write_atomic

#: Key of a part's Parquet metadata holding the columns whose values had to be kept as text (JSON).
CONFLICTS_KEY = "artlens.conflicts"


def _text_like(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def widen(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding values of both `a` and `b` (see the module's rules)."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64()
    if (pa.types.is_integer(a) or pa.types.is_floating(a)) and (pa.types.is_integer(b) or pa.types.is_floating(b)):
        return pa.float64()
    return pa.string()


def is_texted(a: pa.DataType, b: pa.DataType) -> bool:
    """Whether widening `a` and `b` turns values that were not text into text (a schema conflict)."""
    return (_text_like(widen(a, b)) and not pa.types.is_null(a) and not pa.types.is_null(b)
            and not (_text_like(a) and _text_like(b)))


def union(schemas: Iterable[pa.Schema], conflicts: dict[str, str] | None = None) -> pa.Schema:
    """The table schema of parts with these schemas: columns in first-seen order (embedding last), each type
    widened over the parts that have it. Columns widened to text are described in `conflicts`."""
    types: dict[str, pa.DataType] = {}
    seen: dict[str, set[str]] = {}
    for schema in schemas:
        for fld in schema:
            seen.setdefault(fld.name, set()).add(str(fld.type))
            if fld.name in types:
                if conflicts is not None and is_texted(types[fld.name], fld.type):
                    conflicts[fld.name] = ""
                types[fld.name] = widen(types[fld.name], fld.type)
            else:
                types[fld.name] = fld.type
    if conflicts is not None:
        for name in [n for n, why in conflicts.items() if not why]:
            kinds = ", ".join(sorted(t for t in seen[name] if t != "null"))
            conflicts[name] = f"types differ across parts ({kinds}); kept as text"
    names = [n for n in types if n != EMBEDDING] + ([EMBEDDING] if EMBEDDING in types else [])
    return pa.schema([(n, types[n]) for n in names])


def same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    """Whether two schemas have the same columns in the same order with the same types (metadata aside)."""
    return a.remove_metadata().equals(b.remove_metadata())


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if _text_like(column.type) or pa.types.is_null(column.type):
        return column.cast(pa.string())
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # nested values: JSON text, as within a part
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
                         for v in column.to_pylist()], pa.string())


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly the columns of `schema` (absent ones null), cast to its types; metadata kept.
    Raises ValueError when `table` has a column `schema` lacks (a caller's bug: it would be lost)."""
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise ValueError(f"columns {extra} are not in the table schema; widen the schema first")
    arrays = []
    for fld in schema:
        if fld.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, fld.type))
            continue
        column = table.column(fld.name)
        if column.type == fld.type:
            arrays.append(column)
        elif _text_like(fld.type):
            arrays.append(_as_text(column))
        else:
            arrays.append(column.cast(fld.type))
    out = pa.Table.from_arrays(arrays, schema=schema.remove_metadata())
    return out.replace_schema_metadata(table.schema.metadata)


def with_conflicts(metadata: dict | None, conflicts: dict[str, str]) -> dict[str, str]:
    """A part's metadata (str keys and values) with `conflicts` merged into its CONFLICTS_KEY entry."""
    meta = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (metadata or {}).items()}
    if conflicts:
        merged = {**json.loads(meta.get(CONFLICTS_KEY) or "{}"), **conflicts}
        meta[CONFLICTS_KEY] = json.dumps(merged, sort_keys=True)
    return meta


def conform_parts(parts: Sequence[Path], schema: pa.Schema, conflicts: dict[str, str] | None = None,
                  schemas: dict[str, pa.Schema] | None = None) -> list[tuple[Path, int, int]]:
    """Rewrite every part of `parts` whose columns differ from `schema` (atomically, one by one), recording the
    columns of `conflicts` that concern it in its metadata. `schemas`: known part schemas by file name (read
    when absent), updated. Returns (part, size before, size after) of each part rewritten."""
    rewritten = []
    for path in parts:
        try:
            known = (schemas or {}).get(path.name)
            current = known if known is not None else pq.read_schema(path)
            if same_columns(current, schema):
                continue
            table = pq.read_table(path)
        except FileNotFoundError:  # removed meanwhile (its shard redone, repair): nothing to conform
            continue
        if same_columns(table.schema, schema):  # someone else rewrote it since its schema was read
            if schemas is not None:
                schemas[path.name] = table.schema
            continue
        mine = {c: why for c, why in (conflicts or {}).items() if c in table.column_names}
        before = path.stat().st_size
        out = conform(table, schema)
        meta = with_conflicts(table.schema.metadata, mine)
        write_atomic(out.replace_schema_metadata(None), path, metadata=meta)
        if schemas is not None:
            schemas[path.name] = pq.read_schema(path)
        rewritten.append((path, before, path.stat().st_size))
    return rewritten


def type_names(schema: pa.Schema) -> dict[str, str]:
    """Column → its Arrow type's name, as the catalog's `column_types` records them."""
    return {fld.name: str(fld.type) for fld in schema}
