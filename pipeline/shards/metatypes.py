"""Typed metadata: the rows of a CSV or JSONL metadata file with the types their values have.

A CSV's column types are inferred by pyarrow's CSV reader (over the whole file, so a column of `1` and `2.5`
is a float column); only int, float and bool columns keep the type inferred, and only where no value's text
would be lost (`007` stays text, as do integers too long for a float, and dates, whose text is kept as it
is written). Empty cells are null. `metadata_types` forces a column's type (`rating=float,id=str`); a value
that does not convert is one line naming the file, the row and the column.
"""
from __future__ import annotations

import io
import json
import math
import re
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa
import pyarrow.csv as pacsv

from artlens.errors import UserError

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
#: Integers a float64 holds exactly; an integer token past this in a float column keeps the column text.
_FLOAT_EXACT = 2 ** 53
_TRUE, _FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")


class MetadataTypeError(UserError):
    """A `metadata_types` entry that is not COLUMN=TYPE, or a value that is not of its column's forced type."""


def _to_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    number = float(value.strip().replace("_", " ") if isinstance(value, str) else value)  # no "1_0"
    return None if math.isnan(number) else number


_BOOL_TEXT = {"true": True, "t": True, "yes": True, "y": True, "1": True,
              "false": False, "f": False, "no": False, "n": False, "0": False}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueError


#: A forced type's name → its converter (None stays None; a value that does not convert raises ValueError).
TYPES: dict[str, Callable[[Any], Any]] = {
    "str": _to_str, "string": _to_str, "text": _to_str,
    "int": _to_int, "integer": _to_int, "int64": _to_int,
    "float": _to_float, "double": _to_float, "float64": _to_float,
    "bool": _to_bool, "boolean": _to_bool,
}


def parse_types(spec: str | Mapping[str, str] | Iterable[str] | None) -> tuple[tuple[str, str], ...]:
    """`metadata_types` as (column, type) pairs: a mapping, a `col=type,col=type` text, or several such texts
    (the CLI's repeated flag). Later entries for a column win."""
    if spec is None:
        return ()
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        texts = [spec] if isinstance(spec, str) else list(spec)
        pairs = []
        for text in texts:
            if isinstance(text, (tuple, list)) and len(text) == 2:  # already pairs (a config's own value)
                pairs.append((str(text[0]), str(text[1])))
                continue
            if not isinstance(text, str):
                raise MetadataTypeError(f"metadata_types entries are COLUMN=TYPE text, got {text!r}",
                                        argument="metadata_types")
            for entry in filter(None, (e.strip() for e in text.split(","))):
                column, eq, kind = entry.rpartition("=")
                if not eq or not column.strip():
                    raise MetadataTypeError(f"metadata_types entry {entry!r} is not COLUMN=TYPE "
                                            "(e.g. rating=float,id=str)", argument="metadata_types")
                pairs.append((column.strip(), kind.strip()))
    for column, kind in pairs:
        if kind.lower() not in TYPES:
            raise MetadataTypeError(f"metadata_types: unknown type {kind!r} for column {column!r}; choose from "
                                    "str, int, float, bool", argument="metadata_types")
    return tuple(dict((c, k.lower()) for c, k in pairs).items())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def force_types(rows: list[dict], types: tuple[tuple[str, str], ...], path: str, columns: Iterable[str]) -> None:
    """Convert the forced columns of `rows` in place; a value that does not convert is one MetadataTypeError."""
    known = list(columns)
    for column, kind in types:
        if column not in known:
            raise MetadataTypeError(f"metadata_types names column {column!r}, which {path} does not have "
                                    f"(its columns: {known[:20]})", argument="metadata_types")
        convert = TYPES[kind]
        for n, row in enumerate(rows, 1):
            value = row.get(column)
            if value is None:
                continue
            try:
                row[column] = convert(value)
            except (ValueError, OverflowError):
                raise MetadataTypeError(f"{path}: row {n}: column {column!r} value {_short(value)} is not "
                                        f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}",
                                        argument="metadata_types") from None


def unify_numbers(rows: list[dict], skip: Iterable[str] = ()) -> None:
    """JSONL columns holding both ints and floats become float columns (as the CSV reader infers them), so
    every shard, and every part of the table, has one type for the column."""
    skip = set(skip)
    kinds: dict[str, set] = {}
    for row in rows:
        for name, value in row.items():
            if value is not None:
                kinds.setdefault(name, set()).add(type(value))
    for name, seen in kinds.items():
        if name not in skip and seen == {int, float}:
            for row in rows:
                if type(row.get(name)) is int:
                    row[name] = float(row[name])


# ---------------------------------------------------------------- CSV
def _read(data: bytes, column_types: dict | None = None, all_text: bool = False) -> pa.Table:
    parse = pacsv.ParseOptions(newlines_in_values=True)
    if all_text:
        names = pacsv.read_csv(io.BytesIO(data), parse_options=parse,
                               read_options=pacsv.ReadOptions(block_size=1 << 20)).column_names
        column_types = {n: pa.string() for n in names}
    convert = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True, true_values=list(_TRUE),
                                   false_values=list(_FALSE), column_types=column_types or {})
    return pacsv.read_csv(io.BytesIO(data), parse_options=parse, convert_options=convert)


def _keeps_text(kind: pa.DataType, values: list, texts: list) -> bool:
    """Whether the inferred column would lose a value's text: `007` → 7, 2**60 as a float, a date."""
    if pa.types.is_boolean(kind):
        return False
    if pa.types.is_integer(kind):
        return any(t is not None and str(v) != t.strip() for v, t in zip(values, texts))
    if pa.types.is_floating(kind):
        for value, text in zip(values, texts):
            if text is None:
                continue
            token = text.strip().lstrip("+-")
            if _INT_TEXT.fullmatch(token) and ((len(token) > 1 and token[0] == "0") or int(token) > _FLOAT_EXACT):
                return True
            if math.isinf(value) and "inf" not in token.lower():  # 1e400
                return True
        return False
    return True  # dates, times, timestamps, text: kept as written


def csv_rows(text: str, path: str, keep_text: Iterable[str] = ()) -> tuple[list[dict], list[str]]:
    """Typed rows of CSV text (with header) and its column names; `keep_text` columns stay text (the join
    column, forced columns). A CSV pyarrow cannot parse raises pyarrow.ArrowInvalid, for the caller to name."""
    if not text.strip():
        return [], []
    data = text.encode("utf-8")
    raw = _read(data, all_text=True)
    names = raw.column_names
    inferred = _read(data)
    columns = {}
    keep = set(keep_text)
    for i, name in enumerate(names):
        texts = raw.column(i).to_pylist()
        values = inferred.column(i).to_pylist()
        if name in keep or _keeps_text(inferred.schema.field(i).type, values, texts):
            columns[name] = texts
        else:
            columns[name] = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    rows = [dict(zip(columns, cells)) for cells in zip(*columns.values())] if columns else []
    return rows, names
