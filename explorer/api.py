"""The explorer's JSON API as plain functions of an open store: each takes the request's values and returns
JSON-ready data, raising NotFound (404) or a UserError (400). `artlens.explorer.app` maps them to routes.

Nothing here writes the store, except `map_data`'s first call on a table, which computes the table's 2-D map
and keeps it through the store's own API (`artlens.probes.maps.map_for`), as `artlens map` does. A `where`
is handed to the store (neighbour search, `select_rows`), which applies it as one parsed expression on its
locked connection; keys are SQL parameters; columns are checked against the table's own."""
from __future__ import annotations

import base64
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from artlens.explorer.images import has_images, image_url_column
from artlens.explorer.safety import BadRequest, NotFound, columns_of, known_column, known_table
from artlens.store.filters import quote_ident

#: A colour column with more distinct values than this shows the most frequent ones and "other".
MAX_CATEGORIES = 24
OTHER = "(other)"
MISSING = "(none)"


def rows_json(table: pa.Table) -> list[dict]:
    """Arrow rows as JSON-ready dicts, without the embedding; NaN and infinities become null."""
    if "embedding" in table.column_names:
        table = table.drop_columns(["embedding"])
    return [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]


def json_value(value):
    """A value as JSON can carry it: non-finite floats become null, unknown types their string."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


# ------------------------------------------------------------------------------------------------ tables
def tables(store) -> list[dict]:
    out = []
    for name in store.tables():
        entry = store.entry(name)
        columns = [c for c in columns_of(store, name) if c != "embedding"]
        out.append({"name": name, "rows": entry.rows, "dim": entry.dim, "model": entry.model,
                    "pretrained": entry.pretrained, "kind": entry.kind, "parent": entry.parent,
                    "has_images": has_images(entry), "image_url_column": image_url_column(entry) or None,
                    "columns": columns})
    return out


def row(store, table: str, key: str) -> dict:
    known_table(store, table)
    found = store.sql(f"SELECT * FROM {quote_ident(table)} WHERE key = ?", [key])
    if found.num_rows == 0:
        raise NotFound(f"no row with key {key!r} in table {table!r}")
    rows = rows_json(found)
    return rows[0] if len(rows) == 1 else {**rows[0], "rows": rows}


def require_key(store, table: str, key: str) -> None:
    """NotFound unless the table has a row with this key."""
    if store.sql(f"SELECT 1 FROM {quote_ident(table)} WHERE key = ? LIMIT 1", [key]).num_rows == 0:
        raise NotFound(f"no row with key {key!r} in table {table!r}")


# -------------------------------------------------------------------------------------------- neighbours
def neighbors(store, table: str, *, key: str | None = None, text: str | None = None, image: bytes | None = None,
              k: int = 12, where: str | None = None) -> list[dict]:
    """The k rows nearest to a row, words or an uploaded image (the table's own model), best first."""
    known_table(store, table)
    given = [name for name, value in (("key", key), ("text", text), ("image", image)) if value]
    if len(given) != 1:
        raise BadRequest(f"give exactly one of key, text or image (got {', '.join(given) or 'none'})")
    store.entry(table).unique_keys_needed("nearest-neighbour searches")
    where = where or None
    if key:
        require_key(store, table, key)
        return rows_json(store.neighbors(table, key=key, k=k, where=where))
    from artlens.api import encode_query

    vector = encode_query(store.entry(table), text=text or None, image=image or None, device="cpu")
    return rows_json(store.neighbors(table, vector=np.asarray(vector, np.float32), k=k, where=where))


# --------------------------------------------------------------------------------------------------- map
#: How the map's arrays travel: base64 of little-endian typed arrays (a 100,000-point map is 1.6 MB of them
#: and decodes in milliseconds; as JSON numbers it took longer to write and read than to compute).
ARRAY_TYPES = {"x": "float32", "y": "float32", "values": "float32", "codes": "uint8"}


def _packed(values, name: str) -> str:
    dtype = np.dtype(ARRAY_TYPES[name]).newbyteorder("<")
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def unpack(data: dict, name: str) -> np.ndarray:
    """One array of a map payload (`map_data`) back as numpy: what a script calling the API does."""
    return np.frombuffer(base64.b64decode(data[name]), dtype=np.dtype(data["arrays"][name]).newbyteorder("<"))


def map_data(store, table: str, method: str = "pca", color: str | None = None, where: str | None = None) -> dict:
    """The table's map as parallel arrays, one entry per point: `keys` (a JSON list) and `x`, `y` (float32)
    and, with `color`, numbers `values` (float32, NaN where missing; `color_kind` "number", `range`) or codes
    into `categories` (uint8; "category"). The typed arrays are base64 of little-endian bytes, their types in
    `arrays` (`unpack` decodes one)."""
    from artlens.probes.maps import map_for
    from artlens.store.filters import select_rows

    known_table(store, table)
    points = map_for(store, table, method)
    keys = points.column("key")
    if where:
        allowed = select_rows(store, table, "key", where).column("key")
        points = points.filter(pc.is_in(keys, value_set=allowed))
        keys = points.column("key")
    out = {"table": table, "method": method, "n": points.num_rows, "keys": keys.to_pylist(),
           "x": _packed(points.column("x").to_numpy(), "x"), "y": _packed(points.column("y").to_numpy(), "y")}
    if color:
        out.update(_colours(store, table, known_column(store, table, color), keys))
    out["arrays"] = {name: ARRAY_TYPES[name] for name in ARRAY_TYPES if name in out}
    return out


def _colours(store, table: str, column: str, keys: pa.ChunkedArray) -> dict:
    values = store.sql(f"SELECT key, {quote_ident(column)} AS v FROM {quote_ident(table)}")
    index = pc.index_in(keys, value_set=values.column("key"))
    picked = values.column("v").take(pc.fill_null(index, 0))
    picked = pc.if_else(pc.is_null(index), pa.nulls(len(keys), picked.type), picked)
    if pa.types.is_integer(picked.type) or pa.types.is_floating(picked.type):
        numbers = pc.cast(picked, pa.float64()).to_numpy(zero_copy_only=False)
        finite = np.isfinite(numbers)
        return {"color": column, "color_kind": "number", "values": _packed(np.where(finite, numbers, np.nan), "values"),
                "range": [float(numbers[finite].min()), float(numbers[finite].max())] if finite.any() else None}
    text = pc.fill_null(pc.cast(picked, pa.string()), MISSING)
    counts = pc.value_counts(text).to_pylist()
    counts.sort(key=lambda c: (-c["counts"], c["values"]))
    categories = [c["values"] for c in counts[:MAX_CATEGORIES]]
    if len(counts) > MAX_CATEGORIES:
        categories.append(OTHER)
    codes = pc.index_in(text, value_set=pa.array(categories[:MAX_CATEGORIES], pa.string()))
    codes = pc.fill_null(codes, len(categories) - 1).to_numpy(zero_copy_only=False)
    return {"color": column, "color_kind": "category", "categories": categories, "codes": _packed(codes, "codes")}


# ----------------------------------------------------------------------------------------------- results
SUMMARY_FIELDS = ("probe", "tables", "n", "metrics", "baseline", "created")


def results(store) -> list[dict]:
    return [{"name": r["name"], **{f: json_value(r.get(f)) for f in SUMMARY_FIELDS}} for r in store.results()]


def _result(store, name: str) -> dict:
    found = next((r for r in store.results() if r["name"] == name), None)
    if found is None:
        raise NotFound(f"no probe result {name!r} in the store")
    return found


def result(store, name: str) -> dict:
    """The result's JSON, and from its rows (where kept) the confusion matrix, the most and least typical
    rows per class (by p_true or score), or a regression's largest residuals."""
    out = json_value(_result(store, name))
    rows = store.result_rows(name)
    out["rows"] = None if rows is None else _summary(rows)
    return out


def _summary(rows: pa.Table) -> dict:
    columns = set(rows.column_names)
    summary: dict = {"n": rows.num_rows, "columns": rows.column_names}
    if {"label", "predicted"} <= columns:
        labels = sorted({str(v) for v in rows.column("label").to_pylist() + rows.column("predicted").to_pylist()
                         if v is not None})
        where = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for label, predicted in zip(rows.column("label").to_pylist(), rows.column("predicted").to_pylist()):
            if label is not None and predicted is not None:
                matrix[where[str(label)]][where[str(predicted)]] += 1
        summary.update(kind="classification", labels=labels, confusion=matrix, typical=_typical(rows, labels))
    elif "residual" in columns:
        residual = np.abs(pc.cast(rows.column("residual"), pa.float64()).to_numpy(zero_copy_only=False))
        order = np.argsort(-np.nan_to_num(residual, nan=-1.0))[:24]
        summary.update(kind="regression", largest_residuals=rows_json(rows.take(pa.array(order))))
    return summary


def _typical(rows: pa.Table, labels: list[str], n: int = 6) -> dict:
    score = next((c for c in ("p_true", "score") if c in rows.column_names), None)
    if score is None:
        return {}
    out = {}
    for label in labels:
        of = rows.filter(pc.equal(pc.cast(rows.column("label"), pa.string()), label))
        if of.num_rows == 0:
            continue
        out[label] = {"score": score, "most": rows_json(of.sort_by([(score, "descending")]).slice(0, n)),
                      "least": rows_json(of.sort_by([(score, "ascending")]).slice(0, n))}
    return out


def result_rows(store, name: str, label: str | None = None, predicted: str | None = None,
                limit: int = 200) -> dict:
    """The rows behind a result, those of one confusion cell when `label` and/or `predicted` are given."""
    _result(store, name)
    rows = store.result_rows(name)
    if rows is None:
        raise NotFound(f"probe result {name!r} was saved without its rows")
    for column, value in (("label", label), ("predicted", predicted)):
        if value is not None:
            if column not in rows.column_names:
                raise BadRequest(f"the rows of result {name!r} have no column {column!r}")
            rows = rows.filter(pc.equal(pc.cast(rows.column(column), pa.string()), value))
    return {"name": name, "n": rows.num_rows, "table": (_result(store, name).get("tables") or [None])[0],
            "rows": rows_json(rows.slice(0, limit))}
