"""Read a store's results, draw their figures, write index.html, report.md and results.json."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from artlens import store
from artlens.errors import UserError

from artlens.probes.report.figures import draw_figures
from artlens.probes.report.model import Header, build_entry, group_sections, tables_table
from artlens.probes.report.render import render_html, render_markdown
from artlens.probes.report.sections import result_names

FIGURES_DIR = "figures"


class ReportError(UserError):
    """The store has nothing to report (a user error: the CLI exits 2)."""


def _read(store_path: str | Path) -> tuple[list[dict], list[dict]]:
    with store.open(store_path) as s:
        results = s.results()
        catalog = s.sql("SELECT name, model, pretrained, rows FROM catalog").to_pylist()
    if not results:
        raise ReportError(f"no probe results in {store_path}; run `artlens probe KIND --store {store_path} ...` "
                          "or `artlens probe run SUITE.yaml` first")
    return results, catalog


def _figures_folder(out: Path) -> Path:
    """The report's own figures folder, emptied of PNGs from an earlier report."""
    folder = out / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


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
    results, catalog = _read(store_path)
    folder = _figures_folder(out)
    pairs = []
    for result, name in zip(results, result_names(results)):
        pairs.append((result, build_entry(result, name, draw_figures(result, name, folder))))
    header = Header(title=title or f"artlens report: {Path(store_path).resolve().name}",
                    store=str(store_path),  # as given: no machine-specific absolute path in committed reports
                    generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    results=len(results), tables=tables_table(results, catalog))
    sections = group_sections(pairs)
    (out / "index.html").write_text(render_html(header, sections), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(header, sections), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return out / "index.html"
