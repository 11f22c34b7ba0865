"""Thumbnails of a table's images, cached in the store (`thumbnails/<table>/<size>/..`, store/layout.py).

A thumbnail is the row's image (store/images.py: every check of the shard passed), EXIF-rotated, RGB, its longer
side `size` (LANCZOS; a smaller image keeps its size), as JPEG. It is made on demand and kept, or made ahead for
many rows (`make`, `artlens extract --thumbnails N`); a kept one is read back without touching the shard. It is
written to a temporary name and renamed, so a reader sees a whole file or none; a store that cannot be written
(a read-only mount) still answers, uncached. In a store at a URL the thumbnails `make` writes are pushed to the
bucket, and one found in the bucket's listing is fetched alone; those made on demand stay in the local mirror.

The cache is named by the key and size only (a hit costs no query): rows replaced under the same key by a
re-extraction keep their old thumbnails until `thumbnails/<table>` is deleted.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tqdm import tqdm

from artlens.store.errors import UserError
from artlens.store.images import ImageUnavailable, decode, find_rows, original
from artlens.store.layout import temporary_path

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from artlens.store.query import Store

MIN_SIZE, MAX_SIZE = 16, 2048
JPEG_QUALITY = 85
MEDIA_TYPE = "image/jpeg"


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise UserError(f"size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {size!r}",
                        argument="size")
    return size


def render(img: "PILImage.Image", size: int) -> bytes:
    """An upright RGB image → JPEG bytes of longer side at most `size`."""
    from PIL import Image

    thumb = img.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def _cached(store: "Store", path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        pass
    remote = store.layout.remote
    if remote is None:
        return None
    rel = path.relative_to(store.layout.root).as_posix()
    if rel not in getattr(remote, "listing", {}):
        return None
    try:
        remote._get(rel)  # the one file, not its folder
        return path.read_bytes()
    except OSError:
        return None


def _keep(path: Path, data: bytes) -> bool:
    """Write the thumbnail atomically; False where the store cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(path)
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def thumbnail_bytes(store: "Store", table: str, key: str, size: int) -> bytes:
    """The JPEG thumbnail of a row at longer side `size`: from the cache, else made from its image and kept."""
    size = check_size(size)
    path = store.layout.thumbnail_path(table, key, size)
    data = _cached(store, path)
    if data is None:
        data = _make(store, table, key, size)
        _keep(path, data)
    return data


def _make(store: "Store", table: str, key: str, size: int, row=None) -> bytes:
    _, _, row, img = original(store, table, key, row)
    where = f"key {key!r} of table {table!r} (shard {row.shard})"
    return render(decode(img, where), size)


def make(store: "Store", table: str, size: int, keys: Iterable[str] | None = None,
         progress: bool = False) -> int:
    """Make (and keep) the thumbnails at `size` of `keys` (default: every row of the table) that the cache lacks;
    how many were made. A row whose image is unavailable is skipped (the explorer draws a card for it)."""
    size = check_size(size)
    if keys is None:
        store.entry(table)
        keys = store.sql(f'SELECT key FROM "{table}" ORDER BY key').column("key").to_pylist()
    keys = list(keys)
    todo = [k for k in keys if not store.layout.thumbnail_path(table, k, size).exists()]
    rows = find_rows(store, table, todo) if todo else {}
    made, pushed = 0, []
    bar = tqdm(total=len(keys), desc=f"thumbnails {table} @{size}", unit="image", disable=not progress)
    for key in keys:
        path = store.layout.thumbnail_path(table, key, size)
        if key in rows and not path.exists():
            try:
                data = _make(store, table, key, size, rows[key])
            except ImageUnavailable:
                data = None
            if data is not None and _keep(path, data):
                made += 1
                pushed.append(path)
        bar.update(1)
    bar.close()
    if pushed:
        store.layout.push(*pushed)
    return made
