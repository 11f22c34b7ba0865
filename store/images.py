"""A row's image, read from the shard its row names: a member of a tar (local or at an fsspec URL) or a file of
a folder read in place (`FOLDER#artlens-chunk=<id>`, the row's `source_path` under FOLDER).

Only what is needed is read: a plain tar's headers once (the member map, key → offset, size, extension, kept
per process while the file's size and modification time stay) and then the one member, by ranged reads over
fsspec for a URL (READ_BLOCK at a time), never the whole shard. A compressed tar is streamed up to the member.

Never a wrong image: the shard must be the one the table committed. The row's part is named by the shard's id
(store/layout.py `shard_id`: a local tar's name, size and edges), so the part the key's row came from must be
named by the shard's id now; a local file that is gone is "moved or deleted", one of another id "changed"; the
image's size must also be the `width` and `height` its row recorded (after the EXIF rotation, as extraction
measured it). A URL shard's id is its URL's hash, so there only the recorded size and the member's presence
are checked.
"""
from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from artlens.store.layout import FOLDER_CHUNK, TAR_SUFFIXES, legacy_shard_id, shard_id
from artlens.store.query import StoreError, _quote

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from artlens.store.query import Store

#: The image extensions of a sample, in the order the reader picks one (pipeline/shards/records.py IMAGE_EXTS:
#: the store imports no pipeline, tests/store/test_images.py checks that they agree).
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
#: The most pixels decoded (the extraction's default limit, pipeline/imaging/decode.py DEFAULT_MAX_PIXELS):
#: a decompression bomb is refused from its header, before any pixel is decoded.
MAX_PIXELS = 178_956_970
#: The largest member read (the extraction's DEFAULT_MAX_MEMBER_BYTES: a larger one was never embedded).
MAX_MEMBER_BYTES = 512 * 2**20
#: Bytes fetched per ranged read of a shard at a URL (fsspec's read-ahead block): each tar header costs one
#: small read (a larger block would fetch much of every member it skips); a member is read whole in one.
READ_BLOCK = 8 * 1024
_MEDIA = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp",
          "TIFF": "image/tiff", "MPO": "image/jpeg"}
_UNSAFE = re.compile(r"^(/|\\|[A-Za-z]:)|(^|[/\\])\.\.([/\\]|$)")


class ImageNotFound(StoreError, LookupError):
    """No such table, or no row of that key in it (the explorer answers 404)."""


class ImageUnavailable(StoreError):
    """The row exists but its image cannot be given: a table without images, a shard moved, changed or
    unreadable, a member that is not an image (or is too large to decode)."""


@dataclass(frozen=True)
class Member:
    """Where a sample's image lies in a plain tar: its data offset and size, and its extension."""
    offset: int
    size: int
    ext: str


@dataclass(frozen=True)
class ImageRow:
    """What the store recorded of a row's image: where it came from and the size extraction measured."""
    table: str
    key: str
    shard: str
    source_path: str | None
    part: str                 # the name of the part file the row is in
    width: int | None
    height: int | None


#: Shard → (signature, {key: Member}); a signature (size, mtime, inode) that changed rebuilds the map.
_MAPS: dict[str, tuple[tuple, dict[str, Member]]] = {}
_LOCK = threading.Lock()
#: Bytes this process fetched from shards at URLs (ranged reads): what reading images costs.
fetched_bytes = 0


def is_tar(shard: str) -> bool:
    return shard.split("?", 1)[0].endswith(TAR_SUFFIXES)


def _local(shard: str) -> str | None:
    """The local path of a shard, or None for one at a URL."""
    if shard.startswith("file://"):
        return shard[len("file://"):]
    return None if "://" in shard else shard


# ------------------------------------------------------------------ the row
def find_row(store: "Store", table: str, key: str) -> ImageRow:
    """The row of `key` in `table` as recorded (shard, source_path, width, height, its part's file name).
    ImageNotFound for an unknown table or key; ImageUnavailable for a table that holds no images."""
    if not isinstance(key, str):
        raise ImageNotFound(f"key must be text, got {type(key).__name__}", argument="key")
    found = find_rows(store, table, [key])
    if key not in found:
        raise ImageNotFound(f"no row of key {key!r} in table {table!r}", argument="key")
    return found[key]


def find_rows(store: "Store", table: str, keys: list[str]) -> dict[str, ImageRow]:
    """`find_row` for many keys in one query: key → ImageRow of those the table holds."""
    if table not in store.tables():
        raise ImageNotFound(f"no table {table!r} in {store.layout.root}; tables: {store.tables()}",
                            argument="table")
    entry = store.entry(table)
    if not entry.has_embeddings or entry.kind == "text":
        raise ImageUnavailable(f"table {table!r} holds no images (a {entry.kind!r} table)")
    if entry.parent:  # e.g. a deformation table: several rows per key, none of them the shard's image
        raise ImageUnavailable(f"table {table!r} is a {entry.kind!r} table of {entry.parent!r}: its rows are not "
                               f"the images of their shards; ask table {entry.parent!r} for the painting")
    store.materialize([table])
    if table in store.damaged():
        raise ImageUnavailable(store.damaged()[table])
    keys = [k for k in keys if isinstance(k, str)]
    if not store.layout.parts(table) or not keys:
        return {}
    glob = _quote(store.layout.parts_glob(table))
    con = store.con.cursor()
    try:
        relation = con.sql(f"SELECT * EXCLUDE (embedding) FROM read_parquet({glob}, union_by_name = true, "
                           "filename = '__artlens_part') WHERE key IN (SELECT unnest(?::VARCHAR[]))", params=[keys])
        names, found = relation.columns, relation.fetchall()
    except Exception as exc:  # noqa: BLE001 - duckdb.Error: a part vanished or unreadable
        raise ImageUnavailable(f"table {table!r} cannot be read: {' '.join(str(exc).split())}") from exc
    finally:
        con.close()
    rows = {}
    for values in found:
        row = dict(zip(names, values))
        rows.setdefault(row["key"], ImageRow(
            table=table, key=row["key"], shard=row.get("shard") or "", source_path=row.get("source_path"),
            part=Path(row["__artlens_part"]).name, width=_int(row.get("width")), height=_int(row.get("height"))))
    return rows


def _int(value) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


# ------------------------------------------------------------------ the shard is the one committed
def check_shard(row: ImageRow) -> None:
    """ImageUnavailable unless the row's shard is where it was and is the one its part was committed from."""
    shard = row.shard
    if FOLDER_CHUNK not in shard and not is_tar(shard):
        raise ImageUnavailable(
            f"table {row.table!r} has no images: its rows come from {shard!r}, not from tar shards or a folder of "
            "images (imported embeddings; `artlens import --image-url-column` names a column of image URLs)")
    local = _local(shard.rsplit(FOLDER_CHUNK, 1)[0])
    if FOLDER_CHUNK in shard:
        return  # the folder's file is checked where it is read (`_folder_file`)
    if local is None:
        return  # a URL's id is its hash: presence and the recorded size are checked when read
    if not os.path.isfile(local):
        raise ImageUnavailable(f"shard {shard} of table {row.table!r} was moved or deleted since it was extracted "
                               "(no file there); put it back at that path to see its images")
    stem = row.part[len("part-"):-len(".parquet")]
    if stem not in (shard_id(shard), legacy_shard_id(shard)):
        raise ImageUnavailable(f"shard {shard} changed since table {row.table!r} was extracted from it (its content "
                               f"id is now {shard_id(shard)!r}, the table's part is {row.part!r}); re-run the "
                               "extract to see its images")


def _folder_file(store: "Store", row: ImageRow) -> Path:
    root = row.shard.rsplit(FOLDER_CHUNK, 1)[0]
    rel = row.source_path
    if not rel or _UNSAFE.search(rel):
        raise ImageUnavailable(f"row {row.key!r} of table {row.table!r} records no usable source_path "
                               f"({rel!r}) in folder {root}")
    path = Path(_local(root) or root) / rel
    if not path.is_file():
        raise ImageUnavailable(f"file {rel!r} of shard {row.shard} (table {row.table!r}) was moved or deleted "
                               "since it was extracted; put the folder back at that path to see its images")
    part = store.layout.table_dir(row.table) / row.part
    try:
        changed = path.stat().st_mtime_ns > part.stat().st_mtime_ns
    except OSError:
        changed = False
    if changed:
        raise ImageUnavailable(f"file {rel!r} of shard {row.shard} changed since table {row.table!r} was extracted "
                               "from it (modified after its part was written); re-run the extract")
    return path


# ------------------------------------------------------------------ reading a tar
def _open(shard: str):
    local = _local(shard)
    if local is not None:
        return open(local, "rb")
    import fsspec

    fs, path = fsspec.core.url_to_fs(shard)
    return fs.open(path, "rb", block_size=READ_BLOCK, cache_type="readahead")


def _signature(shard: str) -> tuple:
    local = _local(shard)
    try:
        if local is not None:
            st = os.stat(local)
            return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
        import fsspec

        fs, path = fsspec.core.url_to_fs(shard)
        info = fs.info(path)
    except FileNotFoundError:
        raise ImageUnavailable(f"shard {shard} was moved or deleted since it was extracted (not found)") from None
    except OSError as exc:
        raise ImageUnavailable(f"shard {shard} cannot be read: {exc}") from exc
    return (info.get("size"), str(info.get("ETag") or info.get("LastModified") or info.get("mtime") or ""))


def _split(name: str) -> tuple[str, str] | None:
    """'dir/abc.seg.jpg' → ('dir/abc', 'seg.jpg'), as the tar reader keys members."""
    directory, base = posixpath.split(name)
    if "." not in base.lstrip("."):
        return None
    stem, ext = base.split(".", 1)
    return (posixpath.join(directory, stem) if directory else stem), ext.lower()


def _count(fh) -> None:
    global fetched_bytes
    cache = getattr(fh, "cache", None)
    fetched_bytes += int(getattr(cache, "total_requested_bytes", 0) or 0)


def build_map(shard: str) -> dict[str, Member]:
    """key → Member of a plain tar, from its headers only (tarfile seeks past the data), keyed as the tar reader
    keys samples: the first run of a key (a key appearing again later is ignored, as extraction ignored it),
    its first member of each extension, the first of IMAGE_EXTS present. Hard links point at their target."""
    fh = _open(shard)
    try:
        samples: dict[str, dict[str, Member]] = {}
        by_name: dict[str, Member] = {}
        current = None
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            for info in tar:
                tar.members = []
                if info.isreg():
                    member = Member(info.offset_data, info.size, "")
                elif info.islnk():
                    member = by_name.get(info.linkname) or by_name.get(posixpath.normpath(info.linkname))
                    if member is None:
                        continue
                else:
                    continue
                by_name[info.name] = member
                parts = _split(info.name)
                if parts is None or _UNSAFE.search(info.name):
                    continue
                key, ext = parts
                if key != current:
                    current = key if key not in samples else None
                    if current is None:
                        continue
                    samples[key] = {}
                elif current is None:
                    continue
                samples[key].setdefault(ext, Member(member.offset, member.size, ext))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ImageUnavailable(f"shard {shard} cannot be read as a tar: {exc}") from exc
    finally:
        _count(fh)
        fh.close()
    found = {}
    for key, members in samples.items():
        ext = next((e for e in IMAGE_EXTS if e in members), None)
        if ext is not None:
            found[key] = members[ext]
    return found


def member_map(shard: str) -> dict[str, Member]:
    """The shard's member map, built once per process while its signature stays."""
    signature = _signature(shard)
    with _LOCK:
        cached = _MAPS.get(shard)
    if cached is not None and cached[0] == signature:
        return cached[1]
    found = build_map(shard)
    with _LOCK:
        _MAPS[shard] = (signature, found)
    return found


def _read_member(shard: str, member: Member) -> bytes:
    if member.size > MAX_MEMBER_BYTES:
        raise ImageUnavailable(f"the image in shard {shard} has {member.size:,} bytes, over {MAX_MEMBER_BYTES:,}")
    fh = _open(shard)
    try:
        fh.seek(member.offset)
        data = fh.read(member.size)
    except OSError as exc:
        raise ImageUnavailable(f"shard {shard} cannot be read: {exc}") from exc
    finally:
        _count(fh)
        fh.close()
    if len(data) != member.size:
        raise ImageUnavailable(f"shard {shard} changed since it was extracted (a member ends early)")
    return data


def _streamed(shard: str, key: str) -> bytes | None:
    """A compressed tar cannot be read at an offset: stream it up to the sample's image."""
    fh = _open(shard)
    try:
        found: dict[str, bytes] = {}
        with tarfile.open(fileobj=fh, mode="r|*") as tar:
            for info in tar:
                parts = _split(info.name)
                if parts and parts[0] == key and info.isreg() and parts[1] not in found:
                    if info.size > MAX_MEMBER_BYTES:
                        raise ImageUnavailable(f"the image of {key!r} in shard {shard} has {info.size:,} bytes")
                    found[parts[1]] = tar.extractfile(info).read()
                elif found:
                    break
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ImageUnavailable(f"shard {shard} cannot be read as a tar: {exc}") from exc
    finally:
        fh.close()
    ext = next((e for e in IMAGE_EXTS if e in found), None)
    return None if ext is None else found[ext]


# ------------------------------------------------------------------ the image
def read_image_bytes(store: "Store", table: str, key: str, row: ImageRow | None = None) -> tuple[bytes, ImageRow]:
    """The original bytes of the row's image and its row (found, unless given), after the checks above."""
    row = row or find_row(store, table, key)
    check_shard(row)
    if FOLDER_CHUNK in row.shard:
        path = _folder_file(store, row)
        try:
            return path.read_bytes(), row
        except OSError as exc:
            raise ImageUnavailable(f"file {row.source_path!r} of shard {row.shard} cannot be read: {exc}") from exc
    if row.shard.endswith((".tar.gz", ".tgz")):
        data = _streamed(row.shard, key)
    else:
        member = member_map(row.shard).get(key)
        data = None if member is None else _read_member(row.shard, member)
    if data is None:
        raise ImageUnavailable(f"shard {row.shard} changed since table {table!r} was extracted from it: it holds no "
                               f"image of key {key!r}; re-run the extract")
    return data, row


def open_header(data: bytes, where: str, max_pixels: int = MAX_PIXELS) -> "PILImage.Image":
    """The image opened from its header only; ImageUnavailable for no image or one over `max_pixels`."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageUnavailable(f"the image of {where} is too large to decode: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: Pillow's plugins raise many types
        raise ImageUnavailable(f"the image of {where} is not an image Pillow can read: {type(exc).__name__}") \
            from None
    width, height = img.size
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise ImageUnavailable(f"the image of {where} is {width}x{height} pixels, over the {max_pixels:,} decoded")
    return img


def upright_size(img: "PILImage.Image") -> tuple[int, int]:
    """The size after the EXIF rotation (what extraction recorded as width, height)."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block: extraction ignored it too
        orientation = 1
    w, h = img.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def check_size(img: "PILImage.Image", row: ImageRow) -> None:
    """ImageUnavailable when the image is not the size its row recorded (another image under that key)."""
    if row.width and row.height and upright_size(img) != (row.width, row.height):
        w, h = upright_size(img)
        raise ImageUnavailable(f"shard {row.shard} changed since table {row.table!r} was extracted from it: the "
                               f"image of key {row.key!r} is {w}x{h}, its row recorded {row.width}x{row.height}; "
                               "re-run the extract")


def media_type(img: "PILImage.Image") -> str:
    return _MEDIA.get(img.format or "", "application/octet-stream")


def decode(img: "PILImage.Image", where: str) -> "PILImage.Image":
    """An image opened by `open_header` → upright 8-bit RGB (transparency composited onto white)."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, rgba).convert("RGB")
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                img = img.point(lambda v: v / 256).convert("L")
            return img.convert("RGB")
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes
        raise ImageUnavailable(f"the image of {where} cannot be decoded: {type(exc).__name__}: {exc}") from None


def original(store: "Store", table: str, key: str,
             row: ImageRow | None = None) -> tuple[bytes, str, ImageRow, "PILImage.Image"]:
    """(bytes, media type, row, the header-opened image) of a row's image, every check passed."""
    data, row = read_image_bytes(store, table, key, row)
    where = f"key {key!r} of table {table!r} (shard {row.shard})"
    img = open_header(data, where)
    check_size(img, row)
    return data, media_type(img), row, img


def image(store: "Store", table: str, key: str) -> "PILImage.Image":
    """The row's image, upright RGB, at its size."""
    _, _, row, img = original(store, table, key)
    return decode(img, f"key {key!r} of table {table!r} (shard {row.shard})")
