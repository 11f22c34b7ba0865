"""Hostile members and metadata in the shard reader: links, devices, oversized members, odd names, metadata the
store cannot write. Each is one failure row naming the sample, never a dropped member or a stopped run."""
import json
import os
import shutil
import subprocess
import tarfile

import pytest

import imagefactory as f
from conftest import write_tar
from shardkit import huge_member_tar, tar_entries
from artlens.pipeline.shards import tarsamples
from artlens.pipeline.shards.records import MAX_METADATA_DEPTH, RecordError, to_record
from artlens.pipeline.shards.tarsamples import RawSample, iter_samples, tar_members


def read(path, **kwargs):
    failures = []
    samples = list(iter_samples(str(path), failures.append, **kwargs))
    return samples, failures


def hard_linked_pair(folder):
    """Two names of one file on disk (a.jpg, b.jpg) and a file of their own (c.jpg)."""
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(f.jpeg(color=(1, 2, 3)))
    os.link(folder / "a.jpg", folder / "b.jpg")
    (folder / "c.jpg").write_bytes(f.jpeg(color=(9, 9, 9)))
    return folder


# ------------------------------------------------------------------ hard links
@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_hard_links_written_by_python_tarfile_are_read_as_their_target(tmp_path, mode):
    src = hard_linked_pair(tmp_path / "src")
    shard = tmp_path / ("s.tar" if mode == "w" else "s.tar.gz")
    with tarfile.open(shard, mode) as tar:
        for name in ("a.jpg", "b.jpg", "c.jpg"):
            tar.add(src / name, arcname=name)
    assert [m.type for m in tarfile.open(shard)] == [tarfile.REGTYPE, tarfile.LNKTYPE, tarfile.REGTYPE]
    samples, failures = read(shard)
    assert failures == []
    got = {s.key: s for s in samples}
    assert list(got) == ["a", "b", "c"]
    assert got["b"].files["jpg"] == got["a"].files["jpg"] == (src / "a.jpg").read_bytes()
    if mode == "w":  # a plain local tar: the link's bytes are where its target's lie (the GPU path reads them there)
        assert got["b"].offsets["jpg"] == got["a"].offsets["jpg"]
        data = shard.read_bytes()
        start = got["b"].offsets["jpg"]
        assert data[start:start + len(got["b"].files["jpg"])] == got["b"].files["jpg"]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs the tar program")
def test_hard_links_written_by_the_tar_program_are_read_as_their_target(tmp_path):
    src = hard_linked_pair(tmp_path / "src")
    (src / "b.json").write_text(json.dumps({"title": "the copy"}))
    shard = tmp_path / "s.tar"
    subprocess.run(["tar", "cf", str(shard), "-C", str(src), "a.jpg", "b.jpg", "b.json", "c.jpg"], check=True)
    assert tarfile.open(shard).getmember("b.jpg").islnk()
    samples, failures = read(shard)
    assert failures == []
    assert [(s.key, sorted(s.files)) for s in samples] == [("a", ["jpg"]), ("b", ["jpg", "json"]), ("c", ["jpg"])]
    assert samples[1].files["jpg"] == (src / "a.jpg").read_bytes()


def test_hard_link_in_a_streamed_tar_is_read_from_the_bytes_kept_for_links(tmp_path):
    src = hard_linked_pair(tmp_path / "src")
    shard = tmp_path / "s.tar"
    with tarfile.open(shard, "w") as tar:
        for name in ("a.jpg", "b.jpg"):
            tar.add(src / name, arcname=name)
    with subprocess.Popen(["cat", str(shard)], stdout=subprocess.PIPE) as cat:  # a pipe: no seeking back
        assert not cat.stdout.seekable()
        skipped = []
        members = list(tar_members(cat.stdout, lambda *s: skipped.append(s)))
    assert skipped == []
    start = tarfile.open(shard).getmember("a.jpg").offset_data
    assert members == [("a.jpg", (src / "a.jpg").read_bytes(), start), ("b.jpg", (src / "a.jpg").read_bytes(), None)]


def test_hard_link_to_a_member_not_available_is_a_failure_row(tmp_path):
    big = bytes(14 * 2**20)  # five of them: more than the 64 MiB a compressed tar keeps for links
    assert 5 * len(big) > tarsamples.LINK_CACHE_BYTES
    entries = [("t.jpg", f.jpeg()), *[(f"fill{i}.bin", big) for i in range(5)],
               ("late.jpg", tarfile.LNKTYPE, "t.jpg"), ("nowhere.jpg", tarfile.LNKTYPE, "missing.jpg"),
               ("early.jpg", tarfile.LNKTYPE, "t.jpg"), ("ok.jpg", f.jpeg())]
    entries.insert(1, entries.pop(-2))  # `early` right after its target: still kept
    samples, failures = read(tar_entries(tmp_path / "s.tar.gz", entries, mode="w:gz"))
    assert [s.key for s in samples] == ["t", "early", "fill0", "fill1", "fill2", "fill3", "fill4", "ok"]
    assert samples[1].files["jpg"] == samples[0].files["jpg"]
    reasons = {x.key: x.error for x in failures}
    assert set(reasons) == {"late", "nowhere"} and all(x.stage == "read" for x in failures)
    assert "'late.jpg' is a hard link to 't.jpg'" in reasons["late"] and "64 MiB" in reasons["late"]
    assert "'nowhere.jpg' is a hard link to 'missing.jpg'" in reasons["nowhere"]
    # a plain tar reads the target again from the file, however far back it lies
    samples, failures = read(tar_entries(tmp_path / "s.tar", entries))
    assert [x.key for x in failures] == ["nowhere"] and "late" in [s.key for s in samples]


# ------------------------------------------------------------------ other member types
def test_symlinks_devices_and_fifos_are_failure_rows_naming_the_type_directories_are_ignored(tmp_path):
    entries = [("good.jpg", f.jpeg()), ("dir", tarfile.DIRTYPE, ""), ("sym.jpg", tarfile.SYMTYPE, "good.jpg"),
               ("chr.jpg", tarfile.CHRTYPE, ""), ("blk.jpg", tarfile.BLKTYPE, ""),
               ("fifo.jpg", tarfile.FIFOTYPE, ""), ("dir/inside.jpg", f.png())]
    samples, failures = read(tar_entries(tmp_path / "s.tar", entries))
    assert [s.key for s in samples] == ["good", "dir/inside"]
    reasons = {x.key: x.error for x in failures}
    assert reasons == {
        "sym": "member 'sym.jpg' is a symbolic link to 'good.jpg', not a file (only files and hard links are read); "
               "sample skipped",
        "chr": "member 'chr.jpg' is a character device, not a file (only files and hard links are read); "
               "sample skipped",
        "blk": "member 'blk.jpg' is a block device, not a file (only files and hard links are read); sample skipped",
        "fifo": "member 'fifo.jpg' is a fifo, not a file (only files and hard links are read); sample skipped",
    }


def test_a_sample_with_an_unreadable_member_is_one_failure_row_and_not_embedded_without_it(tmp_path):
    entries = [("a.jpg", f.jpeg()), ("a.json", tarfile.SYMTYPE, "../meta/a.json"), ("a.txt", b"caption"),
               ("b.json", tarfile.SYMTYPE, "b.json.real"), ("b.jpg", f.jpeg()), ("c.jpg", f.jpeg())]
    samples, failures = read(tar_entries(tmp_path / "s.tar", entries))
    assert [s.key for s in samples] == ["c"]
    assert [(x.key, x.stage) for x in failures] == [("a", "read"), ("b", "read")]
    assert "'a.json' is a symbolic link" in failures[0].error


def test_non_utf8_member_name_is_a_failure_row_the_store_can_write(tmp_path):
    entries = [("good.jpg", f.jpeg()), ("caf\udce9.jpg", f.jpeg()), ("next.jpg", f.jpeg())]  # byte 0xe9 (Latin-1 é)
    samples, failures = read(tar_entries(tmp_path / "s.tar", entries))
    assert [s.key for s in samples] == ["good", "next"]
    assert [(x.key, x.error) for x in failures] == [("caf\\xe9.jpg", "member name is not valid UTF-8; member skipped")]
    failures[0].key.encode("utf-8")


# ------------------------------------------------------------------ member sizes
def test_member_declaring_more_than_max_member_bytes_is_a_failure_row_and_never_read(tmp_path):
    good = [("a.jpg", f.jpeg()), ("a.json", b'{"n": 1}')]
    # the huge member's bytes are not in the file at all: reading them would cut the tar inside `huge`
    shard = huge_member_tar(tmp_path / "s.tar", good, "huge.jpg", 2**30, after=[])
    assert shard.stat().st_size < 10_000
    samples, failures = read(shard)
    assert [s.key for s in samples] == ["a"]
    reasons = {x.key: x.error for x in failures}
    assert reasons["huge"] == ("member 'huge.jpg' declares 1,073,741,824 bytes, over max_member_bytes 536,870,912; "
                               "it was not read; sample skipped")
    assert len(failures) == 2 and "cut while reading: None" in reasons[None]  # the file ends: the tar is cut
    assert all(x.stage == "read" for x in failures)


def test_max_member_bytes_applies_to_every_member_and_can_be_raised(tmp_path):
    members = [("small.jpg", f.jpeg(8, 8)), ("big.jpg", f.large_png(600, 400)), ("big.json", b"{}")]
    shard = write_tar(tmp_path / "s.tar", members)
    limit = len(members[1][1]) - 1
    samples, failures = read(shard, max_member_bytes=limit)
    assert [s.key for s in samples] == ["small"] and [x.key for x in failures] == ["big"]
    samples, failures = read(shard, max_member_bytes=limit + 1)
    assert [s.key for s in samples] == ["small", "big"] and failures == []


# ------------------------------------------------------------------ metadata the store cannot write as it is
def record(meta_bytes: bytes, **files):
    return to_record(RawSample(key="k", shard="s.tar", files={"jpg": f.jpeg(), "json": meta_bytes, **files}))


def nested(depth: int) -> bytes:
    return b'{"deep": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [3000, 500, MAX_METADATA_DEPTH + 1])
def test_deeply_nested_metadata_is_a_metadata_failure(depth):
    with pytest.raises(RecordError, match="nested") as caught:
        record(nested(depth))
    assert caught.value.stage == "metadata"


def test_nesting_up_to_the_limit_is_kept_as_json_text():
    row = record(nested(MAX_METADATA_DEPTH)).row
    assert row["deep"] == json.loads(nested(MAX_METADATA_DEPTH))["deep"]


def test_integers_beyond_int64_become_their_decimal_text_the_rest_keep_their_type():
    meta = {"big": 2**63, "huge": 2**64 + 1, "low": -2**63 - 1, "max": 2**63 - 1, "min": -2**63, "flag": True,
            "inside": [2**70]}
    row = record(json.dumps(meta).encode()).row
    assert (row["big"], row["huge"], row["low"]) == ("9223372036854775808", "18446744073709551617",
                                                      "-9223372036854775809")
    assert (row["max"], row["min"], row["flag"], row["inside"]) == (2**63 - 1, -2**63, True, [2**70])


def test_integer_of_more_digits_than_python_reads_is_a_metadata_failure():
    with pytest.raises(RecordError, match="invalid .json metadata"):
        record(b'{"n": ' + b"7" * 5000 + b"}")


def test_non_text_caption_and_source_path_are_stored_as_their_json_text():
    row = record(b'{"caption": 1984, "source_path": {"dir": "a", "n": 18446744073709551616}}').row
    assert row["caption"] == "1984"
    assert row["source_path"] == '{"dir": "a", "n": 18446744073709551616}'
    assert record(b'{"caption": [true, null]}').row["caption"] == "[true, null]"
    assert record(b'{"caption": "words"}').row["caption"] == "words"
    assert record(b'{"title": "x"}').row["caption"] is None


@pytest.mark.parametrize("meta", [b'{"title": "\\ud800"}', b'{"t": {"a": ["\\udfff"]}}', b'{"\\udc00": 1}',
                                  b'{"t": {"\\ud800": 1}}'])
def test_text_with_a_lone_surrogate_is_a_metadata_failure(meta):
    with pytest.raises(RecordError, match="lone surrogate") as caught:
        record(meta)
    assert caught.value.stage == "metadata"
    str(caught.value).encode("utf-8")  # the reason itself can be stored


def test_surrogate_pairs_are_fine():
    assert record(b'{"title": "\\ud83c\\udfa8 palette"}').row["title"] == "\U0001f3a8 palette"
