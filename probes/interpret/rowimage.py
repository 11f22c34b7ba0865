"""`artlens saliency --key K`: the painting of a store row (its own bytes from its shard, `Store.image_bytes`,
decoded as extraction decodes them) and the place the store keeps its map (`StoreLayout.saliency_path`), so
the explorer's painting page finds it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from artlens.pipeline.imaging.decode import ImageRejected, decode_image
from artlens.probes.interpret.source import ModelSource
from artlens.probes.interpret.view import SourceImage
from artlens.store.layout import StoreLayout


@dataclass(frozen=True)
class StoredRow:
    """A row's painting and where its map goes in the store (`layout` pushes it to a bucket)."""
    image: SourceImage
    out: Path
    layout: StoreLayout


def stored_row(source: ModelSource, key: str, method: str, text: str) -> StoredRow:
    """The painting of row `key` of the source's table. Errors, one line each: no such table or key
    (ImageNotFound), a table without images or a shard moved or changed (ImageUnavailable), bytes that do not
    decode (ImageRejected naming the key)."""
    from artlens import store

    with store.open(source.store) as s:
        s.entry(source.table)
        data, _ = s.image_bytes(source.table, key)
        layout = s.layout
    try:
        image = decode_image(data)
    except ImageRejected as exc:
        raise ImageRejected(f"the painting of key {key!r} of table {source.table!r}: {exc}",
                            argument=exc.arguments) from None
    where = f"{source.table}/{key}"
    return StoredRow(SourceImage(where, hashlib.sha256(data).hexdigest(), image),
                     layout.saliency_path(source.table, key, method, text), layout)
