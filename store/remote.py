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
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import fsspec

CATALOG = "catalog.duckdb"
TMP_PREFIX = ".tmp-"


def is_remote(root) -> bool:
    text = str(root)
    return "://" in text and not text.startswith("file://")


def cache_root() -> Path:
    return Path(os.environ.get("ARTLENS_CACHE", Path.home() / ".cache" / "artlens")).expanduser() / "stores"


class Mirror:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.local = cache_root() / hashlib.sha1(self.url.encode()).hexdigest()[:16]
        self.local.mkdir(parents=True, exist_ok=True)

    def _remote(self, path: Path) -> str:
        return f"{self.base}/{Path(path).relative_to(self.local).as_posix()}"

    def pull(self) -> None:
        """Make the mirror what the bucket holds."""
        try:
            found = self.fs.find(self.base, detail=True)
        except FileNotFoundError:
            found = {}
        wanted = set()
        for rpath, info in found.items():
            rel = rpath[len(self.base.rstrip("/")) + 1:]
            if not rel or any(part.startswith(TMP_PREFIX) for part in rel.split("/")):
                continue
            wanted.add(rel)
            dest = self.local / rel
            if rel == CATALOG or not dest.exists() or dest.stat().st_size != info.get("size"):
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get(rpath, str(dest))
        for path in [p for p in self.local.rglob("*") if p.is_file()]:
            rel = path.relative_to(self.local).as_posix()
            if rel not in wanted and not path.name.startswith(TMP_PREFIX) and not rel.endswith(".wal"):
                path.unlink()

    def push(self, *paths: Path) -> None:
        """Upload these files of the mirror, in this order (a missing one is skipped)."""
        for path in paths:
            if Path(path).exists():
                self.fs.put(str(path), self._remote(path))

    def push_catalog(self) -> None:
        self.push(self.local / CATALOG)

    def delete(self, *paths: Path) -> None:
        for path in paths:
            remote = self._remote(path)
            if self.fs.exists(remote):
                self.fs.rm(remote, recursive=True)


@lru_cache(maxsize=None)
def mirror(url: str) -> Mirror:
    """The mirror of a store URL, pulled once per process (`refresh` pulls again)."""
    m = Mirror(url)
    m.pull()
    return m


def refresh(root) -> None:
    """Pull again, to see what other processes pushed (no-op for a local store)."""
    if is_remote(root):
        mirror(str(root)).pull()
