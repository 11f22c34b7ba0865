"""When two tables' embeddings can be compared: a rule over two catalog rows (text prompts against images,
a deformation table against its clean table)."""
from __future__ import annotations

from artlens.store.catalog import TableEntry
from artlens.store.errors import UserError

#: Catalog fields that must agree for two tables' embeddings to be comparable.
COMPATIBLE_FIELDS = ("model", "pretrained", "checkpoint_sha256", "dim")


class IncompatibleError(UserError):
    """Two tables whose embeddings were not made by the same model and weights."""


def check_compatible(image_entry: TableEntry, text_entry: TableEntry) -> None:
    """Raise IncompatibleError unless an image and a text table were embedded by the same model and weights."""
    sides = f"image table {image_entry.name!r} and text table {text_entry.name!r}"
    kinds = [f"{e.name!r} is a {e.kind!r} table, not a {want!r} table"
             for e, want in ((image_entry, "image"), (text_entry, "text")) if e.kind != want]
    diffs = [f"{f}: image table has {getattr(image_entry, f)!r}, text table has {getattr(text_entry, f)!r}"
             for f in COMPATIBLE_FIELDS if getattr(image_entry, f) != getattr(text_entry, f)]
    if kinds:
        raise IncompatibleError(f"{sides} cannot be compared: {'; '.join(kinds)}")
    if diffs:
        raise IncompatibleError(
            f"{sides} were made with different models or weights ({'; '.join(diffs)}); embed the prompts with "
            f"`model` {image_entry.model_ref or image_entry.model} `pretrained` {image_entry.pretrained}",
            argument=("model", "pretrained"))
