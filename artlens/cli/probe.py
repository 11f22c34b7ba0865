"""`artlens probe KIND --store DIR --table T [options] [--json OUT]` and `artlens probe run SUITE.yaml`.

Each probe's options are generated from its Config dataclass, so a new option needs no CLI code:
`--min-count 5`, `--labels style,period` (lists are comma-separated or repeated), `--group artist --group
dup_group`.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

from artlens.probes.registry import PROBES, get_probe

_BASE = {"table"}


def _is_list(f) -> bool:
    from artlens.probes.config import COLUMN_LISTS

    default = f.default if f.default is not MISSING else None
    return isinstance(default, tuple) or str(f.type).startswith("tuple") or f.name in COLUMN_LISTS


def _field_type(f) -> type:
    default = f.default if f.default is not MISSING else None
    text = str(f.type)
    if _is_list(f):
        inner = float if "float" in text else int if "int]" in text or "int," in text else str
        return lambda value: tuple(inner(v) for v in value.split(",") if v)
    if isinstance(default, bool) or text == "bool":
        return lambda value: value.lower() in ("1", "true", "yes")
    if isinstance(default, float) or text.startswith("float"):
        return float
    if isinstance(default, int) or text.startswith("int"):
        return int
    return str


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="probe", required=True, metavar="KIND")
    suite = sub.add_parser("run", help="run a suite of probes from YAML")
    suite.add_argument("suite")
    suite.add_argument("--store", help="overrides the suite's store:")
    for name in PROBES:
        q = sub.add_parser(name, help=f"the {name} probe")
        q.add_argument("--store", required=True)
        q.add_argument("--table", required=True)
        q.add_argument("--json", help="also write the result JSON here")
        q.set_defaults(_config_fields=name)


def _options(a: argparse.Namespace, name: str) -> dict:
    config = get_probe(name).Config
    parser = argparse.ArgumentParser(prog=f"artlens probe {name}", add_help=False)
    lists = set()
    for f in fields(config):
        if f.name not in _BASE:
            kind = _field_type(f)
            if _is_list(f):  # repeatable and comma-separated alike: --group a --group b == --group a,b
                lists.add(f.name)
                parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, action="append")
            else:
                parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind)
    values, rest = parser.parse_known_args(a._extra)
    for name in lists:
        if getattr(values, name) is not None:
            setattr(values, name, tuple(v for part in getattr(values, name) for v in part))
    if rest:
        names = ", ".join(f"--{f.name.replace('_', '-')}" for f in fields(config) if f.name not in _BASE)
        from artlens.probes.config import ConfigError

        raise ConfigError(f"unknown option(s) {rest} for probe {name}; options: {names}")
    return {"table": a.table, **{k: v for k, v in vars(values).items() if v is not None}}


def run(a: argparse.Namespace) -> int:
    from artlens.probes.runner import run_probe, run_suite

    if a.probe == "run":
        results = run_suite(a.suite, a.store)
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
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="folder for index.html, report.md, results.json and figures/")
    p.add_argument("--title", help="report title (default: 'artlens report: <store folder>')")


def report_run(a: argparse.Namespace) -> int:
    from artlens.probes.report import write_report

    index = write_report(a.store, a.out, title=a.title)
    print(f"report: {index} and {index.with_name('report.md')}")
    return 0
