"""Stream a WebDataset/img2dataset tar into samples, reporting every member that cannot be used.

A sample is the run of adjacent members sharing a key (the member path up to the first dot of its
base name). Reported, never silently skipped: members named with `..` or an absolute path, members
without an extension, a key that appears again later in the shard (the first occurrence is kept), a
second file of the same extension, and the cut-off tail of a truncated tar.
"""
from __future__ import annotations

import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from artlens.errors import ArtlensError
from artlens.pipeline.failures import Failure, Handler
from artlens.pipeline.shards.spec import open_shard

_UNSAFE = re.compile(r"^(/|\\|[A-Za-z]:)|(^|[/\\])\.\.([/\\]|$)")


@dataclass
class RawSample:
    key: str
    shard: str
    files: dict[str, bytes] = field(default_factory=dict)
    # Where each member's bytes start in the shard file, for a plain (uncompressed) local tar; the GPU
    # path then reads them straight from the file instead of passing them between processes.
    offsets: dict[str, int] = field(default_factory=dict)


class TarCut(ArtlensError):
    """The tar stream ended inside a header or a member (caught where the shard is read: a failure row)."""

    def __init__(self, after: str | None, reading: str | None, cause: BaseException):
        super().__init__(f"truncated or corrupt tar (last complete member: {after!r}, "
                         f"cut while reading: {reading!r}): {cause}")
        self.after, self.reading = after, reading


def split_name(name: str) -> tuple[str, str] | None:
    """'dir/abc.seg.jpg' → ('dir/abc', 'seg.jpg'); None when the base name has no extension."""
    directory, base = posixpath.split(name)
    if "." not in base.lstrip("."):
        return None
    stem, ext = base.split(".", 1)
    return posixpath.join(directory, stem) if directory else stem, ext.lower()


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends a stream *silently* at a truncated, empty or garbage header past the first member;
    only a zero block is a real end of archive. Any other header error becomes a ReadError here."""

    @classmethod
    def fromtarfile(cls, tarfile_):
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:
            raise
        except tarfile.HeaderError as exc:
            raise tarfile.ReadError(f"bad or missing header at byte {tarfile_.offset}: {exc}") from exc


def tar_members(fileobj: BinaryIO) -> Iterator[tuple[str, bytes, int | None]]:
    """(name, bytes, offset of the bytes in the file, or None for a compressed tar) of each regular member,
    streaming; raises TarCut where the stream breaks."""
    last = reading = None
    try:
        stream = tarfile.open(fileobj=fileobj, mode="r|*", tarinfo=_StrictTarInfo)
        plain = getattr(stream.fileobj, "comptype", None) == "tar"
        for info in stream:
            if not info.isreg():
                continue
            reading = info.name
            data = stream.extractfile(info).read()
            if len(data) != info.size:
                raise tarfile.ReadError(f"member has {len(data)} of {info.size} bytes")
            yield info.name, data, info.offset_data if plain else None
            last, reading = info.name, None
            stream.members = []
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise TarCut(last, reading, exc) from exc


class _Grouper:
    """Groups adjacent members into samples and reports the unusable ones."""

    def __init__(self, shard: str, handler: Handler):
        self.shard, self.handler = shard, handler
        self.current: RawSample | None = None
        self.seen: set[str] = set()
        self.skipping: str | None = None

    def fail(self, key: str | None, error: str) -> None:
        self.handler(Failure(key=key, shard=self.shard, stage="read", error=error))

    def add(self, name: str) -> tuple[RawSample | None, tuple[str, str] | None]:
        """Returns (a finished sample or None, (key, ext) where the member's bytes belong or None)."""
        if _UNSAFE.search(name):
            self.fail(name, "unsafe member name (absolute path or '..'); member skipped")
            return None, None
        parts = split_name(name)
        if parts is None:
            self.fail(name, "member name has no extension, so no sample key; member skipped")
            return None, None
        key, ext = parts
        finished = None
        if self.current is None or key != self.current.key:
            finished = self.flush()
            if key in self.seen:
                if self.skipping != key:
                    self.fail(key, "duplicate key: a sample with this key came earlier in the shard; first kept")
                self.skipping = key
                return finished, None
            self.skipping = None
            self.seen.add(key)
            self.current = RawSample(key=key, shard=self.shard)
        if ext in self.current.files:
            self.fail(key, f"duplicate member {name!r} in one sample; first kept")
            return finished, None
        return finished, (key, ext)

    def cut(self, cut: TarCut) -> None:
        """The stream broke: a sample whose member was being read is incomplete and is dropped."""
        parts = split_name(cut.reading) if cut.reading else None
        if parts and self.current is not None and parts[0] == self.current.key:
            self.current = None
        key = parts[0] if parts else None
        self.fail(key, f"{cut}; samples before the cut are kept")

    def flush(self) -> RawSample | None:
        done, self.current = self.current, None
        return done


def iter_samples(url: str, handler: Handler) -> Iterator[RawSample]:
    """Samples of one shard, in order. Failures go to `handler`; the generator itself never raises
    for bad content, only when the shard cannot be opened at all."""
    grouper = _Grouper(url, handler)
    local = "://" not in url
    with open_shard(url) as fh:
        try:
            for name, data, offset in tar_members(fh):
                finished, slot = grouper.add(name)
                if finished is not None:
                    yield finished
                if slot is not None:
                    grouper.current.files[slot[1]] = data
                    if local and offset is not None:
                        grouper.current.offsets[slot[1]] = offset
        except TarCut as cut:
            grouper.cut(cut)
    last = grouper.flush()
    if last is not None:
        yield last
