"""Read a store's results, draw their figures, write index.html, report.md and results.json."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from artlens import store
from artlens.errors import UserError

from artlens.probes.report.figures import FigureRef, draw_figures
from artlens.probes.report.galleries import (GALLERIES_DIR, Thumbnails, map_figure, neighbour_sheets,
                                            result_galleries)
from artlens.probes.report.model import Header, Showcase, build_entry, group_sections, tables_table
from artlens.probes.report.render import render_html, render_markdown
from artlens.probes.report.sections import result_names

FIGURES_DIR = "figures"
log = logging.getLogger(__name__)


class ReportError(UserError):
    """The store has nothing to report (a user error: the CLI exits 2)."""


#: At most this many tables get a map and neighbour sheets (those the results read, in name order).
SHOWCASE_TABLES = 4


def _read(s, store_path: str | Path) -> tuple[list[dict], list[dict]]:
    results = s.results()
    catalog = s.sql("SELECT name, model, pretrained, rows, dim, kind FROM catalog").to_pylist()
    if not results:
        raise ReportError(f"no probe results in {store_path}; run `artlens probe KIND --store {store_path} ...` "
                          "or `artlens probe run SUITE.yaml` first")
    return results, catalog


def _fresh_folder(out: Path, name: str) -> Path:
    """One of the report's own folders (figures/, galleries/), emptied of images from an earlier report."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in (p for p in folder.iterdir() if p.suffix in (".png", ".jpg")):
        old.unlink()
    return folder


def _showcases(s, results: list[dict], catalog: list[dict], thumbs: Thumbnails, figures: Path) -> list[Showcase]:
    """A map and neighbour sheets of each table with embeddings that the results read."""
    named = {str(t) for r in results for t in r.get("tables") or []}
    tables = [row["name"] for row in sorted(catalog, key=lambda r: r["name"])
              if row["name"] in named and row.get("dim") and row.get("rows")][:SHOWCASE_TABLES]
    out = []
    for table in tables:
        try:
            path, caption = map_figure(s, table, figures)
            sheets = neighbour_sheets(s, table, thumbs)
        except UserError as exc:
            log.warning("report: no map or neighbour sheets for %s: %s", table, exc)
            continue
        out.append(Showcase(table, FigureRef(path, caption), sheets))
    return out


def _out_folder(out_dir: str | Path) -> Path:
    """`out_dir` as the report's folder (made if missing): refused when it, or a path above it, is a file."""
    out = Path(out_dir)
    blocking = next((p for p in (out / FIGURES_DIR, out, *out.absolute().parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        what = "is a file" if blocking in (out, out / FIGURES_DIR) else f"lies under {blocking}, which is a file"
        name = out / FIGURES_DIR if blocking == out / FIGURES_DIR else out
        raise ReportError(f"`out_dir` {name} {what}; the report is a folder (index.html, report.md, figures/): "
                          "name a folder", argument="out_dir")
    return out


def write_report(store_path: str | Path, out_dir: str | Path, title: str | None = None) -> Path:
    """Write the report of every result in the store to `out_dir`; returns the path of index.html."""
    out = _out_folder(out_dir)
    with store.open(store_path) as s:
        results, catalog = _read(s, store_path)
        folder = _fresh_folder(out, FIGURES_DIR)
        thumbs = Thumbnails(s, _fresh_folder(out, GALLERIES_DIR))
        pairs = []
        for result, name in zip(results, result_names(results)):
            entry = build_entry(result, name, draw_figures(result, name, folder))
            entry.galleries = result_galleries(s, result, thumbs)
            pairs.append((result, entry))
        showcases = _showcases(s, results, catalog, thumbs, folder)
    header = Header(title=title or f"artlens report: {Path(store_path).resolve().name}",
                    store=str(store_path),  # as given: no machine-specific absolute path in committed reports
                    generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    results=len(results), tables=tables_table(results, catalog))
    sections = group_sections(pairs)
    (out / "index.html").write_text(render_html(header, sections, showcases), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(header, sections, showcases), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return out / "index.html"
