"""The one result shape every probe returns, serialised to JSON (other tools rely on it):

    {"probe": str, "tables": [str], "config": {...}, "n": int,
     "metrics": {"<name>": {"value": float, "ci": [lo, hi]}},
     "baseline": {"<name>": float}, "per_class": {...}, "details": {...}}

`details` holds what figures need (confusion matrices, PCA coordinates, curves); everything else is in the
fixed keys above. Every headline metric has a 95% interval and a chance or majority-class baseline.

`rows` (a pyarrow.Table, or None) holds the rows behind a result about rows, one per scored row with its `key`
(linear: key, label, predicted, p_true, correct, fold; knn and zero-shot: key, label, predicted, score,
correct; regression: key, target, predicted, residual, fold). It is not part of the JSON: the store keeps it
beside it (`Store.save_result(name, result.to_dict(), rows=result.rows)`, read back by `Store.result_rows`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Metric:
    value: float
    ci: tuple[float, float]


@dataclass
class Result:
    probe: str
    tables: list[str]
    config: dict
    n: int
    metrics: dict[str, Metric] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    per_class: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    rows: "pa.Table | None" = field(default=None, repr=False, compare=False)  # not serialised: see above

    def add(self, name: str, value: float, ci: tuple[float, float], baseline: float | None = None) -> None:
        self.metrics[name] = Metric(float(value), (float(ci[0]), float(ci[1])))
        if baseline is not None:
            self.baseline[name] = float(baseline)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rows"}
        out["metrics"] = {k: {"value": m.value, "ci": list(m.ci)} for k, m in self.metrics.items()}
        return _plain(out)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False, allow_nan=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        metrics = {k: Metric(v["value"], tuple(v["ci"])) for k, v in data.get("metrics", {}).items()}
        return cls(probe=data["probe"], tables=data["tables"], config=data["config"], n=data["n"],
                   metrics=metrics, baseline=data.get("baseline", {}), per_class=data.get("per_class", {}),
                   details=data.get("details", {}))


def _plain(value: Any) -> Any:
    """numpy scalars/arrays, tuples and dataclasses → JSON-ready Python; NaN → None."""
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
