"""`artlens shards` over hostile sources: an image Pillow refuses with a plain ValueError (PNG chunks inflating
past its limit) is a manifest failure like any unreadable image, integers past int64 in a Parquet table travel
into the shards and through `artlens extract`, and a run that stops leaves no temporary file."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imagefactory as imf
from artlens import store
from artlens.cli.main import main
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.sources import SourceItem
from artlens.pipeline.shards.tarsamples import iter_samples
from artlens.pipeline.shards.write import write_shards

HOSTILE_PNGS = {"icc.png": imf.png_inflating_chunk(b"iCCP"), "sub/ztxt.png": imf.png_inflating_chunk(b"zTXt"),
                "itxt.png": imf.png_inflating_chunk(b"iTXt", after_idat=True)}


def put(root, rel, data):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_pngs_with_chunks_inflating_past_pillows_limit_are_manifest_failures(tmp_path, capsys, extract):
    src, out = tmp_path / "src", tmp_path / "out"
    put(src, "good.jpg", imf.jpeg())
    put(src, "sub/good.png", imf.png())
    for rel, data in HOSTILE_PNGS.items():
        put(src, rel, data)
    assert main(["shards", str(src), "--out", str(out), "--no-progress"]) == 0
    assert "2 samples in 1 shard(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["00000.tar", "manifest.json"]  # no temporary file
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {x["source_path"]: x["reason"] for x in manifest["failures"]}
    assert set(reasons) == set(HOSTILE_PNGS)
    assert all("chunk inflates past Pillow's limit" in r for r in reasons.values()), reasons
    summary = extract(out)
    assert (summary.images, summary.failures, summary.exit_code) == (2, 0, 0)


def test_parquet_uint64_past_int64_is_sharded_exactly_and_extracted_as_text(tmp_path, extract):
    table = pa.table({"image": pa.array([imf.jpeg(), imf.png(), imf.webp()], pa.binary()),
                      "id": pa.array([1, 2**63 + 1, 2**64 - 1], pa.uint64())})
    pq.write_table(table, tmp_path / "u.parquet")
    out = tmp_path / "out"
    manifest = write_shards(ShardsConfig(source=str(tmp_path / "u.parquet"), out=str(out), format="parquet",
                                         progress=False))
    assert (manifest.samples, manifest.failures) == (3, [])
    failures = []
    samples = list(iter_samples(str(out / "00000.tar"), failures.append))
    assert failures == [] and [json.loads(s.files["json"])["id"] for s in samples] == [1, 2**63 + 1, 2**64 - 1]
    summary = extract(out)
    assert (summary.images, summary.failures, summary.exit_code) == (3, 0, 0)
    with store.open(tmp_path / "store") as s:
        ids = sorted(s.sql("SELECT id FROM t").column(0).to_pylist())
    assert ids == ["1", "18446744073709551615", "9223372036854775809"]  # exact digits, as text


def test_a_run_that_stops_part_way_leaves_no_temporary_file(tmp_path):
    def items():
        yield SourceItem("a.jpg", imf.jpeg())
        yield SourceItem("b.png", imf.png())
        raise OSError("the source's disk went away")

    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk went away"):
        write_shards(ShardsConfig(source="src", out=str(out), progress=False, shard_size=10), items=items())
    assert list(out.iterdir()) == []


def test_a_metadata_line_nested_too_deep_is_one_clear_error_naming_the_line(tmp_path, capsys):
    src = tmp_path / "src"
    put(src, "a.jpg", imf.jpeg())
    meta = tmp_path / "meta.jsonl"
    meta.write_text('{"file": "a.jpg", "style": "x"}\n' + '{"file": "b.jpg", "x": ' + "[" * 5000 + "]" * 5000 + "}\n")
    code = main(["shards", str(src), "--out", str(tmp_path / "out"), "--metadata", str(meta)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{meta}:2: JSON line nested too deeply" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
