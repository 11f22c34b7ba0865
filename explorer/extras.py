"""What a painting's page shows besides its metadata and neighbours, where the store holds it: the painting
under each deformation table of its table (`artlens perturb`: per deformation and severity the cosine of the
deformed embedding to the clean one, the SSIM, and the contact sheet drawn on demand by `artlens.api`) and
its saliency maps (`artlens saliency --key`, `Store.saliency_maps`). Read-only; NotFound (404) for an unknown
table, key or map."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from artlens.errors import UserError
from artlens.explorer.api import json_value, require_key
from artlens.explorer.images import has_images
from artlens.explorer.safety import NotFound, known_table
from artlens.store.filters import quote_ident

DEFORMATION_KIND = "deformation"
#: The columns of a deformation table's rows the page shows, and the cosine computed beside them.
ROW_FIELDS = ("deformation", "severity", "level", "ssim", "cosine")


def _url(table: str, route: str, **params) -> str:
    return f"/api/tables/{quote(table, safe='')}/{route}?{urlencode(params)}"


def deformation_tables(store, table: str) -> list[str]:
    """The deformation tables made from `table` (catalog kind 'deformation', parent `table`), by name."""
    return [name for name in store.tables()
            if store.entry(name).kind == DEFORMATION_KIND and store.entry(name).parent == table]


def _rows(store, deformed: str, clean: str, key: str) -> list[dict]:
    """The deformed rows of `key`, each with the cosine of its embedding to the clean row's."""
    found = store.sql(
        f"SELECT deformation, severity, level, ssim, array_cosine_similarity(embedding, "
        f"(SELECT embedding FROM {quote_ident(clean)} WHERE key = ? LIMIT 1)) AS cosine "
        f"FROM {quote_ident(deformed)} WHERE key = ? ORDER BY deformation, severity", [key, key])
    return [{f: json_value(row[f]) for f in ROW_FIELDS} for row in found.to_pylist()]


def _deformation(store, deformed: str, clean: str, key: str) -> dict | None:
    rows = _rows(store, deformed, clean, key)
    if not rows:
        return None
    from artlens.api import deformation_suite

    suite, error = None, None
    try:
        suite = deformation_suite(store.entry(deformed)).name
    except UserError as exc:   # UnknownSuite: no sheet, and the page says why
        suite, error = getattr(exc, "suite_name", "") or None, str(exc)
    if error is None and not has_images(store.entry(clean)):
        error = f"table {clean!r} holds no images to deform"
    return {"table": deformed, "suite": suite, "rows": rows,
            "sheet": None if error else _url(deformed, "sheet", key=key), "sheet_error": error}


def extras(store, table: str, key: str) -> dict:
    """{"deformations": [{table, suite, sheet (URL or null), sheet_error, rows: [{deformation, severity,
    level, ssim, cosine}]}], "saliency": [{method, text, score, url}]}: empty lists when the store has none."""
    known_table(store, table)
    require_key(store, table, key)
    found = (_deformation(store, d, table, key) for d in deformation_tables(store, table))
    maps = store.saliency_maps(table, key)
    return {"deformations": [d for d in found if d is not None],
            "saliency": [{"method": m["method"], "text": m["text"], "score": json_value(m["score"]),
                          "url": _url(table, "saliency", key=key, n=i)} for i, m in enumerate(maps)]}


def saliency_png(store, table: str, key: str, n: int) -> bytes:
    """The PNG of the `n`-th saliency map of row `key` (the order of `extras`' `saliency`)."""
    known_table(store, table)
    maps = store.saliency_maps(table, key)
    if not 0 <= n < len(maps):
        raise NotFound(f"row {key!r} of table {table!r} has {len(maps)} saliency map(s); no map {n}")
    return Path(maps[n]["png"]).read_bytes()


def sheet_png(store, table: str, key: str) -> bytes:
    """The contact sheet of row `key` of deformation table `table` as PNG bytes (drawn by `artlens.api`)."""
    import io

    from artlens.api import deformation_sheet

    known_table(store, table)
    if store.entry(table).kind != DEFORMATION_KIND:
        raise NotFound(f"table {table!r} is not a deformation table (`artlens perturb`)")
    require_key(store, table, key)
    try:
        sheet = deformation_sheet(store, table, key)
    except NotFound:
        raise
    except UserError as exc:   # no bundled suite reproduces the table's, the clean painting is unavailable
        raise NotFound(str(exc)) from None
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return buffer.getvalue()
