"""Where every file of a store lives. Nothing outside `store/` builds a path into a store.

    STORE/
      catalog.duckdb                      one row per table: model, weights, preprocessing, counts (DuckDB
                                          storage format v1.4.0: DuckDB 1.4 and later open it)
      catalog.json                        the same rows, replaced at every catalog write: no DuckDB needed
      tables/<table>/part-<shard>.parquet one embedding part per input shard (the commit marker); every part
                                          of a table has the same columns and types (store/schema.py) and
                                          carries the table's provenance in its key-value metadata
      tables/<table>/.lock                the table's schema lock (flock), held by each commit
      tables/<table>/part-all.parquet     a key table's one part (no embeddings: `artlens dedup`'s groups),
                                          replaced whole by a rename
      failures/<table>/part-<shard>.parquet the samples of that shard that could not be embedded
      indexes/<table>/<generation>.faiss   FAISS index over the table's embeddings (ids 0..n-1)
      indexes/<table>/<generation>.ids.parquet  id → key, shard: every index id maps back to a row
      results/<name>.json                  probe results (the shape in probes/result.py)
      results/<name>.rows.parquet          the rows behind a probe result (store/results.py), where it has them
      results/examples/<table>/*.png       pictures of a table's rows (contact sheets of `artlens perturb`)
      results/saliency/<table>/<stem>-<keyhash>-<method>-<texthash>.png  a row's saliency map (`artlens
                                           saliency --key`), its numbers in the .json beside it (store/saliency.py)
      maps/<table>/<method>.parquet        a table's 2-D map (key, x, y; store/maps.py), one per method
      thumbnails/<table>/<size>/<hh>/<hash>.jpg  a row's cached thumbnail, longer side <size> (store/thumbnails.py;
                                           hash: sha256 of the key and size), made on demand or at extract
      quarantine/<time>/...                files `artlens repair` moved aside (unreadable parts, a damaged
                                           catalog), under their path in the store; never read, never deleted

Parts are written to a hidden temporary name in the same folder and renamed into place, so a reader's
glob (`part-*.parquet`) never sees a half-written file.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from artlens.store.errors import UserError

PART_GLOB = "part-*.parquet"
#: The one part of a key table (a table without embeddings, written whole: store/writer.py write_key_table).
KEY_PART = "part-all.parquet"
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


TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: How much of each end of a local tar shard its id reads (besides its name and size).
ID_EDGE_BYTES = 64 * 1024
_IDS: dict[str, tuple[tuple, str]] = {}   # shard URL → ((inode, device, size, mtime), id): one read per file
#: A folder's virtual shard (pipeline/shards/folder.py) is `FOLDER#artlens-chunk=<id>`, and names its own id: the
#: hash of its files' relative paths, sizes and mtimes, so a moved folder keeps its ids and a changed file not.
FOLDER_CHUNK = "#artlens-chunk="
_CHUNK_ID = re.compile(r"folder-[0-9]{5,}-[0-9a-f]{16}")


def _stem(name: str) -> str:
    stem = re.sub(r"\.tar(\.gz)?$", "", name)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:48] or "shard"


def legacy_shard_id(shard_url: str) -> str:
    """The id of stores written before content ids (and still of every shard that is not a local tar file):
    readable stem + hash of the full URL."""
    digest = hashlib.sha1(shard_url.encode("utf-8")).hexdigest()[:10]
    return f"{_stem(Path(shard_url.rstrip('/')).name)}-{digest}"


def shard_id(shard_url: str) -> str:
    """A file-name-safe id for a shard, stable across runs and across moves: for a local tar file (symlinks
    resolved), its stem + a hash of its file name, its size and its first and last ID_EDGE_BYTES, so the same
    shards copied, re-mounted or reached through a symlink have the ids they had (and resume skips them);
    anything else (an object-storage URL, a file that cannot be read, a prompts or import file) keeps the
    hash of its URL (`legacy_shard_id`). Name + size + both ends, not a hash of the whole content: that
    would read every shard once more at every start (a full extra pass over the dataset); this reads
    128 KiB per shard, once per process (cached while the file's inode, size and mtime stay)."""
    chunk = shard_url.rsplit(FOLDER_CHUNK, 1)[-1] if FOLDER_CHUNK in shard_url else ""
    if _CHUNK_ID.fullmatch(chunk):
        return chunk
    local = shard_url[len("file://"):] if shard_url.startswith("file://") else shard_url
    if "://" in local or not local.endswith(TAR_SUFFIXES):
        return legacy_shard_id(shard_url)
    try:
        st = os.stat(local)
    except OSError:
        return legacy_shard_id(shard_url)
    if not stat.S_ISREG(st.st_mode):
        return legacy_shard_id(shard_url)
    signature = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
    cached = _IDS.get(shard_url)
    if cached is not None and cached[0] == signature:
        return cached[1]
    name = Path(os.path.realpath(local)).name
    digest = hashlib.sha1(b"artlens-shard-id\0" + name.encode("utf-8", "surrogateescape")
                          + b"\0%d\0" % st.st_size)
    try:
        with open(local, "rb") as fh:
            digest.update(fh.read(ID_EDGE_BYTES))
            if st.st_size > ID_EDGE_BYTES:
                fh.seek(max(ID_EDGE_BYTES, st.st_size - ID_EDGE_BYTES))
                digest.update(fh.read(ID_EDGE_BYTES))
    except OSError:
        return legacy_shard_id(shard_url)
    ident = f"{_stem(name)}-{digest.hexdigest()[:16]}"
    _IDS[shard_url] = (signature, ident)
    return ident


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def saliency_prefix(key: str) -> str:
    """The start of the file names of one row's saliency maps: `<file-safe key stem>-<key hash>-`."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", key)[:80] or "key"
    return f"{stem}-{_hash(key)}-"


_SALIENCY_METHOD = r"[a-z][a-z0-9_]{0,31}"
#: What follows a row's `saliency_prefix` in the name of one of its maps' sidecars: `<method>-<text hash>.json`
#: (the stem holds no '-', so a name belongs to one key only).
SALIENCY_REST = re.compile(rf"({_SALIENCY_METHOD})-[0-9a-f]{{12}}\.json")


def saliency_method(method: str) -> str:
    """`method` when it can be part of a saliency map's file name, else LayoutError."""
    if not re.fullmatch(_SALIENCY_METHOD, method):
        raise LayoutError(f"invalid saliency method {method!r}: lower-case letters, digits and '_'")
    return method


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
            self.remote.push(self.catalog_json_path)  # (a missing one is skipped)

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def catalog_json_path(self) -> Path:
        """The catalog's DuckDB-free copy (store/catalog.py `write_json`), beside it."""
        return self.root / "catalog.json"

    def table_dir(self, table: str) -> Path:
        return self.root / "tables" / check_table_name(table)

    def failures_dir(self, table: str) -> Path:
        return self.root / "failures" / check_table_name(table)

    def part_path(self, table: str, shard_url: str) -> Path:
        """Where a shard's embedding part is committed (named by `shard_id`)."""
        return self.table_dir(table) / f"part-{shard_id(shard_url)}.parquet"

    def failures_path(self, table: str, shard_url: str) -> Path:
        return self.failures_dir(table) / f"part-{shard_id(shard_url)}.parquet"

    def key_part_path(self, table: str) -> Path:
        """Where a key table's one part lives (replaced whole, by a rename, at every write)."""
        return self.table_dir(table) / KEY_PART

    def part_paths(self, table: str, shard_url: str) -> list[Path]:
        """Where a shard's committed part may be: `part_path`, then its name in stores written before content
        ids (`legacy_shard_id`), which still counts as the commit of that URL."""
        ids = dict.fromkeys((shard_id(shard_url), legacy_shard_id(shard_url)))
        return [self.table_dir(table) / f"part-{i}.parquet" for i in ids]

    def failures_paths(self, table: str, shard_url: str) -> list[Path]:
        """`failures_path`, then the failures part's name in stores written before content ids."""
        ids = dict.fromkeys((shard_id(shard_url), legacy_shard_id(shard_url)))
        return [self.failures_dir(table) / f"part-{i}.parquet" for i in ids]

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

    def saliency_dir(self, table: str) -> Path:
        """Where the saliency maps of a table's rows live (`artlens saliency --key`, store/saliency.py)."""
        return self.results_dir() / "saliency" / check_table_name(table)

    def saliency_path(self, table: str, key: str, method: str, text: str) -> Path:
        """The one place of the saliency map (PNG; its sidecar is the .json beside it) of row `key` explained
        for `text` by `method`: named by a readable stem of the key and hashes of the key and the text, so any
        key and any words make a safe, distinct name."""
        return self.saliency_dir(table) / f"{saliency_prefix(key)}{saliency_method(method)}-{_hash(text)}.png"

    def result_path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", name)[:200]
        return self.results_dir() / f"{safe}.json"

    def result_rows_path(self, name: str) -> Path:
        """The rows behind the result `name` (a Parquet file beside its JSON, same base name)."""
        path = self.result_path(name)
        return path.with_name(f"{path.name[:-len('.json')]}.rows.parquet")

    def maps_dir(self, table: str) -> Path:
        """Where a table's 2-D maps live (store/maps.py), one file per projection method."""
        return self.root / "maps" / check_table_name(table)

    def map_path(self, table: str, method: str) -> Path:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", method):
            raise LayoutError(f"invalid map method {method!r}: lower-case letters, digits and '_'")
        return self.maps_dir(table) / f"{method}.parquet"

    def thumbnails_dir(self, table: str) -> Path:
        """Where a table's cached thumbnails live (store/thumbnails.py), one folder per size."""
        return self.root / "thumbnails" / check_table_name(table)

    def thumbnail_path(self, table: str, key: str, size: int) -> Path:
        """The cached thumbnail of `key` at longer side `size`: named by a hash, so any key is a safe name."""
        digest = hashlib.sha256(b"artlens-thumbnail\0" + key.encode("utf-8", "surrogatepass")
                                + b"\0%d" % size).hexdigest()[:40]
        return self.thumbnails_dir(table) / str(int(size)) / digest[:2] / f"{digest}.jpg"

    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    def tables_on_disk(self) -> list[str]:
        """Names of the folders under tables/ and failures/ (whatever the catalog says), sorted."""
        names = {d.name for top in ("tables", "failures") if (self.root / top).is_dir()
                 for d in (self.root / top).iterdir() if d.is_dir()}
        return sorted(names)

    def stale_temporaries(self, table: str) -> list[Path]:
        """Temporaries left by writers that died: not those of a live process on this machine, which another
        writer of the same table (a `--devices` process, a concurrent extract) may be about to rename."""
        dirs = (self.table_dir(table), self.failures_dir(table))
        return [p for d in dirs if d.exists() for p in d.glob(f"{TMP_PREFIX}*") if not _writer_alive(p)]

    def stale_index_temporaries(self, table: str) -> list[Path]:
        """Temporaries of index writes whose process died (a killed or failed `artlens index`, a reader that
        was adding new parts), and those of older artlens versions, whose names carry no process id."""
        d = self.index_dir(table)
        return [p for p in d.glob(f"{TMP_PREFIX}*") if not _writer_alive(p)] if d.exists() else []


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made, with its folder, if missing): the store's locks (a table's
    schema lock, its index lock). Raises OSError where the store cannot be written (a read-only mount)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
