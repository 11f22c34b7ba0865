"""`artlens report`: every probe result in a store as one HTML page and one Markdown file with figures.

    from probes.report import write_report
    write_report("artstore", "report/")      # -> report/index.html (+ report.md, results.json, figures/)

Modules: `sections` (which perception section a result belongs to, titles, number formats), `figures` and
`bars` (PNG figures), `model` (the report as formatted data), `render` (HTML and Markdown), `build`.
"""
from artlens.probes.report.build import ReportError, write_report

__all__ = ["ReportError", "write_report"]
