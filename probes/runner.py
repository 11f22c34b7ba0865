"""Run one probe or a suite (YAML) against a store, save each result into the store, return them."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml
from tqdm import tqdm

from artlens import store

from artlens.probes.config import ConfigError
from artlens.store.filters import FilterError, check_filter
from artlens.probes.registry import get_probe
from artlens.probes.result import Result


def result_name(result: Result) -> str:
    """A stable file name for a result: probe, tables and the options that distinguish runs."""
    cfg = result.config
    parts = [result.probe, *result.tables]
    for key in ("label", "labels", "target", "column", "against", "sets", "group", "nuisance", "holdout_by",
                "texts", "test_against"):
        value = cfg.get(key)
        if value:
            parts.append(f"{key}={','.join(value) if isinstance(value, (list, tuple)) else value}")
    return "__".join(str(p).replace("/", "_").replace(" ", "_") for p in parts)


def run_probe(store_path: str | Path, name: str, options: dict) -> Result:
    """Run a probe and keep its result in the store; a store that cannot be written (read-only, full) still
    gives the result, and one line on stderr says it was not saved."""
    probe = get_probe(name)
    config = probe.Config.from_dict(options)
    with store.open(store_path) as s:
        result = probe.run(s, config)
        try:
            s.save_result(result_name(result), result.to_dict(), rows=result.rows)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            print(f"warning: the {name} result was not saved in the store {s.layout.root} ({reason}: "
                  f"{exc.filename or s.layout.results_dir()}); it is only printed", file=sys.stderr)
    return result


def load_suite(path: str | Path) -> tuple[str | None, list[tuple[str, dict]]]:
    """SUITE.yaml: `store: DIR` (optional) and `probes: [{probe: NAME, <options>}, ...]`."""
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("probes"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'probes' list")
    unknown = set(data) - {"store", "probes", "defaults"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    defaults = data.get("defaults") or {}
    steps = []
    for i, item in enumerate(data["probes"]):
        if not isinstance(item, dict) or "probe" not in item:
            raise ConfigError(f"{path}: probes[{i}] needs a 'probe' name")
        options = {**defaults, **{k: v for k, v in item.items() if k != "probe"}}
        steps.append((item["probe"], options))
    return data.get("store"), steps


def run_suite(path: str | Path, store_path: str | Path | None = None, progress: bool = True) -> list[Result]:
    suite_store, steps = load_suite(path)
    root = store_path or suite_store
    if root is None:
        raise ConfigError(f"{path}: no store given (a 'store:' key or `store_path`)", argument="store_path")
    if suite_store and not store_path:
        root = (Path(path).parent / suite_store) if not Path(suite_store).is_absolute() else suite_store
    for i, (name, options) in enumerate(steps):
        get_probe(name).Config.from_dict(options)  # unknown probes or options fail before any work
        if options.get("where"):  # a filter that is not one SQL expression: refused before any probe runs
            try:
                check_filter(options["where"])
            except FilterError as exc:
                raise ConfigError(f"{path}: probes[{i}] ({name}): where: {exc.reason}") from None
    results = []
    with tqdm(steps, desc="probes", unit="probe", disable=not progress) as bar:
        for name, options in bar:
            bar.set_postfix_str(f"{name} on {options.get('table')}")
            results.append(run_probe(root, name, options))
    return results
