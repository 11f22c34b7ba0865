"""A store other tools and DuckDB versions read: the catalog's storage format, catalog.json, provenance in every
part, and one schema per table (pandas, polars and plain DuckDB read a table's folder as artlens does)."""
import json
import re
import shutil
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imagefactory as f
from artlens import store
from artlens.store.catalog import (
    JSON_FORMAT, STORAGE_VERSION, Catalog, IndexEntry, TableEntry, read_json, write_json)
from artlens.store.index import build_index, open_index
from artlens.store.layout import StoreLayout
from artlens.store.parts import write_atomic
from artlens.store.query import StoreWarning
from artlens.store.repair import repair
from artlens.store.schema import conform, union, widen
from artlens.store.writer import DESCRIPTION_KEY, PROVENANCE_FIELDS, TableWriter
from conftest import meta, write_tar

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = dict(model="tiny", model_ref="/m/x.json", pretrained="random:seed=1", checkpoint_sha256="a" * 64,
                preprocess="resize 32, crop 32, Normalize", artlens_version="9.9")


def vectors(n, dim=4, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def small_table(root, name="t", shards=(("a", {}),), dim=4):
    """A table with one part per (shard, extra fields) pair, 2 rows each."""
    writer = TableWriter(root, TableEntry(name=name, dim=dim, **IDENTITY))
    for i, (shard, fields) in enumerate(shards):
        rows = [{"key": f"{shard}-{j}", "shard": shard, **fields} for j in range(2)]
        writer.commit(shard, rows, vectors(2, dim, i), [])
    return writer.finish()


# a. the catalog's storage format

def test_the_catalog_is_written_in_the_storage_format_of_the_declared_duckdb_floor(tmp_path):
    floor = re.search(r'"duckdb>=(\d+)\.(\d+)', (ROOT / "pyproject.toml").read_text())
    assert floor, "pyproject declares no duckdb floor"
    assert STORAGE_VERSION == f"v{floor.group(1)}.{floor.group(2)}.0"  # moved together, or not at all
    small_table(tmp_path / "s")
    catalog = Catalog(tmp_path / "s" / "catalog.duckdb")
    assert catalog.storage_version() == STORAGE_VERSION
    header = catalog.path.read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") <= 67  # 67: what DuckDB 1.4 reads


def _to_latest_format(path: Path) -> None:
    """Rewrite a catalog in the installed DuckDB's newest storage format (what DuckDB 2 writes by default)."""
    new = path.with_name("latest.duckdb")
    con = duckdb.connect(str(new), config={"storage_compatibility_version": "latest"})
    con.execute(f"ATTACH '{path}' AS old (READ_ONLY)")
    for table in ("tables", "indexes"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM old.{table}")
    con.close()
    new.replace(path)


def test_a_catalog_in_a_newer_format_still_opens_and_repair_rewrites_it_in_the_declared_one(tmp_path):
    root = tmp_path / "s"
    small_table(root)
    catalog = Catalog(root / "catalog.duckdb")
    before = catalog.entries()
    _to_latest_format(catalog.path)
    latest = catalog.storage_version()
    with store.open(root) as s:
        assert s.sql("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 2}]
    notes = "\n".join(repair(str(root)).lines())
    assert catalog.storage_version() == STORAGE_VERSION and catalog.entries() == before
    newer = tuple(map(int, latest.lstrip("v").split("."))) > tuple(map(int, STORAGE_VERSION[1:].split(".")))
    assert ("rewrote" in notes) == newer  # DuckDB 2 writes v2.0.0 by default; DuckDB 1.4's latest is ours
    assert not list(root.glob(".tmp-*"))


# b. catalog.json

def test_catalog_json_after_a_real_extract_is_read_with_plain_json(tmp_path, extract):
    write_tar(tmp_path / "sh" / "00000.tar", [("a.jpg", f.jpeg()), ("a.json", meta(style="x"))])
    extract(tmp_path / "sh")
    root = tmp_path / "store"
    doc = json.loads((root / "catalog.json").read_text())
    entry = Catalog(root / "catalog.duckdb").get("t")
    assert doc["format"] == JSON_FORMAT and doc["format_version"] == 1 and doc["storage_version"] == STORAGE_VERSION
    (row,) = doc["tables"]
    for name in ("name", "kind", "model", "model_ref", "pretrained", "checkpoint_sha256", "preprocess", "dim",
                 "rows", "parts", "parent"):
        assert row[name] == getattr(entry, name), name
    assert row["rows"] == 1 and row["dim"] > 0 and row["model"] and row["preprocess"]
    assert row["column_types"]["style"] == "string" and row["column_types"]["key"] == "string"
    assert row["created"] == entry.created.isoformat() and doc["indexes"] == []


def test_catalog_json_follows_every_write_and_drop_and_round_trips(tmp_path):
    root = tmp_path / "s"
    small_table(root, "t")
    small_table(root, "u")
    catalog = Catalog(root / "catalog.duckdb")
    catalog.put_index(IndexEntry(name="t", kind="flat", factory="Flat", params='{"efSearch": 16}',
                                 parts='{"part-a.parquet": 10}', rows=2))
    doc = json.loads(catalog.json_path.read_text())
    assert [t["name"] for t in doc["tables"]] == ["t", "u"]
    assert doc["indexes"][0]["params"] == {"efSearch": 16} and doc["indexes"][0]["parts"] == {"part-a.parquet": 10}
    back = read_json(catalog.json_path)
    assert back["tables"] == catalog.entries() and back["indexes"] == catalog.indexes()
    TableWriter.reopen(root, "u").drop("u")
    assert [t["name"] for t in json.loads(catalog.json_path.read_text())["tables"]] == ["t"]
    assert not list(root.glob(".tmp-*"))  # written to a temporary name, renamed


@pytest.mark.parametrize("text", ["", "[]", '{"format": "something else"}', "{not json", '"x"'])
def test_read_json_refuses_what_is_not_a_catalog_json(tmp_path, text):
    path = tmp_path / "catalog.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        read_json(path)


def test_repair_of_a_damaged_catalog_recovers_tables_and_indexes_from_catalog_json(tmp_path):
    root = tmp_path / "s"
    small_table(root, "t", shards=[("a", {}), ("b", {})])
    entry = build_index(root, "t", kind="flat", recall_queries=2, progress=False)
    Catalog(root / "catalog.duckdb").path.write_bytes(b"garbage, not a DuckDB file at all")
    report = repair(str(root))
    assert "catalog.json" in report.catalog
    catalog = Catalog(root / "catalog.duckdb")
    assert catalog.get("t").model == "tiny" and catalog.get("t").rows == 4
    assert catalog.get_index("t").generation == entry.generation
    assert open_index(root, "t", 4).index.ntotal == 4


def test_repair_with_a_damaged_catalog_and_a_hostile_catalog_json_falls_back_to_the_parts(tmp_path):
    root = tmp_path / "s"
    small_table(root, "t")
    (root / "catalog.duckdb").write_bytes(b"")
    (root / "catalog.json").write_text('{"format": "artlens-catalog", "tables": [{"name": 5, "dim": "x"}]}')
    report = repair(str(root))
    assert "the parts" in report.catalog
    assert Catalog(root / "catalog.duckdb").get("t").model == "tiny"  # from the parts' description


# c. provenance in every part

def test_every_part_carries_the_provenance_and_a_copied_folder_gets_it_back(tmp_path, extract):
    write_tar(tmp_path / "sh" / "00000.tar", [("a.jpg", f.jpeg())])
    write_tar(tmp_path / "sh" / "00001.tar", [("b.jpg", f.jpeg())])
    extract(tmp_path / "sh")
    root = tmp_path / "store"
    entry = Catalog(root / "catalog.duckdb").get("t")
    parts = StoreLayout.at(root).parts("t")
    assert len(parts) == 2
    for part in parts:
        kv = {k.decode(): v.decode() for k, v in pq.read_schema(part).metadata.items()}
        for name in PROVENANCE_FIELDS:
            assert kv[f"artlens.{name}"] == str(getattr(entry, name) or ""), name
        assert json.loads(kv[DESCRIPTION_KEY])["preprocess"] == entry.preprocess
    other = tmp_path / "other"
    shutil.copytree(root / "tables" / "t", other / "tables" / "t")
    with pytest.warns(StoreWarning, match="repair"):
        store.open(other).close()
    repair(str(other))
    copied = Catalog(other / "catalog.duckdb").get("t")
    for name in ("model", "model_ref", "pretrained", "checkpoint_sha256", "preprocess", "dim", "kind"):
        assert getattr(copied, name) == getattr(entry, name), name
    assert copied.rows == 2 and json.loads((other / "catalog.json").read_text())["tables"][0]["model"] == entry.model


# d. one schema per table

MIXED = [
    ("00000.tar", "a", dict(year=1889, rating=4, style="x", empty=None)),
    ("00001.tar", "b", dict(year="c. 1810", rating=3.5, school="y", empty=None)),
    ("00002.tar", "c", dict(rating=None, empty=None, nested={"k": [1, 2]})),
]


def _rows(records):
    return sorted((dict(r) for r in records), key=lambda r: r["key"])


def _plain(value):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [round(float(x), 6) for x in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _normal(records):
    return [{k: _plain(v) for k, v in r.items()} for r in _rows(records)]


def test_pandas_polars_and_plain_duckdb_read_the_folder_as_artlens_does(tmp_path, extract):
    for name, key, fields in MIXED:
        write_tar(tmp_path / "sh" / name, [(f"{key}.jpg", f.jpeg()), (f"{key}.json", meta(**fields))])
    summary = extract(tmp_path / "sh")
    root = tmp_path / "store"
    folder = root / "tables" / "t"
    parts = sorted(folder.glob("part-*.parquet"))
    assert len(parts) == 3
    schemas = [pq.read_schema(p).remove_metadata() for p in parts]
    assert all(s.equals(schemas[0]) for s in schemas)  # the same columns, order and types in every part
    types = dict(zip(schemas[0].names, map(str, schemas[0].types)))
    assert types["rating"] == "double" and types["year"] == "string" and types["empty"] == "null"
    assert set(summary.schema_conflicts) == {"year"}
    with store.open(root) as s:
        ours = _normal(s.sql("SELECT * FROM t").to_pylist())
    columns = set(ours[0])
    assert {"year", "rating", "style", "school", "empty", "nested", "embedding"} <= columns
    assert [r["rating"] for r in ours] == [4.0, 3.5, None] and [r["year"] for r in ours] == ["1889", "c. 1810", None]
    assert ours[2]["nested"] == '{"k": [1, 2]}' and ours[0]["school"] is None and ours[1]["style"] is None

    by_pandas = _normal(pd.read_parquet(folder).to_dict("records"))
    by_polars = _normal(pl.read_parquet(str(folder / "*.parquet")).to_dicts())
    con = duckdb.connect()
    by_duckdb = _normal(con.sql(f"SELECT * FROM read_parquet('{folder}/*.parquet')").to_arrow_table().to_pylist())
    for name, theirs in (("pandas", by_pandas), ("polars", by_polars), ("duckdb", by_duckdb)):
        assert set(theirs[0]) == columns, name
        assert theirs == ours, name


def test_a_new_column_or_wider_type_rewrites_earlier_parts_and_an_index_stays_current(tmp_path):
    root = tmp_path / "s"
    small_table(root, "t", shards=[("a", {"n": 1}), ("b", {"n": 2})])
    build_index(root, "t", kind="flat", recall_queries=2, progress=False)
    writer = TableWriter.reopen(root, "t")
    writer.commit("c", [{"key": "c-0", "shard": "c", "n": 2.5, "new": "z"}], vectors(1, 4, 9), [])
    writer.finish()
    layout = StoreLayout.at(root)
    for part in layout.parts("t"):
        schema = pq.read_schema(part)
        assert schema.names == ["key", "shard", "n", "new", "embedding"], part
        assert str(schema.field("n").type) == "double"
    with store.open(root) as s:
        got = {r["key"]: (r["n"], r["new"]) for r in s.sql("SELECT key, n, new FROM t").to_pylist()}
    assert got == {"a-0": (1.0, None), "a-1": (1.0, None), "b-0": (2.0, None), "b-1": (2.0, None),
                   "c-0": (2.5, "z")}
    assert open_index(root, "t", 4).index.ntotal == 5  # not stale: its covered parts' sizes followed
    assert not list((root / "tables" / "t").glob(".tmp-*"))


def _old_part(root, shard, fields):
    """A part as a writer killed in the middle of a widening (or an older artlens) left it: its own schema."""
    layout = StoreLayout.at(root)
    entry = Catalog(layout.catalog_path).get("t")
    rows = [{"key": f"{shard}-0", "shard": shard, **fields, "embedding": vectors(1)[0].tolist()}]
    table = pa.Table.from_pylist(rows).cast(pa.schema(
        [(k, pa.string()) for k in ("key", "shard")] + [(k, pa.array([v]).type) for k, v in fields.items()]
        + [("embedding", pa.list_(pa.field("element", pa.float32()), 4))]))
    write_atomic(table, layout.table_dir("t") / f"part-{shard}.parquet",
                 metadata={DESCRIPTION_KEY: json.dumps(entry.description())})


@pytest.mark.parametrize("finisher", ["finish", "repair"])
def test_finish_and_repair_bring_a_part_of_another_schema_to_the_tables_one(tmp_path, finisher):
    root = tmp_path / "s"
    small_table(root, "t", shards=[("a", {"n": 1.5, "label": "x"})])
    _old_part(root, "z", {"n": 7, "flag": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if finisher == "finish":
            TableWriter.reopen(root, "t").finish()
        else:
            repair(str(root))
    parts = StoreLayout.at(root).parts("t")
    schemas = [pq.read_schema(p).remove_metadata() for p in parts]
    assert len(parts) == 2 and schemas[0].equals(schemas[1])
    assert schemas[0].names == ["key", "shard", "n", "label", "flag", "embedding"]
    entry = Catalog(root / "catalog.duckdb").get("t")
    assert json.loads(entry.column_types)["flag"] == "bool" and entry.rows == 3
    with store.open(root) as s:
        got = {r["key"]: (r["n"], r["label"], r["flag"])
               for r in s.sql("SELECT key, n, label, flag FROM t").to_pylist()}
    assert got == {"a-0": (1.5, "x", None), "a-1": (1.5, "x", None), "z-0": (7.0, None, True)}


def test_widening_rules():
    assert widen(pa.int8(), pa.int64()) == pa.int64()
    assert widen(pa.int64(), pa.float64()) == pa.float64()
    assert widen(pa.null(), pa.bool_()) == pa.bool_() and widen(pa.string(), pa.null()) == pa.string()
    assert widen(pa.bool_(), pa.int64()) == pa.string()  # no silent True → 1
    assert widen(pa.string(), pa.int64()) == pa.string()
    conflicts = {}
    schema = union([pa.schema([("x", pa.int64()), ("y", pa.null())]), pa.schema([("x", pa.string())])], conflicts)
    assert schema.names == ["x", "y"] and schema.field("x").type == pa.string()
    assert set(conflicts) == {"x"} and "int64" in conflicts["x"] and "text" in conflicts["x"]


def test_conform_keeps_every_value_and_refuses_to_drop_a_column():
    table = pa.table({"x": [1, None], "nested": pa.array([[1, 2], None]), "b": [True, False]})
    target = pa.schema([("x", pa.string()), ("nested", pa.string()), ("b", pa.string()), ("new", pa.int64())])
    out = conform(table, target)
    assert out.schema.equals(target)
    assert out.to_pylist() == [{"x": "1", "nested": "[1, 2]", "b": "true", "new": None},
                               {"x": None, "nested": None, "b": "false", "new": None}]
    with pytest.raises(ValueError, match="not in the table schema"):
        conform(table, pa.schema([("x", pa.int64())]))


def test_write_json_renames_its_temporary_into_place(tmp_path):
    path = tmp_path / "catalog.json"
    write_json(path, {"tables": [TableEntry(name="t")], "indexes": []})
    assert json.loads(path.read_text())["tables"][0]["name"] == "t"
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.json"]
