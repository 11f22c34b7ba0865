"""The store's probe results as one table: the `results` view (one row per result and metric).

A result is a JSON file `results/<name>.json` in the shape of probes/result.py (`probe`, `tables`, `n`,
`metrics: {name: {value, ci: [lo, hi]}}`, `baseline: {name: value}`). Its rows:

    result     VARCHAR     the file's name without `.json` (with `metric`, the row's key)
    probe      VARCHAR     e.g. linear, knn
    tables     VARCHAR[]   the table(s) the result is about
    metric     VARCHAR     e.g. accuracy, style.knn_accuracy
    value      DOUBLE
    ci_low     DOUBLE      the 95% interval (NULL where the result has none)
    ci_high    DOUBLE
    baseline   DOUBLE      the metric's baseline (chance, majority class, ...: the one the probe records,
                           the stronger where there are several), NULL where it has none
    n          BIGINT      sample size
    model      VARCHAR     the model of the result's tables (from the catalog; several: ", "-joined)
    pretrained VARCHAR     their pretrained tag or checkpoint
    created    TIMESTAMP WITH TIME ZONE   when the result was saved (its `created`, else the file's time)

A file that cannot be read as a result (not JSON, another shape) is left out, named in `problems`; the other
results still make the table. Nothing here imports anything outside `artlens.store`.

A result about rows (a classifier's out-of-fold predictions, a regression's residuals) keeps them beside its
JSON as `results/<name>.rows.parquet` (`write_rows`, `read_rows`; every row carries its `key`): the JSON stays
in its shape, and a result saved without rows has no such file (an earlier one of the same name is removed).
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.errors import ArtlensError
from artlens.store.parts import write_atomic

SCHEMA = pa.schema([
    ("result", pa.string()), ("probe", pa.string()), ("tables", pa.list_(pa.string())),
    ("metric", pa.string()), ("value", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()),
    ("baseline", pa.float64()), ("n", pa.int64()), ("model", pa.string()), ("pretrained", pa.string()),
    ("created", pa.timestamp("us", tz="UTC")),
])


class NotAResult(ArtlensError, ValueError):
    """A results file that is not in the result shape (the message says what is wrong)."""


def result_files(directory: Path) -> list[Path]:
    """The result files of a store's results folder, by name (none when there is no folder)."""
    return sorted(p for p in directory.glob("*.json") if p.is_file()) if directory.is_dir() else []


def read_result(path: Path) -> dict:
    """One result file as a dict; NotAResult when it is not JSON or not an object with `probe`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NotAResult(f"not readable as JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("probe"), str):
        raise NotAResult("not a probe result (a JSON object with a `probe` name)")
    return data


def _number(value, what: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotAResult(f"{what} is {value!r}, not a number")
    value = float(value)
    return value if math.isfinite(value) else None


def _created(data: dict, path: Path) -> datetime:
    text = data.get("created")
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text)
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def rows_of(path: Path, data: dict, models: Mapping[str, tuple[str, str]]) -> list[dict]:
    """The rows of one result (one per metric); NotAResult when a field has the wrong shape. `models`:
    table name → (model, pretrained), from the catalog."""
    tables = data.get("tables")
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        raise NotAResult(f"`tables` is {tables!r}, not a list of table names")
    metrics, baseline = data.get("metrics"), data.get("baseline") or {}
    if not isinstance(metrics, dict) or not isinstance(baseline, dict):
        raise NotAResult("`metrics` and `baseline` must be JSON objects")
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise NotAResult(f"`n` is {n!r}, not a count")
    known = [models[t] for t in tables if t in models]
    model = ", ".join(dict.fromkeys(m for m, _ in known if m)) or None
    pretrained = ", ".join(dict.fromkeys(p for _, p in known if p)) or None
    created = _created(data, path)
    rows = []
    for metric, found in metrics.items():
        if not isinstance(found, dict):
            raise NotAResult(f"metric {metric!r} is {found!r}, not {{value, ci}}")
        ci = found.get("ci")
        if ci is not None and (not isinstance(ci, list) or len(ci) != 2):
            raise NotAResult(f"the interval of metric {metric!r} is {ci!r}, not [low, high]")
        low, high = (None, None) if ci is None else (_number(ci[0], f"{metric}.ci[0]", True),
                                                      _number(ci[1], f"{metric}.ci[1]", True))
        rows.append({"result": path.stem, "probe": data["probe"], "tables": list(tables), "metric": str(metric),
                     "value": _number(found.get("value"), f"{metric}.value", optional=True),
                     "ci_low": low, "ci_high": high,
                     "baseline": _number(baseline.get(metric), f"baseline of {metric}", optional=True),
                     "n": n, "model": model, "pretrained": pretrained, "created": created})
    return rows


def results_table(directory: Path, models: Mapping[str, tuple[str, str]]) -> tuple[pa.Table, list[tuple[Path, str]]]:
    """Every result of the folder as rows (SCHEMA), and the files left out with why."""
    rows, problems = [], []
    for path in result_files(directory):
        try:
            rows.extend(rows_of(path, read_result(path), models))
        except NotAResult as exc:
            problems.append((path, str(exc)))
    return pa.Table.from_pylist(rows, schema=SCHEMA), problems


def write_rows(path: Path, rows: pa.Table) -> Path:
    """The rows behind a result, written atomically (a temporary name, then a rename) as Parquet."""
    if "key" not in rows.column_names:
        raise NotAResult(f"the rows of a result need a `key` column; columns: {rows.column_names}")
    write_atomic(rows, path)
    return path


def read_rows(path: Path) -> pa.Table | None:
    """The rows kept beside a result (None when it has none); NotAResult when the file cannot be read."""
    if not path.is_file():
        return None
    try:
        rows = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - truncated, empty, not Parquet: any reason means unreadable
        raise NotAResult(f"not readable as Parquet ({' '.join(str(exc).split())})") from None
    if "key" not in rows.column_names:
        raise NotAResult(f"no `key` column (columns: {rows.column_names})")
    return rows
