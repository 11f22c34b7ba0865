"""`artlens probe KIND --store DIR --table T [options] [--json OUT]` and `artlens probe run SUITE.yaml`.

Each probe's options are generated from its Config dataclass (field name → flag, type → argparse type,
default and help from the docstring's `Options:` section, probes/config.py `field_help`), so they cannot
drift and `artlens probe KIND --help` lists them: `--min-count 5`, `--labels style,period` (lists are
comma-separated or repeated), `--group artist --group dup_group`.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

from artlens.probes.registry import PROBES, get_probe

_BASE = {"table"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _is_list(f) -> bool:
    from artlens.probes.config import COLUMN_LISTS

    default = f.default if f.default is not MISSING else None
    return isinstance(default, tuple) or str(f.type).startswith("tuple") or f.name in COLUMN_LISTS


def _boolean(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _field_type(f):
    default = f.default if f.default is not MISSING else None
    text = str(f.type)
    if _is_list(f):
        inner = float if "float" in text else int if "int]" in text or "int," in text else str
        parse = lambda value: tuple(inner(v) for v in value.split(",") if v)  # noqa: E731
        parse.__name__ = f"list of {inner.__name__}"  # argparse names the type in its errors
        return parse
    if isinstance(default, bool) or text == "bool":
        return _boolean
    if isinstance(default, float) or text.startswith("float"):
        return float
    if isinstance(default, int) or text.startswith("int"):
        return int
    return str


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "none"
    return "none" if value is None or value == "" else str(value).lower() if isinstance(value, bool) else str(value)


def add_config_options(parser: argparse.ArgumentParser, config: type) -> set[str]:
    """A flag per field of a probe's Config (but `table`), its default shown in its help; values not given
    stay out of the namespace (argparse.SUPPRESS), so the Config's own default applies. Returns the names
    of the list fields (their values arrive as a list of tuples: `flatten`)."""
    from artlens.probes.config import field_help

    helps, lists = field_help(config), set()
    for f in fields(config):
        if f.name in _BASE:
            continue
        kind, text = _field_type(f), helps.get(f.name, "").replace("%", "%%")  # argparse %-formats help
        if f.default is not MISSING and "default" not in text:
            text = f"{text} (default: {_shown(f.default)})"
        metavar = f.name.upper()
        if _is_list(f):  # repeatable and comma-separated alike: --group a --group b == --group a,b
            lists.add(f.name)
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, action="append",
                                default=argparse.SUPPRESS, metavar=f"{metavar}[,...]",
                                help=f"{text}; comma-separated or repeated")
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind,
                                default=argparse.SUPPRESS, metavar="{true,false}" if kind is _boolean else metavar,
                                help=text)
    return lists


def _flatten(values: dict, lists: set[str]) -> dict:
    return {k: tuple(v for part in values[k] for v in part) if k in lists else values[k] for k in values}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="probe", required=True, metavar="KIND")
    suite = sub.add_parser("run", help="run a suite of probes from YAML", description="run a suite of probes from YAML")
    suite.add_argument("suite", help="the suite's YAML file (e.g. probes/suites/sample.yaml)")
    suite.add_argument("--store", help="overrides the suite's store:")
    from artlens.cli.args import progress_flags

    progress_flags(suite)
    for name in PROBES:
        try:
            module = get_probe(name)
        except ImportError as exc:  # one probe's broken dependency leaves the others usable; running it says why
            module, summary = None, f"unavailable here: {exc}"
        else:
            summary = (module.__doc__ or f"the {name} probe").strip().splitlines()[0]
            summary = summary.removeprefix(f"`{name}`:").strip()
        q = sub.add_parser(name, help=summary, description=summary)
        q.add_argument("--store", required=True, help="the store folder (or URL) to read")
        q.add_argument("--table", required=True,
                       help=_table_help(module.Config) if module else "the table the probe reads")
        q.add_argument("--json", help="also write the result JSON here")
        q.set_defaults(_config_fields=name)
        if module is not None:
            add_config_options(q.add_argument_group(f"{name} options"), module.Config)


def _table_help(config: type) -> str:
    from artlens.probes.config import field_help

    return field_help(config).get("table") or "the table the probe reads"


def _options(a: argparse.Namespace, name: str) -> dict:
    """The probe's options: the generated flags parsed with the command line, and any left over in
    `a._extra` (a caller's own namespace), as a mapping for `Config.from_dict`."""
    config = get_probe(name).Config
    given = {f.name: getattr(a, f.name) for f in fields(config) if f.name not in _BASE and hasattr(a, f.name)}
    lists = {f.name for f in fields(config) if f.name not in _BASE and _is_list(f)}
    extra = list(getattr(a, "_extra", None) or [])
    if extra:
        parser = argparse.ArgumentParser(prog=f"artlens probe {name}", add_help=False)
        add_config_options(parser, config)
        values, rest = parser.parse_known_args(extra)
        if rest:
            names = ", ".join(f"--{f.name.replace('_', '-')}" for f in fields(config) if f.name not in _BASE)
            from artlens.probes.config import ConfigError

            raise ConfigError(f"unknown option(s) {rest} for probe {name}; options: {names}")
        given.update(vars(values))
    return {"table": a.table, **_flatten(given, lists)}


def run(a: argparse.Namespace) -> int:
    from artlens.probes.runner import run_probe, run_suite

    if a.probe == "run":
        from artlens.cli.args import show_progress

        results = run_suite(a.suite, a.store, progress=show_progress(a))
    else:
        results = [run_probe(a.store, a.probe, _options(a, a.probe))]
        if a.json:
            results[0].save(Path(a.json))
    for r in results:
        head = ", ".join(f"{k} {m.value:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}]"
                         + (f" (baseline {r.baseline[k]:.3f})" if k in r.baseline else "")
                         for k, m in r.metrics.items())
        print(f"{r.probe} on {','.join(r.tables)} (n={r.n}): {head}")
    return 0


# ------------------------------------------------------------------ probe
def probe_args(p: argparse.ArgumentParser) -> None:
    add_arguments(p)


def probe_run(a: argparse.Namespace) -> int:
    return run(a)


# ------------------------------------------------------------------ report
def report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="the store folder (or URL) whose probe results are reported")
    p.add_argument("--out", required=True, help="folder for index.html, report.md, results.json and figures/")
    p.add_argument("--title", help="report title (default: 'artlens report: <store folder>')")


def report_run(a: argparse.Namespace) -> int:
    from artlens.probes.report import write_report

    index = write_report(a.store, a.out, title=a.title)
    print(f"report: {index} and {index.with_name('report.md')}")
    return 0
