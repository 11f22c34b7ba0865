"""Typed CSV / JSONL metadata (pipeline/shards/metatypes.py through `read_metadata_rows` and `artlens shards`):
numbers, booleans and nulls keep their types in each sample's `.json` and arrive as typed columns in the
store; text that a type would change (`007`, long integers, dates) stays text; `metadata_types` forces a
column's type and a value that does not convert is one line naming file, row and column."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import imagefactory as imf
from artlens import store
from artlens.cli.main import main
from artlens.errors import UserError
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.metatypes import parse_types
from artlens.pipeline.shards.sources import SourceError, read_metadata_rows
from artlens.pipeline.shards.tarsamples import iter_samples


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


def samples_meta(out: Path) -> dict[str, dict]:
    metas = {}
    for tar in sorted(out.glob("*.tar")):
        failures = []
        for s in iter_samples(str(tar), failures.append):
            meta = json.loads(s.files["json"])
            metas[meta["source_path"]] = meta
        assert failures == []
    return metas


def test_csv_columns_keep_inferred_types_and_empty_cells_are_null(tmp_path):
    path = write(tmp_path / "m.csv",
                 "file_name,rating,year,zip,ok,date,title,big,note\n"
                 "a.jpg,1,1900,007,true,2020-01-01,NA,99999999999999999999,\n"
                 "b.jpg,2.5,,010,false,2020-01-02,,12,nan\n"
                 '0123.jpg,3,1901,011,,2020-01-03,"two\nlines",13,x\n')
    rows = read_metadata_rows(path)
    assert rows[0] == {"file_name": "a.jpg", "rating": 1.0, "year": 1900, "zip": "007", "ok": True,
                       "date": "2020-01-01", "title": "NA", "big": "99999999999999999999", "note": None}
    assert type(rows[0]["rating"]) is float and type(rows[0]["year"]) is int  # 1 beside 2.5: a float column
    assert rows[1]["year"] is None and rows[1]["title"] is None and rows[1]["ok"] is False
    assert rows[2]["file_name"] == "0123.jpg" and rows[2]["title"] == "two\nlines" and rows[2]["ok"] is None
    assert rows[1]["note"] == "nan"  # a text column keeps "nan" as text


def test_the_join_column_stays_text_even_when_it_looks_numeric(tmp_path):
    path = write(tmp_path / "m.csv", "name,score\n001,1\n2,2\n")
    assert [r["name"] for r in read_metadata_rows(path)] == ["001", "2"]


def test_forced_types_and_their_errors(tmp_path):
    path = write(tmp_path / "m.csv", "file,id,rating,flag\na.jpg,7,4,yes\nb.jpg,0042,5,no\n")
    rows = read_metadata_rows(path, types=parse_types("id=str,rating=float,flag=bool"))
    assert [(r["id"], r["rating"], r["flag"]) for r in rows] == [("7", 4.0, True), ("0042", 5.0, False)]
    assert type(rows[0]["rating"]) is float
    bad = write(tmp_path / "bad.csv", "file,rating\na.jpg,4\nb.jpg,\nc.jpg,four\u2028\n")
    with pytest.raises(UserError) as err:
        read_metadata_rows(bad, types=parse_types({"rating": "int"}))
    message = str(err.value)
    assert message == f"{bad}: row 3: column 'rating' value 'four\\u2028' is not an int"
    assert err.value.argument == "metadata_types" and "\n" not in message
    with pytest.raises(UserError, match=r"names column 'ratng', which .* does not have"):
        read_metadata_rows(bad, types=parse_types("ratng=float"))


@pytest.mark.parametrize("spec, match", [
    ("rating", r"entry 'rating' is not COLUMN=TYPE"),
    ("rating=flot", r"unknown type 'flot' for column 'rating'"),
    ("=int", r"entry '=int' is not COLUMN=TYPE"),
    ([42], r"entries are COLUMN=TYPE text, got 42"),
])
def test_bad_type_specs_are_refused_when_the_config_is_made(spec, match):
    with pytest.raises(UserError, match=match):
        ShardsConfig(source="x", out="y", metadata_types=spec)


def test_type_specs_in_every_form_are_the_same_pairs():
    want = (("rating", "float"), ("id", "str"))
    assert ShardsConfig(source="x", out="y", metadata_types="rating=float, id=str").metadata_types == want
    assert ShardsConfig(source="x", out="y", metadata_types=["rating=float", "id=STR"]).metadata_types == want
    assert ShardsConfig(source="x", out="y", metadata_types={"rating": "float", "id": "str"}).metadata_types == want
    assert ShardsConfig(source="x", out="y", metadata_types=want).metadata_types == want
    assert ShardsConfig(source="x", out="y").metadata_types == ()


def test_jsonl_int_and_float_in_one_column_become_floats_and_forced_types_apply(tmp_path):
    path = write(tmp_path / "m.jsonl", '{"file": "a.jpg", "r": 1, "n": 3}\n{"file": "b.jpg", "r": 2.5, "n": "4"}\n')
    rows = read_metadata_rows(path, types=parse_types("n=int"))
    assert [(r["r"], type(r["r"])) for r in rows] == [(1.0, float), (2.5, float)]
    assert [r["n"] for r in rows] == [3, 4]
    with pytest.raises(SourceError, match=r"m2.jsonl:1: a JSON line must be an object, got a list"):
        read_metadata_rows(write(tmp_path / "m2.jsonl", "[1, 2]\n"))


def test_hostile_and_empty_csv_files(tmp_path):
    assert read_metadata_rows(write(tmp_path / "empty.csv", "")) == []
    assert read_metadata_rows(write(tmp_path / "header.csv", "file,rating\n")) == []
    with pytest.raises(SourceError, match=r"ragged.csv: not a readable CSV file: .*Expected 2 columns"):
        read_metadata_rows(write(tmp_path / "ragged.csv", "file,rating\na.jpg,1,extra\n"))
    # a UTF-16 spreadsheet export still decodes (read_text), then is typed
    rows = read_metadata_rows(write(tmp_path / "u16.csv", "file,rating\r\na.jpg,3.5\r\n", "utf-16"))
    assert rows == [{"file": "a.jpg", "rating": 3.5}]


def test_typed_values_arrive_as_typed_columns_in_the_store(tmp_path, capsys, extract):
    src = tmp_path / "src"
    src.mkdir()
    lines = ["file_name,rating,year,liked,zip"]
    for i in range(6):
        (src / f"p{i}.png").write_bytes(imf.png(color=(40 * i, 20, 90)))
        lines.append(f"p{i}.png,{i if i % 2 else i + 0.5},{1900 + i},{'true' if i % 2 else 'false'},0{i}")
    meta = write(tmp_path / "meta.csv", "\n".join(lines) + "\n")
    out = tmp_path / "shards"
    assert main(["shards", str(src), "--out", str(out), "--metadata", meta, "--shard-size", "2",
                 "--metadata-types", "year=float", "--no-progress"]) == 0
    metas = samples_meta(out)
    assert metas["p1.png"]["rating"] == 1.0 and metas["p1.png"]["liked"] is True and metas["p1.png"]["zip"] == "01"
    summary = extract(out)
    assert (summary.images, summary.failures) == (6, 0)
    with store.open(tmp_path / "store") as s:
        types = {r["column_name"]: r["column_type"] for r in s.sql("DESCRIBE t").to_pylist()}
        ratings = sorted(s.sql("SELECT rating FROM t").column(0).to_pylist())
    # every shard (a part each) has a float rating, though shard 1 holds 1 and 2.5 and shard 2 holds 3 and 4.5
    assert (types["rating"], types["year"], types["liked"], types["zip"]) == ("DOUBLE", "DOUBLE", "BOOLEAN", "VARCHAR")
    assert ratings == [0.5, 1.0, 2.5, 3.0, 4.5, 5.0]


def test_a_value_failing_its_forced_type_stops_the_cli_in_one_line(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(imf.png())
    meta = write(tmp_path / "meta.csv", "file,rating\na.png,bad\n")
    code = main(["shards", str(src), "--out", str(tmp_path / "out"), "--metadata", meta,
                 "--metadata-types", "rating=float"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "row 1: column 'rating' value 'bad' is not a float" in err
    assert not (tmp_path / "out").exists()
