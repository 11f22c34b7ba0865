"""Stores at fsspec URLs (`s3://bucket/artstore`, `gs://…`): a local mirror kept in step with the bucket.

Everything in `store/` works on local files (atomic renames, the DuckDB catalog file), which object
storage does not offer. So a store URL maps to a mirror folder under `$ARTLENS_CACHE` (default
`~/.cache/artlens/stores/<hash of the URL>`): opening the store **pulls** what the bucket holds (files
missing or of another size; the catalog always), and every write **pushes** the files it made, in the
order of the commit protocol: a shard's failures part, then its embedding part. An object PUT is atomic,
so the embedding part's appearance in the bucket is the commit there too, and a killed run resumes on any
machine from what the bucket holds. The bucket is the truth: files the bucket lacks are removed from the
mirror when it is pulled. Several writers (`--devices`) push their own parts; the catalog, whose counts
are recomputed from the parts at the end of every run, is pushed whole by whoever wrote it last.

Readers pull lazily (`mirror(url, lazy=True)`, what `artlens.store.open` asks for): the pull lists the
bucket (one LIST, no object read) and fetches only the small files (the catalog, probe results); the folders
of tables, failures and indexes (`LAZY_TOPS`) are fetched per folder, and within it only the files missing
or of another size, when a query first names that table (`Mirror.fetch`). So `SELECT count(*) FROM t1`
reads t1's parts and nothing of the other tables. A writer of the same process (`mirror(url)`) completes
the mirror first: writers and resume work on what the bucket holds, as before.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import fsspec

CATALOG = "catalog.duckdb"
#: Files fetched at every pull whatever their size: a rewrite can keep a file's size.
ALWAYS_FETCHED = (CATALOG, "catalog.json")
#: Local-only files a pull never deletes though the bucket lacks them: locks (tables/<t>/.lock,
#: indexes/<t>/.lock) that writers of this machine may hold right now, and DuckDB's write-ahead log.
LOCAL_ONLY_SUFFIXES = (".lock", ".wal")
TMP_PREFIX = ".tmp-"
#: Folders a lazy pull leaves in the bucket until a query needs them (per table: `<top>/<table>/`).
LAZY_TOPS = ("tables", "failures", "indexes", "results/examples", "results/saliency", "thumbnails", "maps")


def is_remote(root) -> bool:
    text = str(root)
    return "://" in text and not text.startswith("file://")


def cache_root() -> Path:
    return Path(os.environ.get("ARTLENS_CACHE", Path.home() / ".cache" / "artlens")).expanduser() / "stores"


def _lazy(rel: str) -> bool:
    return any(rel.startswith(top + "/") for top in LAZY_TOPS)


class Mirror:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.local = cache_root() / hashlib.sha1(self.url.encode()).hexdigest()[:16]
        self.local.mkdir(parents=True, exist_ok=True)
        #: What the bucket held at the last pull: path relative to the store → size in bytes.
        self.listing: dict[str, int | None] = {}
        #: Whether every file of the listing is in the mirror (a full pull); else `fetch` brings folders.
        self.complete = False
        self.pulled = False
        #: Bytes and files this process downloaded (what `artlens sql` on a bucket costs).
        self.fetched_bytes = 0
        self.fetched_files = 0

    def _remote(self, path: Path) -> str:
        return f"{self.base}/{Path(path).relative_to(self.local).as_posix()}"

    def _list(self) -> dict[str, int | None]:
        try:
            found = self.fs.find(self.base, detail=True)
        except FileNotFoundError:
            found = {}
        listing = {}
        for rpath, info in found.items():
            rel = rpath[len(self.base.rstrip("/")) + 1:]
            if rel and not any(part.startswith(TMP_PREFIX) for part in rel.split("/")):
                listing[rel] = info.get("size")
        return listing

    def _get(self, rel: str) -> None:
        """Download one file of the listing unless the mirror has it at the same size (the catalog always)."""
        dest = self.local / rel
        size = self.listing.get(rel)
        if rel not in ALWAYS_FETCHED and dest.exists() and dest.stat().st_size == size:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get(f"{self.base}/{rel}", str(dest))
        self.fetched_files += 1
        self.fetched_bytes += dest.stat().st_size

    def pull(self, lazy: bool = False) -> None:
        """Make the mirror what the bucket holds; `lazy`: only the files outside LAZY_TOPS (the folders
        there come with `fetch`, when a query needs them; files of them already mirrored stay)."""
        self.listing = self._list()
        for rel in self.listing:
            if not (lazy and _lazy(rel)):
                self._get(rel)
        self.complete, self.pulled = not lazy, True
        for path in [p for p in self.local.rglob("*") if p.is_file()]:
            rel = path.relative_to(self.local).as_posix()
            local_only = path.name.startswith(TMP_PREFIX) or rel.endswith(LOCAL_ONLY_SUFFIXES)
            if rel not in self.listing and not local_only:
                path.unlink()

    def fetch(self, folder: Path) -> None:
        """Bring the files of one folder of the store (e.g. `tables/t1`) into the mirror: those missing or
        of another size than in the bucket at the last pull. Free once the mirror is complete."""
        if self.complete:
            return
        prefix = Path(folder).relative_to(self.local).as_posix().rstrip("/") + "/"
        for rel in sorted(r for r in self.listing if r.startswith(prefix)):
            self._get(rel)

    def push(self, *paths: Path) -> None:
        """Upload these files of the mirror, in this order (a missing one is skipped)."""
        for path in paths:
            if Path(path).exists():
                self.fs.put(str(path), self._remote(path))
                self.listing[Path(path).relative_to(self.local).as_posix()] = Path(path).stat().st_size

    def push_catalog(self) -> None:
        self.push(self.local / CATALOG)

    def delete(self, *paths: Path) -> None:
        for path in paths:
            remote = self._remote(path)
            if self.fs.exists(remote):
                self.fs.rm(remote, recursive=True)
            prefix = Path(path).relative_to(self.local).as_posix()
            for rel in [r for r in self.listing if r == prefix or r.startswith(prefix.rstrip("/") + "/")]:
                del self.listing[rel]


@lru_cache(maxsize=None)
def _mirror(url: str) -> Mirror:
    return Mirror(url)


def mirror(url: str, lazy: bool = False) -> Mirror:
    """The mirror of a store URL, pulled once per process (`refresh` pulls again): whole, or for a reader
    `lazy` (the small files; tables come with `Mirror.fetch`). A lazy mirror asked for whole (a writer in a
    process that read first) is completed then."""
    m = _mirror(url)
    if not m.pulled:
        m.pull(lazy=lazy)
    elif not lazy and not m.complete:
        m.pull()
    return m


def refresh(root) -> None:
    """Pull again, to see what other processes pushed (no-op for a local store); a lazy mirror stays lazy."""
    if is_remote(root):
        m = _mirror(str(root))
        m.pull(lazy=m.pulled and not m.complete)
