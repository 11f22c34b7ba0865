"""Index generations under concurrency (issue 17, point 7): concurrent `artlens index` runs and readers adding new
parts never delete each other's files; temporaries of killed writers are removed by the next build; a catalog
that names missing index files gives one clear line, and a rebuild fixes it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mounts import tmpfs

from artlens import store
from artlens.cli.main import main
from artlens.store.catalog import Catalog
from artlens.store.index import IndexUnavailable, build_index
from artlens.store.layout import StoreLayout
from artlens.store.writer import TableWriter
from benchmarks.synthetic_tables import write_synthetic_table

REPO = Path(__file__).resolve().parents[2]

#: A process that imports everything, says it is ready, waits for the start signal (a file), then runs the
#: command: so that the four processes of a trial really run their commits at the same moment.
RACER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
root, go, ready, what = sys.argv[1:5]
from artlens import store
from artlens.store.index import build_index
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
if what == "index":
    for _ in range(3):  # several commits each: more chances to collide
        build_index(root, "t", kind="flat", recall_queries=50, progress=False)
else:
    with store.open(root) as s:
        assert s.neighbors("t", key="v00000001", k=5).num_rows == 5
"""


def race(root: Path, what: str, n: int, tmp: Path) -> list[subprocess.CompletedProcess]:
    go = tmp / f"go-{time.monotonic_ns()}"
    script = RACER.format(repo=str(REPO))
    procs, readies = [], []
    for i in range(n):
        ready = tmp / f"ready-{go.name}-{i}"
        readies.append(ready)
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(root), str(go), str(ready), what],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


def assert_consistent(root: Path) -> None:
    layout = StoreLayout.at(root)
    entry = Catalog(layout.catalog_path).get_index("t")
    assert entry is not None
    for path in layout.index_files("t", entry.generation):
        assert path.is_file(), f"the catalog names {path.name}, which is gone"
    left = sorted(p.name for p in layout.index_dir("t").iterdir())
    assert not [n for n in left if n.startswith(".tmp-")], left
    assert len({n.split(".")[0] for n in left if not n.startswith(".")}) <= 2, left  # current + previous
    assert main(["neighbors", "--store", str(root), "--table", "t", "--key", "v00000001", "-k", "3",
                 "--format", "jsonl"]) == 0


@pytest.mark.slow
def test_concurrent_index_builds_keep_the_generation_the_catalog_names(tmp_path, capsys):
    root = tmp_path / "store"
    write_synthetic_table(root, "t", n=3000, dim=16, part_rows=1000, clusters=10, seed=5)
    for _ in range(3):
        results = race(root, "index", 4, tmp_path)
        assert [r.returncode for r in results] == [0] * 4, [r.stderr[-2000:] for r in results]
        assert_consistent(root)
    assert len(capsys.readouterr().out.splitlines()) == 3 * 3


@pytest.mark.slow
def test_concurrent_readers_adding_new_parts_commit_one_generation(tmp_path, capsys):
    root = tmp_path / "store"
    write_synthetic_table(root, "t", n=2000, dim=16, part_rows=1000, clusters=10, seed=6)
    build_index(root, "t", kind="flat", recall_queries=50, progress=False)
    layout = StoreLayout.at(root)
    entry = Catalog(layout.catalog_path).get("t")
    for trial in range(2):
        writer = TableWriter(root, entry)
        vec = np.eye(16, dtype=np.float32)[[trial]]
        writer.commit(f"late-{trial}", [{"key": f"late{trial}", "shard": f"late-{trial}"}], vec, [])
        writer.finish()
        results = race(root, "neighbors", 4, tmp_path)
        assert [r.returncode for r in results] == [0] * 4, [r.stderr[-2000:] for r in results]
        assert_consistent(root)
        covered = Catalog(layout.catalog_path).get_index("t").covered()
        assert any(name.startswith(f"part-late-{trial}") for name in covered)
        assert Catalog(layout.catalog_path).get_index("t").rows == 2001 + trial
    capsys.readouterr()


def test_temporaries_of_killed_writers_are_removed_by_the_next_build(tmp_path):
    root = tmp_path / "store"
    write_synthetic_table(root, "t", n=500, dim=16, part_rows=500, clusters=5, seed=7)
    layout = StoreLayout.at(root)
    layout.index_dir("t").mkdir(parents=True)
    # a writer in the middle of writing its generation: a temporary named by the real layout, then SIGKILL
    writer = ("import sys, time\n"
              f"sys.path.insert(0, {str(REPO)!r})\n"
              "from artlens.store.layout import StoreLayout\n"
              "from artlens.store.layout import temporary_path\n"
              f"path = StoreLayout.at({str(root)!r}).index_files('t', 'killed')[0]\n"
              "tmp = temporary_path(path)\n"
              "tmp.write_bytes(b'half an index')\n"
              "print(tmp, flush=True)\n"
              "time.sleep(600)\n")
    killed = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    alive = subprocess.Popen([sys.executable, "-c", writer.replace("'killed'", "'alive'")],
                             stdout=subprocess.PIPE, text=True)
    try:
        dead_tmp, live_tmp = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        old_style = layout.index_dir("t") / ".tmp-20200101T000000-abcdef.faiss"  # older artlens: no pid
        old_style.write_bytes(b"x")
        assert dead_tmp.exists() and live_tmp.exists()
        build_index(root, "t", kind="flat", progress=False)
        assert not dead_tmp.exists() and not old_style.exists()
        assert live_tmp.exists()  # a live writer's file is never touched
    finally:
        alive.kill()
        alive.wait(timeout=30)


def test_a_catalog_naming_missing_index_files_is_a_clear_error_and_a_rebuild_fixes_it(tmp_path, capsys):
    root = tmp_path / "store"
    write_synthetic_table(root, "t", n=500, dim=16, part_rows=500, clusters=5, seed=8)
    entry = build_index(root, "t", kind="flat", progress=False)
    layout = StoreLayout.at(root)
    for path in layout.index_files("t", entry.generation):
        path.unlink()
    base = ["neighbors", "--store", str(root), "--table", "t", "--key", "v00000001", "-k", "3"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert "the index of 't' cannot be read" in err and entry.generation in err and "\n" not in err
    assert f"rebuild it: artlens index --store {root} --table t" in err
    with store.open(root) as s:
        with pytest.raises(IndexUnavailable, match="cannot be read"):
            s.neighbors("t", key="v00000001", k=3)
    assert main(["index", "--store", str(root), "--table", "t", "--no-progress"]) == 0
    assert main(base) == 0


def test_a_write_that_fails_leaves_no_temporary(tmp_path):
    """A full disk: a real tmpfs too small for the index (needs root and mount; skipped otherwise)."""
    with tmpfs(tmp_path / "small", "3m", "a full-disk index build") as mnt:
        root = mnt / "store"
        write_synthetic_table(root, "t", n=1500, dim=256, part_rows=1500, clusters=5, seed=9)  # 2.6 MB with the catalog
        with pytest.raises(IndexUnavailable, match="cannot write the index of 't'"):
            build_index(root, "t", kind="flat", recall_queries=10, progress=False)  # another 1.5 MB
        left = [p.name for p in StoreLayout.at(root).index_dir("t").iterdir()]
        assert not [n for n in left if n.startswith(".tmp-")], left
        assert Catalog(StoreLayout.at(root).catalog_path).get_index("t") is None
