"""The report model as a self-contained HTML page (CSS inline, figures as relative PNG links) and as
Markdown that renders on GitHub. Both walk the same model, so they hold the same content."""
from __future__ import annotations

import re
from html import escape

from artlens.probes.report.galleries import Gallery
from artlens.probes.report.model import Entry, Header, Section, Showcase, Table

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1120px;margin:2em auto;
 padding:0 1.2em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin:1.6em 0 .3em} .meta{color:#555} .config{font-family:ui-monospace,Menlo,Consolas,monospace;
 font-size:.88em;color:#444;background:#f6f6f6;padding:.2em .5em;border-radius:3px;display:inline-block}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{border:1px solid #ddd;padding:.25em .65em;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.notes{font-size:.85em;color:#555;margin:.2em 0 .8em}
figure{display:inline-block;vertical-align:top;margin:.4em 1.2em .8em 0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;max-width:640px}
details{margin:.4em 0 1em} summary{cursor:pointer;color:#335}
nav ul{columns:2;padding-left:1.2em}
.gallery h4{margin:.8em 0 .3em;font-size:.95em} .tiles{display:flex;flex-wrap:wrap;gap:.5em}
.tile{margin:0;width:160px} .tile img{width:160px;height:160px;object-fit:contain;background:#f6f6f6}
.tile .card{width:160px;height:160px;background:#eee;display:flex;align-items:center;justify-content:center;
 text-align:center;font-size:.8em;color:#555;overflow:hidden;word-break:break-all}
.tile figcaption{font-size:.75em;word-break:break-all}
"""


#: A figure reference the report may link: a relative path of plain characters (figures.py writes
#: `figures/<file-safe name>.<kind>.png`), never a URL with a scheme (`javascript:`, `data:`) or `//host`.
_SAFE_REF = re.compile(r"[A-Za-z0-9_.=,-]+(?:/[A-Za-z0-9_.=,-]+)*")


def _safe_ref(path: str) -> bool:
    return bool(_SAFE_REF.fullmatch(path)) and ".." not in path.split("/")


def _numeric(cell: str) -> bool:
    return cell.replace(".", "", 1).replace("-", "", 1).isdigit() or cell.startswith("[") or cell == "n/a"


# ------------------------------------------------------------------ HTML
def _html_table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(c)}</td>' if i and _numeric(c) else f"<td>{escape(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>\n"
        for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>\n"


def _html_entry(entry: Entry) -> str:
    parts = [f'<section class="result" id="{escape(entry.name)}">',
             f"<h3>{escape(entry.title)}</h3>", f'<div class="config">{escape(entry.config)}</div>',
             _html_table(entry.metrics)]
    if entry.notes:
        parts.append(f'<p class="notes">{escape(" · ".join(entry.notes))}</p>')
    for fig in filter(lambda f: _safe_ref(f.path), entry.figures):
        parts.append(f'<figure><img src="{escape(fig.path)}" alt="{escape(fig.caption)}">'
                     f"<figcaption>{escape(fig.caption)}</figcaption></figure>")
    for table in entry.per_class:
        parts.append(f"<details><summary>{escape(table.caption)} ({len(table.rows)} rows)</summary>\n"
                     f"{_html_table(table)}</details>")
    parts.append(_html_galleries(entry.galleries, "paintings"))
    parts.append("</section>")
    return "\n".join(parts) + "\n"


def _html_gallery(gallery: Gallery) -> str:
    tiles = []
    for t in gallery.tiles:
        picture = (f'<img src="{escape(t.src)}" alt="{escape(t.key)}" loading="lazy">'
                   if t.src and _safe_ref(t.src) else f'<div class="card">{escape(t.key)}<br>(no image)</div>')
        tiles.append(f'<figure class="tile">{picture}<figcaption><b>{escape(t.key)}</b><br>{escape(t.caption)}'
                     "</figcaption></figure>")
    return (f'<div class="gallery"><h4>{escape(gallery.title)}</h4><div class="tiles">' + "".join(tiles)
            + "</div></div>\n")


def _html_galleries(galleries: list[Gallery], summary: str) -> str:
    if not galleries:
        return ""
    return (f"<details><summary>{escape(summary)} ({len(galleries)})</summary>\n"
            + "".join(_html_gallery(g) for g in galleries) + "</details>")


def _html_showcase(show: Showcase) -> str:
    parts = [f'<h3 id="paintings-{escape(show.table)}">{escape(show.table)}</h3>']
    if show.map is not None and _safe_ref(show.map.path):
        parts.append(f'<figure><img src="{escape(show.map.path)}" alt="{escape(show.map.caption)}">'
                     f"<figcaption>{escape(show.map.caption)}</figcaption></figure>")
    parts.extend(_html_gallery(g) for g in show.sheets)
    return "\n".join(parts) + "\n"


def render_html(header: Header, sections: list[Section], showcases: list[Showcase] = ()) -> str:
    nav = "".join(f'<li><a href="#{s.anchor}">{escape(s.title)}</a> ({len(s.entries)})</li>' for s in sections)
    body = [f"<h1>{escape(header.title)}</h1>",
            f'<p class="meta">store <code>{escape(header.store)}</code> · {header.results} results · '
            f"generated {escape(header.generated)}</p>", _html_table(header.tables),
            f"<nav><ul>{nav}</ul></nav>"]
    for section in sections:
        body.append(f'<h2 id="{section.anchor}">{escape(section.title)}</h2>')
        body.extend(_html_entry(e) for e in section.entries)
    if showcases:
        body.append('<h2 id="paintings">Paintings: maps and neighbours</h2>')
        body.extend(_html_showcase(show) for show in showcases)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(header.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# ------------------------------------------------------------------ Markdown
#: A confidence interval as sections.fmt_ci writes it (`[0.650, 0.770]`): brackets with no link in them.
_INTERVAL = re.compile(r"\[(?:-?[0-9.]+|n/a), (?:-?[0-9.]+|n/a)\]")


def _md(text: str) -> str:
    """Text from the data (labels, names, notes, titles) made inert in Markdown: no link, image, autolink, raw
    HTML or code span can start in it. `&`, `<` and `>` become entities (no HTML, no `<scheme:...>` autolink);
    backslashes, backticks and square brackets are backslash-escaped (a link or image needs `[...]`, so a
    label `[x](javascript:alert(1))` shows as that text, its parentheses as they are); line breaks become
    spaces (a line of its own could start a heading or a link reference definition)."""
    text = re.sub(r"[\r\n]+", " ", str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`\[\]])", r"\\\1", text)


def _md_html(text: str) -> str:
    """Text inside a raw HTML block of the Markdown (`<details><summary>`), where Markdown is not parsed:
    HTML-escaped only, on one line."""
    return escape(re.sub(r"[\r\n]+", " ", str(text)), quote=False)


def _md_code(text: str) -> str:
    """Text inside a code span: literal there, but it must not close the span (a backtick) or leave the line."""
    return re.sub(r"[\r\n]+", " ", str(text)).replace("`", "'")


def _cell(text: str) -> str:
    if _INTERVAL.fullmatch(text):
        return text
    return _md(text).replace("|", "\\|")


def _md_table(table: Table) -> str:
    align = ["---"] + ["---:" if table.rows and all(_numeric(r[i]) for r in table.rows) else "---"
                       for i in range(1, len(table.header))]
    lines = ["| " + " | ".join(_cell(h) for h in table.header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _md_entry(entry: Entry) -> str:
    parts = [f"### {_md(entry.title)}\n", f"`{_md_code(entry.config)}`\n", _md_table(entry.metrics)]
    if entry.notes:
        parts.append(f"<sub>{_md(' · '.join(entry.notes))}</sub>\n")
    for fig in filter(lambda f: _safe_ref(f.path), entry.figures):
        alt = fig.caption.replace("[", "(").replace("]", ")")
        parts.append(f"![{_md(alt)}]({fig.path})  \n*{_md(fig.caption)}*\n")
    for table in entry.per_class:
        parts.append(f"<details><summary>{_md_html(table.caption)} ({len(table.rows)} rows)</summary>\n\n"
                     f"{_md_table(table)}\n</details>\n")
    if entry.galleries:
        parts.append(f"<details><summary>paintings ({len(entry.galleries)})</summary>\n\n"
                     + "\n".join(_md_gallery(g) for g in entry.galleries) + "\n</details>\n")
    return "\n".join(parts)


def _md_gallery(gallery: Gallery) -> str:
    tiles = [f"![{_md(t.key)}]({t.src})" if t.src and _safe_ref(t.src) else f"({_md(t.key)}: no image)"
             for t in gallery.tiles]
    captions = "; ".join(f"{_md(t.key)}: {_md(t.caption)}" for t in gallery.tiles)
    return f"**{_md(gallery.title)}**\n\n" + " ".join(tiles) + f"\n\n<sub>{captions}</sub>\n"


def render_markdown(header: Header, sections: list[Section], showcases: list[Showcase] = ()) -> str:
    lines = [f"# {_md(header.title)}\n",
             f"store `{_md_code(header.store)}` · {header.results} results · generated {header.generated}\n",
             _md_table(header.tables)]
    lines.append("\n".join(f"- [{s.title}](#{s.anchor}) ({len(s.entries)})" for s in sections) + "\n")
    for section in sections:
        lines.append(f"## {section.title}\n")
        lines.extend(_md_entry(e) for e in section.entries)
    if showcases:
        lines.append("## Paintings: maps and neighbours\n")
        for show in showcases:
            lines.append(f"### {_md(show.table)}\n")
            if show.map is not None and _safe_ref(show.map.path):
                lines.append(f"![{_md(show.map.caption)}]({show.map.path})  \n*{_md(show.map.caption)}*\n")
            lines.extend(_md_gallery(g) for g in show.sheets)
    return "\n".join(lines)
