"""Reading tar shards: grouping by key, and every unusable member reported rather than dropped."""
import io
import tarfile

from conftest import write_tar
from artlens.pipeline.shards.tarsamples import iter_samples, split_name


def read(path):
    failures = []
    samples = list(iter_samples(str(path), failures.append))
    return samples, failures


def test_split_name_uses_first_dot_of_base_name():
    assert split_name("dir.v2/abc.seg.jpg") == ("dir.v2/abc", "seg.jpg")
    assert split_name("abc.JPG") == ("abc", "jpg")
    assert split_name("README") is None


def test_groups_adjacent_members(tmp_path):
    tar = write_tar(tmp_path / "a.tar", [("a.jpg", b"1"), ("a.json", b"{}"), ("b.png", b"2"), ("b.txt", b"t")])
    samples, failures = read(tar)
    assert [(s.key, sorted(s.files)) for s in samples] == [("a", ["jpg", "json"]), ("b", ["png", "txt"])]
    assert failures == []


def test_unsafe_names_and_extensionless_members_are_reported(tmp_path):
    tar = write_tar(tmp_path / "a.tar", [("../evil.jpg", b"x"), ("/abs.jpg", b"x"), ("ok.jpg", b"1"),
                                         ("sub/../../up.jpg", b"x"), ("noext", b"x")])
    samples, failures = read(tar)
    assert [s.key for s in samples] == ["ok"]
    reasons = {f.key: f.error for f in failures}
    assert set(reasons) == {"../evil.jpg", "/abs.jpg", "sub/../../up.jpg", "noext"}
    assert all(f.stage == "read" for f in failures)


def test_later_duplicate_key_is_reported_first_kept(tmp_path):
    tar = write_tar(tmp_path / "a.tar", [("a.jpg", b"first"), ("b.jpg", b"2"), ("a.jpg", b"second"),
                                         ("a.json", b"{}")])
    samples, failures = read(tar)
    assert [(s.key, s.files["jpg"]) for s in samples] == [("a", b"first"), ("b", b"2")]
    assert len(failures) == 1 and failures[0].key == "a" and "duplicate key" in failures[0].error


def test_truncated_tar_keeps_samples_before_the_cut(tmp_path):
    members = [(f"k{i}.jpg", bytes([i]) * 3000) for i in range(5)]
    full = write_tar(tmp_path / "full.tar", members).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full[: 3 * (512 + 3072) + 512 + 1000])  # inside k3's data (a member: header + padded data)
    samples, failures = read(cut)
    assert [s.key for s in samples] == ["k0", "k1", "k2"]
    assert len(failures) == 1 and failures[0].key == "k3" and "truncated" in failures[0].error


def test_tar_cut_inside_a_header(tmp_path):
    full = write_tar(tmp_path / "full.tar", [("a.jpg", b"1" * 600), ("b.jpg", b"2" * 600)]).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full[: 512 + 1024 + 100])  # a's header and data, then part of b's header
    samples, failures = read(cut)
    assert [s.key for s in samples] == ["a"]
    assert len(failures) == 1 and "truncated or corrupt tar" in failures[0].error


def test_tar_cut_at_a_member_boundary_is_reported(tmp_path):
    full = write_tar(tmp_path / "full.tar", [("a.jpg", b"1" * 512), ("b.jpg", b"2" * 512)]).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full[: 2 * 1024])  # both members complete, end-of-archive blocks missing
    samples, failures = read(cut)
    assert [s.key for s in samples] == ["a", "b"]
    assert len(failures) == 1 and "truncated or corrupt tar" in failures[0].error


def test_not_a_tar_at_all(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar archive" * 40)
    samples, failures = read(bad)
    assert samples == [] and len(failures) == 1


def test_odd_keys_survive(tmp_path):
    names = ["ünïcode käse.jpg", "with space.jpg", "a-b_c.jpg", "deep/dir/x.jpg", "x" * 200 + ".jpg"]
    tar = write_tar(tmp_path / "a.tar", [(n, b"1") for n in names])
    samples, failures = read(tar)
    assert [s.key for s in samples] == [n[:-4] for n in names]
    assert failures == []


def test_gzipped_tar(tmp_path):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("a.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    samples, failures = read(path)
    assert [s.files for s in samples] == [{"jpg": b"abc"}] and failures == []
