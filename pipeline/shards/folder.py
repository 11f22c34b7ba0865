"""A folder of images read in place as virtual shards: `artlens extract FOLDER` without a copy in tars.

The folder's image files (IMAGE_SUFFIXES, searched recursively, in the order `artlens shards` reads them) are
cut into chunks of `shard_size` files. A chunk is a shard like a tar: the unit of commit, resume and retry,
named by a URL `FOLDER#artlens-chunk=<id>` whose id (store/layout.py FOLDER_CHUNK) is
`folder-<index>-<hash>`, the hash of its files' relative paths, sizes and modification times: a changed,
added or removed file gives its chunk a new id (the chunk is redone), an unchanged chunk keeps its id (resume
skips it), wherever the folder lies. Each chunk yields the samples the tar reader yields (tarsamples.RawSample:
the key `artlens shards` would give the file, its bytes, a `.json` of its metadata row and `source_path`), so
records, decoding, batching, failures and the commit loop are the shards' code.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from artlens.errors import ArtlensError, UserError
from artlens.store.layout import FOLDER_CHUNK, TAR_SUFFIXES

from artlens.pipeline.failures import Failure, Handler
from artlens.pipeline.imaging.decode import DEFAULT_MAX_MEMBER_BYTES
from artlens.pipeline.shards.metatypes import parse_types
from artlens.pipeline.shards.sources import IMAGE_SUFFIXES, metadata_index, read_metadata_rows
from artlens.pipeline.shards.tarsamples import RawSample

DEFAULT_SHARD_SIZE = 1000


class FolderError(UserError):
    """A folder of images that cannot be extracted as asked (missing, empty, no images)."""


class FolderChanged(ArtlensError, OSError):
    """A chunk's files changed since its id was made: the chunk is not read (an OSError: the shard cannot be
    read now, so it is not committed and a later run redoes it under its new id)."""


@dataclass(frozen=True)
class FolderFile:
    rel: str           # relative path, '/'-separated: the `source_path` of its row
    path: Path
    size: int
    mtime_ns: int
    key: str


@dataclass(frozen=True)
class FolderSource:
    """A folder of images as shards: where it is, how many files a chunk holds, its metadata file."""
    root: str
    shard_size: int = DEFAULT_SHARD_SIZE
    metadata: str | None = None
    metadata_encoding: str | None = None
    metadata_types: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", os.path.abspath(self.root))
        object.__setattr__(self, "metadata_types", parse_types(self.metadata_types))
        if self.shard_size < 1:
            raise UserError(f"shard_size must be at least 1, got {self.shard_size}", argument="shard_size")

    # ------------------------------------------------------------ the main process: the chunk URLs
    def shards(self) -> list[str]:
        """The URL of every chunk, in order; a UserError for a folder that is missing or holds no image, and
        for a metadata file that cannot be read (before anything is extracted)."""
        root = Path(self.root)
        if not root.is_dir():
            raise FolderError(f"{self.root} is not a directory", argument="shards")
        files = _listing(self.root, refresh=True)
        if not files:
            what = "is empty" if not any(root.iterdir()) else "holds no image files"
            raise FolderError(f"folder {self.root} {what} (images: {', '.join(sorted(IMAGE_SUFFIXES))})",
                              argument="shards")
        self.index()  # a bad metadata file is reported now
        return [self._url(i, chunk) for i, chunk in enumerate(self._chunks(files))]

    def _chunks(self, files: list[FolderFile]) -> list[list[FolderFile]]:
        return [files[i:i + self.shard_size] for i in range(0, len(files), self.shard_size)]

    def _url(self, index: int, chunk: list[FolderFile]) -> str:
        return f"{self.root}{FOLDER_CHUNK}{chunk_id(index, chunk)}"

    def current_ids(self) -> list[str]:
        """The ids of the folder's virtual shards as last listed in this process."""
        return [chunk_id(i, chunk) for i, chunk in enumerate(self._chunks(_listing(self.root)))]

    def owns(self, url: str) -> bool:
        """Whether `url` is a virtual shard of this folder (at this path), current or not."""
        return is_chunk(url) and url.rsplit(FOLDER_CHUNK, 1)[0] == self.root

    def index(self) -> dict[str, dict]:
        """Metadata rows by relative path or file name (the folder source's join), read once per process."""
        if not self.metadata:
            return {}
        cache = (self.metadata, self.metadata_encoding, self.metadata_types)
        if cache not in _METADATA:
            rows = read_metadata_rows(self.metadata, self.metadata_encoding, self.metadata_types)
            _METADATA[cache] = metadata_index(rows, self.metadata)[1]
        return _METADATA[cache]

    # ------------------------------------------------------------ a worker: one chunk's samples
    def chunk(self, url: str) -> list[FolderFile]:
        """The files of the chunk `url` names, as they are now; FolderChanged when they are not those."""
        index = chunk_index(url)
        for refresh in (False, True):   # the listing is cached per process; a stale one is read again once
            chunks = self._chunks(_listing(self.root, refresh))
            if index < len(chunks) and self._url(index, chunks[index]) == url:
                return chunks[index]
        raise FolderChanged(f"the files of {url} changed since the run started (added, removed or modified); "
                            "the next run reads the chunk again under its new id")

    def files_of(self, url: str) -> list[FolderFile]:
        """`chunk`, or no files when they changed (the chunk is then reported when it is read)."""
        try:
            return self.chunk(url)
        except FolderChanged:
            return []

    def samples(self, url: str, handler: Handler,
                max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> Iterator[RawSample]:
        """The chunk's samples, in order: one per file, as the tar reader gives them (the image under its
        suffix, `.json` its metadata row and `source_path`). A file that cannot be read, or is over
        `max_member_bytes`, is a failure row of the chunk; the chunk goes on."""
        index = self.index()
        for file in self.chunk(url):
            if file.size > max_member_bytes:
                handler(Failure(file.key, url, "read", f"file {file.rel!r} has {file.size:,} bytes, over "
                                                       f"max_member_bytes {max_member_bytes:,}; it was not read"))
                continue
            try:
                data = file.path.read_bytes()
            except OSError as exc:
                handler(Failure(file.key, url, "read", f"cannot read file {file.rel!r}: {exc}"))
                continue
            meta = {**index.get(file.rel, index.get(file.path.name, {})), "source_path": file.rel}
            try:
                text = json.dumps(meta, ensure_ascii=False, default=str).encode()
            except (RecursionError, ValueError, TypeError) as exc:
                handler(Failure(file.key, url, "metadata", f"metadata cannot be written as JSON: {exc}"))
                continue
            ext = file.path.suffix.lower().lstrip(".")
            yield RawSample(key=file.key, shard=url, files={ext: data, "json": text})


_LISTINGS: dict[str, list[FolderFile]] = {}      # folder → its image files, per process
_METADATA: dict[tuple, dict[str, dict]] = {}


def _listing(root: str, refresh: bool = False) -> list[FolderFile]:
    """The folder's image files in `artlens shards`' order (sorted paths), each with its size, mtime and the
    key `artlens shards` gives it (pipeline/shards/write.py KeyMaker, over the whole folder)."""
    if refresh or root not in _LISTINGS:
        from artlens.pipeline.shards.write import KeyMaker  # here: write.py loads webdataset (and torch)

        base, keys, files = Path(root), KeyMaker(), []
        for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            rel = path.relative_to(base).as_posix()
            try:
                st = path.stat()
            except OSError:   # gone or unreadable: still a file of the chunk, its read fails as a row
                size, mtime = -1, -1
            else:
                size, mtime = st.st_size, st.st_mtime_ns
            files.append(FolderFile(rel, path, size, mtime, keys(rel)))
        _LISTINGS[root] = files
    return _LISTINGS[root]


def chunk_id(index: int, chunk: list[FolderFile]) -> str:
    """`folder-<index>-<16 hex>`: the hash of the chunk's relative paths, sizes and modification times."""
    digest = hashlib.sha1(b"artlens-folder-chunk\0")
    for f in chunk:
        digest.update(f.rel.encode("utf-8", "surrogateescape") + b"\0%d\0%d\0" % (f.size, f.mtime_ns))
    return f"folder-{index:05d}-{digest.hexdigest()[:16]}"


def chunk_index(url: str) -> int:
    ident = url.rsplit(FOLDER_CHUNK, 1)[-1]
    try:
        return int(ident.split("-")[1])
    except (IndexError, ValueError):
        raise FolderChanged(f"{url} is not a folder chunk") from None


def is_chunk(url: str) -> bool:
    return FOLDER_CHUNK in url


def is_image_folder(spec: str) -> bool:
    """A local directory with no .tar shard at its top: a folder of images (one with none is then reported
    as such by `FolderSource.shards`, not as a spec naming no shards)."""
    if "://" in spec or not os.path.isdir(spec):
        return False
    return not any(p.name.endswith(TAR_SUFFIXES) for p in Path(spec).iterdir())
