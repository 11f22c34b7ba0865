"""Stream a WebDataset/img2dataset tar into samples, reporting every member that cannot be used.

A sample is the run of adjacent members sharing a key (the member path up to the first dot of its
base name). Reported, never silently skipped: members named with `..` or an absolute path, members
without an extension, a key that appears again later in the shard (the first occurrence is kept), a
second file of the same extension, and the cut-off tail of a truncated tar.

Members by type: a regular file is read; a hard link (`tar cf` of hard-linked files stores the second as one)
is read as the earlier member it links to (again from the file for a plain seekable tar; from the last
LINK_CACHE_BYTES of members kept for a compressed or streamed one; else a failure row); a symbolic link,
device, fifo or unknown type is a failure row naming it; a directory is ignored (it holds no data). A member
declaring more than `max_member_bytes` is a failure row and is skipped unread.
"""
from __future__ import annotations

import posixpath
import re
import tarfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator

from artlens.errors import ArtlensError
from artlens.pipeline.failures import Failure, Handler
from artlens.pipeline.imaging.decode import DEFAULT_MAX_MEMBER_BYTES
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


#: Bytes of the latest regular members kept for the hard links that may follow them, in a tar that cannot be
#: read again where a member lies (compressed, or not seekable); a plain seekable tar keeps only offsets.
LINK_CACHE_BYTES = 64 * 2**20
_TYPE_NAMES = {tarfile.SYMTYPE: "a symbolic link", tarfile.CHRTYPE: "a character device",
               tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a fifo"}


def _ignore(name: str, reason: str) -> None:
    pass


class _LinkTargets:
    """What a later hard link may need of the regular members read so far: where each lies in a plain
    seekable tar (read again on demand), else the bytes of the latest ones, LINK_CACHE_BYTES at most."""

    def __init__(self, fileobj: BinaryIO | None):
        self.fileobj = fileobj    # None: keep bytes
        self.spans: dict[str, tuple[int, int]] = {}
        self.cache: OrderedDict[str, bytes] = OrderedDict()
        self.cached = 0

    def remember(self, name: str, data: bytes, offset: int | None) -> None:
        if self.fileobj is not None:
            self.spans[name] = (offset, len(data))
            return
        if len(data) > LINK_CACHE_BYTES:
            return
        old = self.cache.pop(name, None)
        self.cached += len(data) - (len(old) if old is not None else 0)
        self.cache[name] = data
        while self.cached > LINK_CACHE_BYTES:
            self.cached -= len(self.cache.popitem(last=False)[1])

    def _held(self, target: str):
        """The entry `target` names: by its exact name (as tar writes links), else compared as tarfile
        compares them (normalised paths: 'a.jpg' for './a.jpg'); names are kept as read, to cost nothing."""
        held = self.spans if self.fileobj is not None else self.cache
        if target in held:
            return held[target]
        wanted = posixpath.normpath(target)
        return next((v for n, v in reversed(held.items()) if posixpath.normpath(n) == wanted), None)

    def read(self, target: str) -> tuple[bytes, int | None] | None:
        """(bytes, offset) of the member `target` names, or None when they are not available."""
        found = self._held(target)
        if found is None:
            return None
        if self.fileobj is None:
            return found, None
        offset, size = found
        back = self.fileobj.tell()   # the tar stream reads on from here: put the position back
        try:
            self.fileobj.seek(offset)
            data = self.fileobj.read(size)
        finally:
            self.fileobj.seek(back)
        return (data, offset) if len(data) == size else None


def _seekable(fileobj: BinaryIO) -> bool:
    try:
        return fileobj.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def tar_members(fileobj: BinaryIO, skipped: Callable[[str, str], None] = _ignore,
                max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> Iterator[tuple[str, bytes, int | None]]:
    """(name, bytes, offset of the bytes in the file, or None for a compressed tar) of each regular member and
    each hard link (the bytes of the member it links to), streaming. Members that cannot be used go to
    `skipped(name, reason)` (links other than hard links, devices, fifos, members over `max_member_bytes`,
    a hard link whose target is not available); directories are ignored. Raises TarCut where the stream
    breaks."""
    last = reading = None
    try:
        stream = tarfile.open(fileobj=fileobj, mode="r|*", tarinfo=_StrictTarInfo)
        plain = getattr(stream.fileobj, "comptype", None) == "tar"
        targets = _LinkTargets(fileobj if plain and _seekable(fileobj) else None)
        for info in stream:
            stream.members = []
            if info.isreg():
                if info.size > max_member_bytes:
                    skipped(info.name, f"member {info.name!r} declares {info.size:,} bytes, over max_member_bytes "
                                       f"{max_member_bytes:,}; it was not read")
                    continue
                reading = info.name
                data = stream.extractfile(info).read()
                if len(data) != info.size:
                    raise tarfile.ReadError(f"member has {len(data)} of {info.size} bytes")
                offset = info.offset_data if plain else None
                targets.remember(info.name, data, offset)
            elif info.islnk():
                found = targets.read(info.linkname)
                if found is None:
                    skipped(info.name, f"member {info.name!r} is a hard link to {info.linkname!r}, which is not an "
                                       "earlier regular member of the shard that can be read again (a compressed "
                                       f"or streamed tar keeps the last {LINK_CACHE_BYTES // 2**20} MiB of members "
                                       "for links)")
                    continue
                data, offset = found
                targets.remember(info.name, data, offset)
            elif info.isdir():
                continue
            else:
                kind = _TYPE_NAMES.get(info.type, f"of tar type {info.type.decode('latin-1')!r}")
                target = f" to {info.linkname!r}" if info.issym() else ""
                skipped(info.name, f"member {info.name!r} is {kind}{target}, not a file "
                                   "(only files and hard links are read)")
                continue
            yield info.name, data, offset
            last, reading = info.name, None
    except ArtlensError:
        raise   # e.g. `skipped` stopping a strict run: not a broken stream
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise TarCut(last, reading, exc) from exc


class _Grouper:
    """Groups adjacent members into samples and reports the unusable ones."""

    def __init__(self, shard: str, handler: Handler):
        self.shard, self.handler = shard, handler
        self.current: RawSample | None = None
        self.broken: str | None = None     # why `current` cannot be used (a member of it was skipped)
        self.seen: set[str] = set()
        self.skipping: str | None = None

    def fail(self, key: str | None, error: str) -> None:
        self.handler(Failure(key=key, shard=self.shard, stage="read", error=error))

    def add(self, name: str) -> tuple[RawSample | None, tuple[str, str] | None]:
        """Returns (a finished sample or None, (key, ext) where the member's bytes belong or None)."""
        if not name.isascii() and not _utf8(name):  # the store keeps text: a key it cannot write stops a run
            self.fail(_shown(name), "member name is not valid UTF-8; member skipped")
            return None, None
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

    def skip(self, name: str, reason: str) -> RawSample | None:
        """A member tar_members could not read: its sample is reported once and dropped (not embedded without
        it). Returns a finished sample, as `add` does."""
        finished, slot = self.add(name)
        if slot is None:  # `add` reported the member already (unsafe name, a later duplicate, …)
            return finished
        if self.broken is None:
            self.broken = f"{reason}; sample skipped"
        return finished

    def cut(self, cut: TarCut) -> None:
        """The stream broke: a sample whose member was being read is incomplete and is dropped."""
        parts = split_name(cut.reading) if cut.reading else None
        if parts and self.current is not None and parts[0] == self.current.key:
            if self.broken is not None:
                self.fail(self.current.key, self.broken)
            self.current, self.broken = None, None
        key = parts[0] if parts else None
        self.fail(key, f"{cut}; samples before the cut are kept")

    def flush(self) -> RawSample | None:
        done, self.current = self.current, None
        if done is not None and self.broken is not None:
            self.fail(done.key, self.broken)
            done = None
        self.broken = None
        return done


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A member name tarfile decoded with surrogate escapes, its odd bytes written as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _drain(grouper: _Grouper, skipped: list[tuple[str, str]]) -> Iterator[RawSample]:
    for name, reason in skipped:
        if (finished := grouper.skip(name, reason)) is not None:
            yield finished
    skipped.clear()


def iter_samples(url: str, handler: Handler,
                 max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> Iterator[RawSample]:
    """Samples of one shard, in order. Failures go to `handler`; the generator itself never raises
    for bad content, only when the shard cannot be opened at all. A member over `max_member_bytes` is
    not read: its sample is a failure row."""
    grouper = _Grouper(url, handler)
    local = "://" not in url
    skipped: list[tuple[str, str]] = []   # tar_members reports here; drained before each member it yields
    with open_shard(url) as fh:
        try:
            for name, data, offset in tar_members(fh, lambda *skip: skipped.append(skip), max_member_bytes):
                if skipped:
                    yield from _drain(grouper, skipped)
                finished, slot = grouper.add(name)
                if finished is not None:
                    yield finished
                if slot is not None:
                    grouper.current.files[slot[1]] = data
                    if local and offset is not None:
                        grouper.current.offsets[slot[1]] = offset
        except TarCut as cut:
            yield from _drain(grouper, skipped)
            grouper.cut(cut)
        else:
            yield from _drain(grouper, skipped)
    last = grouper.flush()
    if last is not None:
        yield last
