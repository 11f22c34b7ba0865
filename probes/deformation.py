"""`deformation`: does the model notice the deformations people see, and how far do they move it?

Reads a clean image table (`table`) and its deformation table (`deformed`, default `<table>_deformed`, made
by `artlens perturb`: catalog kind `deformation`, parent `table`; one row per painting × deformation ×
severity with `deformation`, `severity`, `ssim`). Deformed rows join their clean rows on `key`; `where`
filters the clean table (and so the paintings used). n = paintings. Every interval is a 95% bootstrap over
paintings. `group` (clean-table columns, one or more: `group: [artist, dup_group]`) joins paintings that
share a value in ANY of them into one group (probes/groups.py `combine`; paintings with a NULL in a group
column are left out): the folds keep a group's clean and deformed rows on one side, and the intervals
resample whole groups. `details["grouped_by"]` lists the columns, `details["n_groups"]` counts the groups.

Metrics, at each deformation's highest severity (`<d>`) and pooled over deformations per severity (`all.s<k>`):
- `shift.*`: mean embedding shift 1 − cos(deformed, clean). Baseline: the mean shift between two different
  clean paintings (replacing the painting).
- `auc.*`: detectability, the out-of-fold AUC of a balanced logistic regression (C=`C`) telling deformed from
  clean embeddings; folds grouped by painting (or `group`), so a painting is never in train and test.
  Where the clean table has `dup_group`, `details["straddling_duplicates"]` counts the near-duplicate pairs
  of clean paintings that the label classifier's folds (below) put on different sides (None without a
  label or without the column); `--group dup_group` makes it 0.
  Baseline 0.5.
- `flip.<d>` (with `label`): label stability, the share of paintings whose cross-fitted linear prediction of
  `label` (logistic regression on clean embeddings of the training folds, classes under `min_count` dropped)
  differs between the clean and the deformed image. `zs_flip.<d>` (with `texts`, a text table of the same
  model): the same for zero-shot predictions. Baseline: the flip rate of a prediction unrelated to the clean
  one, 1 − Σ q² over the clean predictions' class shares q.
- `ratings.rho` (with `ratings_table` and `ratings_column`): Spearman rho between a human rating (e.g.
  AI-Pastiche `defects`) and the projection of the rated images' embeddings on the direction separating
  deformed from clean embeddings (unit mean difference over all deformed rows), row-bootstrap interval,
  two-sided permutation p in details. Baseline 0. Refused unless the ratings table was embedded by the same
  model, weights and dim as the deformation table.

details: `grid` (every deformation × severity: shift with interval and sd, AUC, flip rates, label accuracy,
mean SSIM and visibility 1 − SSIM), `pooled` (per severity), `invariance` (deformations ranked by
shift ÷ visibility at the highest severity: first = what the model most ignores for how visible it is),
`ratings` (per-deformation directions too). per_class: flip-rate and AUC tables and the invariance ranking.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artlens.store.compat import COMPATIBLE_FIELDS, IncompatibleError, check_compatible

from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.deformmetrics import Flips, Paired, between_shift, deformation_direction, detect_auc, flips, linear_predictions, mean_ci, rank_correlation, shifts, unit
from artlens.probes.groups import DUP_COLUMN, group_ids
from artlens.probes.regression import numeric_target
from artlens.probes.result import Result
from artlens.probes.threads import probe_threads
from artlens.probes.zero_shot import class_vectors

NAME = "deformation"
DEFORMATION_KIND = "deformation"


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        deformed: the deformation table (default: <table>_deformed, made by `artlens perturb`)
        label: a clean-table column for label stability (linear probe)
        group: clean-table columns: folds and bootstrap clusters (e.g. artist)
        texts: a text table for zero-shot label stability (same model)
        folds: cross-validation folds of the detectability and label classifiers
        C: the logistic regressions' C
        min_count: the fewest rows a label class needs to be kept
        ratings_table: a table with human ratings, embedded by the same model
        ratings_column: the rating column of ratings_table
        permutations: permutations of the ratings correlation's p-value
    """
    deformed: str = ""                     # deformation table (default: <table>_deformed)
    label: str | None = None               # clean-table column for label stability (linear probe)
    group: tuple[str, ...] = ()            # clean-table columns: folds and bootstrap clusters (e.g. artist)
    texts: str | None = None               # text table for zero-shot label stability
    folds: int = 5
    C: float = 1.0
    min_count: int = 10
    ratings_table: str | None = None       # a table with human ratings, embedded by the same model
    ratings_column: str | None = None
    permutations: int = 999

    @property
    def deformed_table(self) -> str:
        return self.deformed or f"{self.table}_deformed"


def _check_deformed(s, cfg: Config) -> None:
    clean, deformed = s.entry(cfg.table), s.entry(cfg.deformed_table)
    if deformed.kind != DEFORMATION_KIND or deformed.parent != cfg.table:
        raise ProbeDataError(f"table {deformed.name!r} is not a deformation table of {cfg.table!r} (kind "
                             f"{deformed.kind!r}, parent {deformed.parent or 'none'!r}); make one with "
                             f"`artlens perturb --table {cfg.table}`")
    diffs = [f for f in COMPATIBLE_FIELDS if getattr(clean, f) != getattr(deformed, f)]
    if diffs:
        raise ProbeDataError(f"tables {cfg.table!r} and {deformed.name!r} differ in {diffs}")


def _load(s, cfg: Config) -> Paired:
    _check_deformed(s, cfg)
    _check_ratings(s, cfg)
    columns = list(dict.fromkeys([c for c in (cfg.label, *cfg.group) if c]))
    clean = load_rows(s, cfg.table, columns, cfg.where, require=list(cfg.group) or None, optional=[DUP_COLUMN])
    deformed = load_rows(s, cfg.deformed_table, ["deformation", "severity", "ssim"])
    index = {k: i for i, k in enumerate(clean.keys)}
    row = np.array([index.get(k, -1) for k in deformed.keys])
    keep = row >= 0
    if not keep.any():
        raise ProbeDataError(f"no row of {cfg.deformed_table!r} joins a row of {cfg.table!r} on key"
                             + (f" where {cfg.where}" if cfg.where else ""))
    clusters = group_ids(clean.columns, cfg.group) if cfg.group else clean.keys.astype(str)
    return Paired(X=unit(clean.X), keys=clean.keys, clusters=clusters, grouped=bool(cfg.group),
                  labels=clean.columns[cfg.label] if cfg.label else None, D=unit(deformed.X[keep]), row=row[keep],
                  deformation=deformed.columns["deformation"][keep].astype(str),
                  severity=deformed.columns["severity"][keep].astype(int),
                  ssim=deformed.columns["ssim"][keep].astype(float), dups=clean.columns.get(DUP_COLUMN))


def _predictions(s, p: Paired, cfg: Config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Clean and deformed predictions per way of reading the label: 'flip' (linear), 'zs_flip' (zero-shot)."""
    out = {}
    if cfg.label:
        pred_clean, pred_def, dropped = linear_predictions(p, cfg.folds, cfg.C, cfg.min_count, cfg.seed)
        out["flip"] = (pred_clean, pred_def)
        out["dropped_classes"] = dropped
    if cfg.texts:
        try:
            check_compatible(s.entry(cfg.table), s.entry(cfg.texts))
        except IncompatibleError as exc:
            raise IncompatibleError(f"deformation: {exc}") from None
        names, W, _ = class_vectors(s, cfg.texts)
        out["zs_flip"] = (names[np.argmax(p.X @ W.T, axis=1)].astype(object),
                          names[np.argmax(p.D @ W.T, axis=1)].astype(object))
    return out


def _cell(p: Paired, name: str, sev: int, idx: np.ndarray, shift: np.ndarray, flip_sets: dict,
          cfg: Config) -> dict:
    groups = p.cluster_of(idx)
    cell = {"deformation": name, "severity": sev, "n": len(idx), "ssim": float(p.ssim[idx].mean()),
            "visibility": float(1 - p.ssim[idx].mean())}
    cell["shift"] = mean_ci(shift[idx], groups, cfg.n_boot, cfg.seed)
    cell["auc"] = detect_auc(p, idx, cfg.folds, cfg.C, cfg.n_boot, cfg.seed)
    for kind, found in flip_sets.items():
        sub = idx[found.scored[idx]]
        if len(sub):
            cell[kind] = mean_ci(found.flip[sub], p.cluster_of(sub), cfg.n_boot, cfg.seed)
    if "flip" in flip_sets and "flip" in cell:   # how often the deformed image's label is still read right
        sub = idx[flip_sets["flip"].scored[idx]]
        cell["accuracy"] = float(np.mean(flip_sets["flip"].predicted[sub] == p.labels[p.row[sub]].astype(str)))
    return cell


def _flip_sets(p: Paired, predictions: dict) -> dict[str, Flips]:
    return {kind: flips(p, *predictions[kind]) for kind in ("flip", "zs_flip") if kind in predictions}


def _pooled(p: Paired, shift: np.ndarray, cfg: Config) -> list[dict]:
    pooled = []
    for sev in p.severities:
        idx = np.flatnonzero(p.severity == sev)
        pooled.append({"severity": sev, "n": len(np.unique(p.row[idx])),
                       "shift": _painting_mean(p, shift, idx, cfg),
                       "auc": detect_auc(p, idx, cfg.folds, cfg.C, cfg.n_boot, cfg.seed)})
    return pooled


def _painting_mean(p: Paired, values: np.ndarray, idx: np.ndarray, cfg: Config) -> dict:
    """Mean over paintings of each painting's mean over these rows (so paintings weigh the same)."""
    rows, inverse = np.unique(p.row[idx], return_inverse=True)
    per_painting = np.bincount(inverse, weights=values[idx]) / np.bincount(inverse)
    return mean_ci(per_painting, p.clusters[rows] if p.grouped else None, cfg.n_boot, cfg.seed)


def _invariance(grid: list[dict], top: dict[str, int]) -> list[dict]:
    """Deformations at their highest severity, ranked by shift ÷ visibility (smallest first: ignored most)."""
    rows = [{"deformation": c["deformation"], "severity": c["severity"], "shift": c["shift"]["value"],
             "shift_ci": c["shift"]["ci"], "visibility": c["visibility"],
             "ratio": c["shift"]["value"] / max(c["visibility"], 1e-6)}
            for c in grid if c["severity"] == top[c["deformation"]]]
    rows.sort(key=lambda r: (r["ratio"], r["deformation"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]


def _check_ratings(s, cfg: Config) -> None:
    """Before any work: ratings need both options and a table embedded by the deformation table's model."""
    if not (cfg.ratings_table or cfg.ratings_column):
        return
    if not (cfg.ratings_table and cfg.ratings_column):
        raise ConfigError("deformation: ratings need both ratings_table=<table> and ratings_column=<column>")
    made, rated = s.entry(cfg.deformed_table), s.entry(cfg.ratings_table)
    diffs = [f"{f}: {made.name} has {getattr(made, f)!r}, {rated.name} has {getattr(rated, f)!r}"
             for f in COMPATIBLE_FIELDS if getattr(made, f) != getattr(rated, f)]
    if diffs:
        raise ProbeDataError(f"deformation: the ratings table {rated.name!r} was not embedded by the model of "
                             f"{made.name!r} ({'; '.join(diffs)}); a direction from one embedding space means "
                             "nothing in another")


def _ratings(s, p: Paired, cfg: Config) -> dict | None:
    if not cfg.ratings_table:
        return None
    rows = load_rows(s, cfg.ratings_table, [cfg.ratings_column], require=[cfg.ratings_column])
    rating = numeric_target(rows.columns[cfg.ratings_column], cfg.ratings_column)
    ok = np.isfinite(rating)
    R, rating = unit(rows.X[ok]), rating[ok]
    if len(rating) < 3 or np.ptp(rating) == 0:
        raise ProbeDataError(f"deformation: {cfg.ratings_column!r} of {cfg.ratings_table!r} needs at least three "
                             "rows and two different values")
    pooled = rank_correlation(R @ deformation_direction(p), rating, cfg.permutations, cfg.n_boot, cfg.seed)
    each = {name: rank_correlation(R @ deformation_direction(p, p.deformation == name), rating, 0, cfg.n_boot,
                                   cfg.seed) for name in p.names}
    for value in each.values():
        value.pop("p_value")
    return {"pooled": pooled, "per_deformation": each, "table": cfg.ratings_table, "column": cfg.ratings_column,
            "direction": "unit mean of (deformed - clean) over all deformed rows"}


def _tables(grid: list[dict], pooled: list[dict], invariance: list[dict]) -> dict:
    """per_class: deformation × severity tables of flip rates and AUC, and the invariance ranking."""
    tables: dict[str, dict] = {}
    for kind, title in (("flip", "flip rate (linear)"), ("zs_flip", "flip rate (zero-shot)"),
                        ("auc", "detectability AUC")):
        table = {}
        for c in grid:
            if kind in c:
                table.setdefault(c["deformation"], {})[f"s{c['severity']}"] = c[kind]["value"]
        if table:
            tables[title] = table
    if "detectability AUC" in tables:
        tables["detectability AUC"]["all"] = {f"s{q['severity']}": q["auc"]["value"] for q in pooled}
    tables["invariance ranking"] = {r["deformation"]: {k: r[k] for k in ("rank", "shift", "visibility", "ratio")}
                                    for r in invariance}
    return tables


def _headline(result: Result, grid: list[dict], pooled: list[dict], top: dict[str, int], baselines: dict) -> None:
    """Metrics grouped by kind: each deformation at its highest severity, then all deformations pooled."""
    for kind in ("shift", "auc", "flip", "zs_flip"):
        for c in grid:
            if c["severity"] == top[c["deformation"]] and kind in c:
                result.add(f"{kind}.{c['deformation']}", c[kind]["value"], c[kind]["ci"], baselines[kind])
    for kind in ("shift", "auc"):
        for q in pooled:
            result.add(f"{kind}.all.s{q['severity']}", q[kind]["value"], q[kind]["ci"], baselines[kind])


@probe_threads
def run(s, cfg: Config) -> Result:
    p = _load(s, cfg)
    predictions = _predictions(s, p, cfg)
    flip_sets = _flip_sets(p, predictions)
    shift = shifts(p)
    grid = [_cell(p, name, sev, idx, shift, flip_sets, cfg) for name, sev, idx in p.cells()]
    pooled = _pooled(p, shift, cfg)
    top = {name: max(c["severity"] for c in grid if c["deformation"] == name) for name in p.names}
    baselines = {"shift": between_shift(p.X, cfg.seed), "auc": 0.5,
                 **{kind: found.baseline for kind, found in flip_sets.items()}}
    tables = [t for t in (cfg.table, cfg.deformed_table, cfg.texts, cfg.ratings_table) if t]
    result = Result(NAME, list(dict.fromkeys(tables)), cfg.as_dict(), n=len(np.unique(p.row)))
    _headline(result, grid, pooled, top, baselines)
    ratings = _ratings(s, p, cfg)
    if ratings:
        result.add("ratings.rho", ratings["pooled"]["value"], ratings["pooled"]["ci"], 0.0)
    invariance = _invariance(grid, top)
    result.per_class = _tables(grid, pooled, invariance)
    result.details.update(
        deformed_table=cfg.deformed_table, deformations=p.names, severities=p.severities, deformed_rows=len(p.D),
        shift_baseline=baselines["shift"], flip_baselines={k: v.baseline for k, v in flip_sets.items()},
        dropped_classes=predictions.get("dropped_classes", {}), grouped_by=list(cfg.group),
        n_groups=int(len(np.unique(p.clusters))) if p.grouped else None, straddling_duplicates=p.straddling,
        grid=grid, pooled=pooled,
        invariance=invariance, **({"ratings": ratings} if ratings else {}))
    return result
