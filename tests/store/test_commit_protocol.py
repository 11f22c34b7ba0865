"""The commit protocol at the moment that matters: a part's bytes are written and fsynced, and the process dies
before the rename that commits them (tests/fixtures/faultkit.py kills a child process there, deterministically,
with SIGKILL: nothing is cleaned up). No part is visible then, the store opens and shows the parts committed
before, and writing the same shards again gives exactly the rows and failures of an uninterrupted writer. The
child and the parent use the real TableWriter, Parquet files and DuckDB views."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from artlens import store
from artlens.store.catalog import TableEntry
from artlens.store.layout import PART_GLOB, TMP_PREFIX, StoreLayout
from artlens.store.writer import TableWriter

import faultkit
from conftest import FIXTURES

SHARDS = ["s0", "s1", "s2"]       # s0 has no failed samples, s1 and s2 have some
DIM = 8


def entry() -> TableEntry:
    return TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=DIM)


def shard(s: str) -> tuple[list[dict], np.ndarray, list[dict]]:
    """Rows, embeddings and failures of one demo shard (the same in every process)."""
    i = SHARDS.index(s)
    rows = [{"key": f"{s}_{j}", "shard": s, "item": j} for j in range(4)]
    vectors = np.random.default_rng(i).normal(size=(len(rows), DIM)).astype(np.float32)
    failures = [{"key": f"{s}_bad{j}", "shard": s, "stage": "decode", "error": f"bad image {j}"} for j in range(i)]
    return rows, vectors, failures


def write(root) -> None:
    """What an extraction does with these shards: commit each one its table does not hold yet."""
    writer = TableWriter(root, entry())
    for s in SHARDS:
        if not writer.is_done(s):
            writer.commit(s, *shard(s))
    writer.finish()


CHILD = """
import sys
sys.path[:0] = {paths!r}
import faultkit, test_commit_protocol
faultkit.arm({root!r}, {moment!r}, {folder!r}, {nth})
test_commit_protocol.write({root!r})
"""


def killed_writer(root, moment, folder, nth) -> str:
    code = CHILD.format(paths=[str(FIXTURES), str(Path(__file__).parent), str(FIXTURES.parent)], root=str(root), moment=moment,
                        folder=folder, nth=nth)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == -signal.SIGKILL, f"the writer was not killed at {moment} (rc {proc.returncode}): {err}"
    return err


def visible(root, folder="tables") -> list[str]:
    d = Path(root) / folder / "t"
    return sorted(p.name for p in d.glob(PART_GLOB)) if d.exists() else []


def temporaries(root) -> list[Path]:
    return sorted(p for folder in ("tables", "failures") for p in (Path(root) / folder / "t").glob(f"{TMP_PREFIX}*"))


def contents(root) -> tuple[list[dict], list[tuple]]:
    with store.open(root) as s:
        rows = s.sql("SELECT key, shard, item, embedding FROM t ORDER BY key").to_pylist()
        fails = s.sql('SELECT "table", key, shard, stage, error FROM failures').to_pylist()
    return rows, sorted(tuple(f.values()) for f in fails)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    write(root)
    return contents(root)


def part_name(s: str) -> str:
    return StoreLayout.at("unused").part_path("t", s).name


# (moment, folder, nth, what is committed when the writer dies): s0 is always committed; s1 is cut
CUTS = [
    pytest.param("after-fsync", "tables", 2, {"failures": ["s1"]}, id="s1-part-fsynced-not-renamed"),
    pytest.param("before-rename", "tables", 2, {"failures": ["s1"]}, id="between-s1-failures-and-part-renames"),
    pytest.param("after-fsync", "failures", 1, {"failures": []}, id="s1-failures-fsynced-not-renamed"),
    pytest.param("before-rename", "failures", 1, {"failures": []}, id="s1-failures-not-renamed"),
]


@pytest.mark.parametrize("moment,folder,nth,committed", CUTS)
def test_a_part_cut_between_its_bytes_and_its_rename_is_invisible_and_redone_exactly_once(
        tmp_path, reference, moment, folder, nth, committed):
    root = tmp_path / "store"
    err = killed_writer(root, moment, folder, nth)
    assert part_name("s1") in err.split(faultkit.MARK, 1)[1]  # it died writing s1's part, not another file

    # nothing of s1 is visible but what was renamed before the cut; its bytes lie under a temporary name
    assert visible(root) == [part_name("s0")]
    assert visible(root, "failures") == [part_name(s) for s in committed["failures"]]
    (tmp,) = temporaries(root)
    assert tmp.name.endswith(part_name("s1")) and tmp.parent.parent.name == folder
    assert pq.read_table(tmp).num_rows == (4 if folder == "tables" else 1)  # complete bytes, never committed

    # the store opens and its views hold exactly what was committed: s0's rows, the failures parts renamed
    expected_rows, expected_failures = reference
    rows, fails = contents(root)
    assert [r["key"] for r in rows] == [r["key"] for r in expected_rows if r["shard"] == "s0"]
    assert fails == [f for f in expected_failures if f[2] in committed["failures"]]

    s0 = os.stat(root / "tables" / "t" / part_name("s0"))
    write(root)  # the same command again
    rows, fails = contents(root)
    assert [{k: v for k, v in r.items() if k != "embedding"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "embedding"} for r in expected_rows]
    np.testing.assert_array_equal([r["embedding"] for r in rows], [r["embedding"] for r in expected_rows])
    assert fails == expected_failures  # each failure row once: none lost, none twice
    assert temporaries(root) == []     # the dead writer's temporary is gone
    again = os.stat(root / "tables" / "t" / part_name("s0"))
    assert (again.st_ino, again.st_mtime_ns) == (s0.st_ino, s0.st_mtime_ns)  # a committed part is never rewritten
    assert TableWriter.reopen(root, "t").finish().rows == 12
