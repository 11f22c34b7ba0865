"""A row's image for the explorer, by table and key only (looked up in the catalog's tables, never a path):
the store's `image_bytes` (the row's own shard, checked unchanged; thumbnails cached in the store), or for a
table without images the URL its `image_url_column` names (`Store.image_url`)."""
from __future__ import annotations

from artlens.explorer.safety import NotFound, known_table
from artlens.store.images import ImageNotFound, ImageUnavailable


def image_url_column(entry) -> str:
    """The column of image URLs of a table without images ('' when none is named)."""
    return entry.image_url_column or ""


def has_images(entry) -> bool:
    """Whether the table's rows carry images in shards: tables of embeddings made by extraction (imported
    embeddings, text tables and key tables have none)."""
    return entry.kind == "image" and entry.has_embeddings and entry.pretrained != "imported" \
        and not image_url_column(entry)


def image_url(store, table: str, key: str) -> str | None:
    """The URL of the row's image for a table naming an image-URL column, else None."""
    known_table(store, table)
    if not image_url_column(store.entry(table)):
        return None
    try:
        return store.image_url(table, key)
    except ImageNotFound as exc:
        raise NotFound(str(exc)) from None


def image_bytes(store, table: str, key: str, size: int | None) -> tuple[bytes, str]:
    """The painting (or its thumbnail of longer side `size`) as (bytes, media type); NotFound when the row
    has no image the store can give (unknown key, a table without images, a moved or changed shard: the
    message says which)."""
    known_table(store, table)
    try:
        return store.image_bytes(table, key, size=size)
    except (ImageNotFound, ImageUnavailable) as exc:
        raise NotFound(str(exc)) from None
