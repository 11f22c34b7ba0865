"""A full disk ends any command in one line and exit 4, wherever the ENOSPC is raised (a file write, the
background commit thread through pyarrow, DuckDB's catalog); what was committed is kept and the same command
resumes once space is freed (issue 17, point 12). The store lives on a real, small tmpfs."""
import base64
import os
import random
import subprocess
import sys
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imagefactory as f
from mounts import remount, tmpfs
from conftest import TINY_MODEL, meta, write_tar
from artlens import store
from artlens.cli.main import EXIT_NO_SPACE, main
from artlens.errors import disk_full
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

NO_SPACE = "no space left on the device writing "
RESUME = ": free space and re-run the same command; committed shards are kept"


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 8 MiB at tmp_path/disk (root and mount(8) needed: else skipped), unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "8m", "the full-disk tests") as disk:
        yield disk


def fill(disk, leave_bytes: int) -> None:
    """Fill the disk up to `leave_bytes` free (one more file each call)."""
    st = os.statvfs(disk)
    with open(disk / f"fill-{uuid.uuid4().hex[:6]}", "wb") as fh:
        fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave_bytes))


def write_big_shard(path, seed: int) -> None:
    """A shard of 12 images whose part holds ~2.7 MB of incompressible captions: too much for a nearly full disk."""
    rng = random.Random(seed)
    members = []
    for i in range(12):
        caption = base64.b64encode(rng.randbytes(225_000)).decode()
        members += [(f"k{i:02d}.jpg", f.jpeg(80, 60, (i * 20, 10, 200))), (f"k{i:02d}.json", meta(caption=caption))]
    write_tar(path, members)


def extract(shards, store_dir, capsys):
    """`artlens extract` (in-process: the commit thread, pyarrow and DuckDB are the same as in its own)."""
    code = main(["extract", "--shards", str(shards), "--store", str(store_dir), "--table", "t", "--model",
                 TINY_MODEL, "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([], code, out, err)


def one_line_no_space(run, where: str) -> None:
    assert run.returncode == EXIT_NO_SPACE, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"artlens extract: error: {NO_SPACE}{where}") and run.stderr.endswith(RESUME + "\n")


@pytest.mark.slow  # four extractions and 3 MB of captions: about 8 s on 2 shared cores
def test_a_full_disk_is_one_line_and_the_same_command_resumes(tmp_path, small_disk, capsys):
    shards = tmp_path / "shards"
    write_tar(shards / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.jpeg(64, 64))])
    root = small_disk / "store"

    # 1. a new store on a full disk: DuckDB cannot write the catalog (an IOException, not an OSError)
    fill(small_disk, 0)
    one_line_no_space(extract(shards, root, capsys), str(root / "catalog.duckdb"))
    assert not (root / "catalog.duckdb").exists()  # no half-written catalog that a re-run would call damaged
    for leftover in small_disk.glob("fill-*"):
        leftover.unlink()
    assert extract(shards, root, capsys).returncode == 0

    # 2. a shard whose part (~2.7 MB of incompressible captions) does not fit: pyarrow raises ENOSPC in the
    #    background commit thread
    write_big_shard(shards / "00001.tar", seed=0)
    fill(small_disk, 64 * 1024)
    run = extract(shards, root, capsys)
    one_line_no_space(run, str(root / "tables" / "t" / "part-00001-"))
    assert run.stdout == ""  # the run stopped at once: not retried, no summary pretending it finished
    parts = sorted(p.name for p in (root / "tables" / "t").iterdir() if p.name != ".lock")  # the schema lock
    assert len(parts) == 1 and parts[0].startswith("part-00000-")  # the committed shard kept, no temporary left

    # 3. more space: the same command commits what is missing, nothing twice
    remount(small_disk, "size=64m")
    again = extract(shards, root, capsys)
    assert again.returncode == 0, again.stderr
    assert "1 committed now, 1 already done (resumed)" in again.stdout and "table t now holds 14 rows" in again.stdout
    with store.open(root) as s:
        keys = s.sql("SELECT key FROM t ORDER BY key").column("key").to_pylist()
    assert keys == ["a", "b", *(f"k{i:02d}" for i in range(12))]


def test_a_full_disk_under_sql_out_is_one_line(tmp_path, small_disk, capsys):
    """`sql --out` on a full disk: through a file object (json) and through pyarrow (parquet)."""
    writer = TableWriter(tmp_path, TableEntry(name="vec", model="m", pretrained="p", preprocess="x", dim=4))
    writer.commit("s", [{"key": f"k{i}", "shard": "s"} for i in range(2000)],
                  np.random.default_rng(0).normal(size=(2000, 4)).astype(np.float32), [])
    writer.finish()
    fill(small_disk, 0)
    for fmt in ("json", "parquet"):
        out = small_disk / f"result.{fmt}"
        code = main(["sql", "--store", str(tmp_path), "SELECT * FROM vec", "--format", fmt, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == EXIT_NO_SPACE and err == f"artlens sql: error: {NO_SPACE}{out}{RESUME}\n", err


def test_disk_full_reads_every_library_s_way_of_saying_it(small_disk):
    """Real errors of a full disk, Python's and pyarrow's, and the texts DuckDB raises (seen on a full tmpfs:
    an IOException or a TransactionException whose message names the file)."""
    import duckdb

    fill(small_disk, 0)
    with pytest.raises(OSError) as python_error:
        with open(small_disk / "x.txt", "w") as fh:
            fh.write("x" * 100_000)
    assert disk_full(python_error.value) is not None
    with pytest.raises(OSError) as arrow_error:
        pq.write_table(pa.table({"x": list(range(100_000))}), str(small_disk / "x.parquet"))
    assert "Detail" in str(arrow_error.value) and disk_full(arrow_error.value) is not None
    with pytest.raises(duckdb.Error) as duckdb_error:
        duckdb.connect(str(small_disk / "x.duckdb")).execute("CREATE TABLE t AS SELECT range i FROM range(100000)")
    assert disk_full(duckdb_error.value).path == str(small_disk / "x.duckdb")
    wal = duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not write file '
                                      '"/s/catalog.duckdb.wal": No space left on device')
    assert disk_full(wal).path == "/s/catalog.duckdb.wal"
    assert disk_full(OSError(122, "Disk quota exceeded", "/q/part.parquet")).path == "/q/part.parquet"
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as inner:
            raise RuntimeError("a round failed") from inner
    except RuntimeError as outer:
        assert disk_full(outer) is not None and disk_full(outer).path is None
    assert disk_full(OSError(2, "No such file or directory", "/x")) is None and disk_full(ValueError("x")) is None


@pytest.mark.slow  # two spawned device processes import torch: about 15 s on 2 shared cores
def test_a_full_disk_under_devices_is_the_same_one_line(tmp_path, small_disk, capsys):
    """With `--devices`, the process whose commit finds the disk full hands it to the parent: one line and exit
    4, no traceback from the child, and the committed shard kept."""
    shards = tmp_path / "shards"
    write_tar(shards / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.jpeg(64, 64))])
    root = small_disk / "store"
    assert extract(shards, root, capsys).returncode == 0
    write_big_shard(shards / "00001.tar", seed=1)
    fill(small_disk, 64 * 1024)
    run = subprocess.run([sys.executable, "-m", "artlens", "extract", "--shards", str(shards), "--store", str(root),
                          "--table", "t", "--model", TINY_MODEL, "--pretrained", "random", "--devices", "cpu,cpu",
                          "--workers", "0", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in run.stderr, run.stderr
    open_clip_log = "WARNING:root:No pretrained weights loaded"  # open_clip's logging in each device process
    run.stderr = "".join(line for line in run.stderr.splitlines(True) if not line.startswith(open_clip_log))
    one_line_no_space(run, str(root / "tables" / "t" / "part-00001-"))
    assert sorted(p.name[:11] for p in (root / "tables" / "t").iterdir() if p.name != ".lock") == ["part-00000-"]
