"""Where every file of a store lives. Nothing outside `store/` builds a path into a store.

    STORE/
      catalog.duckdb                      one row per table: model, weights, preprocessing, counts
      tables/<table>/part-<shard>.parquet one embedding part per input shard (the commit marker)
      failures/<table>/part-<shard>.parquet the samples of that shard that could not be embedded
      indexes/<table>/<generation>.faiss   FAISS index over the table's embeddings (ids 0..n-1)
      indexes/<table>/<generation>.ids.parquet  id → key, shard: every index id maps back to a row
      results/<name>.json                  probe results (the shape in probes/result.py)
      results/examples/<table>/*.png       pictures of a table's rows (contact sheets of `artlens perturb`)

Parts are written to a hidden temporary name in the same folder and renamed into place, so a reader's
glob (`part-*.parquet`) never sees a half-written file.
"""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from artlens.store.errors import UserError

PART_GLOB = "part-*.parquet"
TMP_PREFIX = ".tmp-"


def temporary_path(path: Path) -> Path:
    """Where `path` is written before its rename: a hidden name carrying the writer's process id."""
    return path.with_name(f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that named this temporary still runs (names without a process id: no)."""
    pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
    if not pid.isdigit() or int(pid) == 0:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESERVED_TABLES = frozenset({"failures", "catalog"})


class LayoutError(UserError):
    """A table name or path that the store cannot hold."""


def check_table_name(name: str) -> str:
    if not _TABLE_NAME.match(name) or name.lower() in RESERVED_TABLES:
        raise LayoutError(
            f"invalid table name {name!r}: use letters, digits and '_', start with a letter or '_', "
            f"at most 63 characters, and not one of {sorted(RESERVED_TABLES)}"
        )
    return name


def shard_id(shard_url: str) -> str:
    """A file-name-safe id for a shard, stable across runs: readable stem + hash of the full URL."""
    stem = Path(shard_url.rstrip("/")).name
    stem = re.sub(r"\.tar(\.gz)?$", "", stem)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:48] or "shard"
    digest = hashlib.sha1(shard_url.encode("utf-8")).hexdigest()[:10]
    return f"{stem}-{digest}"


@dataclass(frozen=True)
class StoreLayout:
    root: Path
    remote: object = None        # store/remote.Mirror when the store lives at an fsspec URL

    @classmethod
    def at(cls, root: str | Path) -> "StoreLayout":
        from artlens.store.remote import is_remote, mirror
        if is_remote(root):
            m = mirror(str(root))
            return cls(m.local, m)
        return cls(Path(root).expanduser().absolute())

    def push(self, *paths: Path) -> None:
        """Upload files just written (in this order) when the store is remote; no-op for a local store."""
        if self.remote is not None:
            self.remote.push(*paths)

    def push_catalog(self) -> None:
        if self.remote is not None:
            self.remote.push_catalog()

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    def table_dir(self, table: str) -> Path:
        return self.root / "tables" / check_table_name(table)

    def failures_dir(self, table: str) -> Path:
        return self.root / "failures" / check_table_name(table)

    def part_path(self, table: str, shard_url: str) -> Path:
        return self.table_dir(table) / f"part-{shard_id(shard_url)}.parquet"

    def failures_path(self, table: str, shard_url: str) -> Path:
        return self.failures_dir(table) / f"part-{shard_id(shard_url)}.parquet"

    def parts(self, table: str) -> list[Path]:
        return sorted(self.table_dir(table).glob(PART_GLOB))

    def failure_parts(self, table: str | None = None) -> list[Path]:
        if table is not None:
            return sorted(self.failures_dir(table).glob(PART_GLOB))
        return sorted((self.root / "failures").glob(f"*/{PART_GLOB}"))

    def parts_glob(self, table: str) -> str:
        return str(self.table_dir(table) / PART_GLOB)

    def failures_glob(self) -> str:
        return str(self.root / "failures" / "*" / PART_GLOB)

    def index_dir(self, table: str) -> Path:
        return self.root / "indexes" / check_table_name(table)

    def index_files(self, table: str, generation: str) -> tuple[Path, Path]:
        d = self.index_dir(table)
        return d / f"{generation}.faiss", d / f"{generation}.ids.parquet"

    def results_dir(self) -> Path:
        return self.root / "results"

    def examples_dir(self, table: str) -> Path:
        """Pictures that show what a table holds (e.g. the contact sheets of a deformation table)."""
        return self.results_dir() / "examples" / check_table_name(table)

    def result_path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", name)[:200]
        return self.results_dir() / f"{safe}.json"

    def stale_temporaries(self, table: str) -> list[Path]:
        """Temporaries left by writers that died: not those of a live process on this machine, which another
        writer of the same table (a `--devices` process, a concurrent extract) may be about to rename."""
        dirs = (self.table_dir(table), self.failures_dir(table))
        return [p for d in dirs if d.exists() for p in d.glob(f"{TMP_PREFIX}*") if not _writer_alive(p)]
