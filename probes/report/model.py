"""The report as plain data (header, sections, one entry per result), already formatted, so the HTML and
Markdown renderers show the same content and differ only in syntax."""
from __future__ import annotations

from dataclasses import dataclass, field

from artlens.probes.report.figures import FigureRef
from artlens.probes.report.galleries import Gallery
from artlens.probes.report.sections import SECTIONS, config_line, fmt, fmt_ci, fmt_n, fmt_p, metric_parts, section_of, title_of

METRIC_HEADER = ("metric", "value", "95% CI", "baseline", "n")
#: At most this many items of a list or mapping in a details note; longer ones are left to results.json.
NOTE_ITEMS = 12


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Entry:
    name: str                   # file-safe, unique; figures and anchors use it
    probe: str
    title: str
    config: str
    metrics: Table
    notes: list[str] = field(default_factory=list)
    per_class: list[Table] = field(default_factory=list)
    figures: list[FigureRef] = field(default_factory=list)
    galleries: list[Gallery] = field(default_factory=list)   # the paintings behind the result (galleries.py)


@dataclass
class Showcase:
    """A table's paintings: its map and a few neighbour sheets."""
    table: str
    map: FigureRef | None
    sheets: list[Gallery]


@dataclass
class Section:
    title: str
    entries: list[Entry]

    @property
    def anchor(self) -> str:
        return "-".join(self.title.lower().split())


@dataclass
class Header:
    title: str
    store: str
    generated: str
    results: int
    tables: Table


def metric_table(result: dict) -> Table:
    baseline, n = result.get("baseline") or {}, fmt_n(result.get("n"))
    rows = [[name, fmt(metric_parts(m)[0]), fmt_ci(metric_parts(m)[1]),
             fmt(baseline[name]) if baseline.get(name) is not None else "n/a", n]
            for name, m in (result.get("metrics") or {}).items()]
    return Table("metrics", list(METRIC_HEADER), rows)


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool)) and value is not None


def _note(key: str, value) -> str | None:
    """A details entry worth a line: a scalar, a short list of scalars, or a short mapping to scalars."""
    show = fmt_p if "p_value" in key or key in ("p", "pvalue") else fmt
    if _scalar(value):
        return f"{key}: {show(value) if not isinstance(value, str) else value}"
    if isinstance(value, list) and 0 < len(value) <= NOTE_ITEMS and all(_scalar(v) for v in value):
        return f"{key}: {', '.join(v if isinstance(v, str) else show(v) for v in value)}"
    if isinstance(value, dict) and 0 < len(value) <= NOTE_ITEMS and all(_scalar(v) for v in value.values()):
        return f"{key}: {', '.join(f'{k} ({show(v)})' for k, v in value.items())}"
    return None


def notes(result: dict) -> list[str]:
    found = (_note(str(k), v) for k, v in (result.get("details") or {}).items())
    return [n for n in found if n]


def _cell(value) -> str:
    """A per-class cell: a number, or an interval [lo, hi]; anything else is left to results.json."""
    if isinstance(value, list) and len(value) == 2 and all(v is None or _scalar(v) for v in value):
        return fmt_ci(value)
    return fmt(value) if _scalar(value) else ""


def _columns(rows: dict) -> list[str]:
    columns: list[str] = []
    for value in rows.values():
        for key in value if isinstance(value, dict) else ["value"]:
            if key not in columns:
                columns.append(key)
    return columns


def _one_table(rows: dict, caption: str) -> Table:
    columns = _columns(rows)
    body = []
    for name, value in rows.items():
        value = value if isinstance(value, dict) else {"value": value}
        body.append([str(name)] + [_cell(value.get(c)) for c in columns])
    return Table(caption, ["class", *columns], body)


def per_class_tables(per_class: dict) -> list[Table]:
    """Flat {class: {metric: v}} or {class: v}, or nested by label {label: {class: {metric: v}}}."""
    if not isinstance(per_class, dict) or not per_class:
        return []
    nested = all(isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values())
                 for v in per_class.values())
    if nested:
        return [_one_table(sub, f"per class: {label}") for label, sub in per_class.items()]
    return [_one_table(per_class, "per class")]


def build_entry(result: dict, name: str, figures: list[FigureRef]) -> Entry:
    return Entry(name=name, probe=str(result.get("probe", "?")), title=title_of(result),
                 config=config_line(result), metrics=metric_table(result), notes=notes(result),
                 per_class=per_class_tables(result.get("per_class")), figures=figures)


def group_sections(pairs: list[tuple[dict, Entry]]) -> list[Section]:
    """Entries under their sections, sections in the fixed order, empty ones left out."""
    by_section: dict[str, list[Entry]] = {title: [] for title in SECTIONS}
    for result, entry in sorted(pairs, key=lambda p: (p[1].probe, p[1].name)):
        by_section[section_of(result)].append(entry)
    return [Section(title, entries) for title, entries in by_section.items() if entries]


def _against(result: dict) -> list[str]:
    against = (result.get("config") or {}).get("against")
    return [str(t) for t in (against if isinstance(against, (list, tuple)) else [against]) if t]


def tables_table(results: list[dict], catalog: list[dict]) -> Table:
    """The tables the results read, with model, weights and rows from the catalog."""
    known = {row.get("name"): row for row in catalog}
    names = sorted({str(t) for r in results for t in r.get("tables") or []}
                   | {t for r in results for t in _against(r)})
    rows = [[n, str(known.get(n, {}).get("model") or "n/a"), str(known.get(n, {}).get("pretrained") or "n/a"),
             fmt_n(known[n].get("rows")) if n in known else "not in catalog"] for n in names]
    return Table("tables", ["table", "model", "pretrained", "rows"], rows)
