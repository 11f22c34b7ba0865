"""`separability`: can two sets of embeddings (e.g. AI-generated vs human-made paintings) be told apart?

The two sets are `table` vs `against` (another table of the same dim; `where` filters the first table
only), or the two values of a column `sets` of one table (`--sets source`; set A is the first value in sorted
order). Set A is the positive class. Metrics, each with a 95% bootstrap interval (over rows, or over whole
groups with `group`) and baseline 0.5:

- `auc`, `balanced_accuracy`: out-of-fold logistic regression (class_weight="balanced", stratified outer
  folds, C chosen by an inner stratified sweep on each training fold, no sweep when `Cs` has one value).
- `pc1_auc`, `pc2_auc`: AUC of the raw first / second principal-component scores. The PCA and the sign of
  each component (chosen so the training-fold AUC is >= 0.5) are fit on each training fold only and applied
  to its test fold, so under no difference these centre on 0.5 instead of being pushed above it.
- `pcs_accuracy`, `pcs_auc` (`pcs=N`, 2 by default, 0 turns it off): a classifier that sees only the first
  N principal components: on each outer training fold a PCA(N) fit on that fold alone, then a logistic
  regression without intercept (class_weight="balanced", C=1) on its scores, applied to the test fold. This
  is the seed group's figure (their notebook: PCA on the training split, 2 PCs, AI split 80/20 grouped by
  prompt, accuracy 0.893 on 384 test images), but computed out of fold over the same (grouped) outer folds
  as `auc`, not on one 80/20 split, so it is not expected to equal 0.893 exactly. Its baseline is 0.5, the
  accuracy of a balanced classifier blind to the embedding. `details["pcs"]` is N.
- with `holdout_by` (a column of set A, e.g. generative_model), `holdout_auc`: for each value g, train on A's
  rows not in g plus B minus a held-out share, test on A's g rows vs that share. B is shuffled once and cut
  into disjoint shares in proportion to A's group sizes. Reported: the mean over values (interval from a
  bootstrap over the per-value AUCs); `per_class` holds each value's AUC with a row-bootstrap interval (over
  groups with `group`). Rows of A with NULL in `holdout_by` are only ever used for training.
  With `group`: every generator answered the same prompts, so holding out a generator while training on
  its prompts tests prompt memory too. B's shares are then cut from whole groups (artists), and g's test rows
  (its A rows and its share) are cut into `folds` grouped folds, each scored by a model trained without g
  and without every row sharing a group with that fold's rows (the other generators' answers to its
  prompts). Removing all of g's prompts at once would leave almost no A rows to train on (in AI-Pastiche
  each generator answered 69-73 of the 73 prompts). `per_class[g]`: `n_train` and `n_train_removed` per
  fit (one fit without `group`), `n_test_groups`.

- with `nuisance` (one column or several, e.g. `--nuisance style`; each must be in both sets' tables, with
  `sets` in the one table): a model that sees only those columns, fit on each outer training fold (the same
  outer splits as `auc`). A row's combination is the tuple of its nuisance values as strings (NULL a value of
  its own); the score of a test row is set A's share of the training rows with its combination, each set's
  rows weighted by 1 / (its training count), as class_weight="balanced" weighs them (an unseen combination
  scores 0.5). `nuisance.auc` is the AUC of these scores, `nuisance.balanced_accuracy` that of predicting
  set A where the score is > 0.5 (a tie at exactly 0.5, e.g. an unseen combination, predicts set B, as
  `balanced_accuracy` predicts B at a decision score of exactly 0); baseline 0.5. `auc_gain_over_nuisance`
  and `balanced_accuracy_gain_over_nuisance`: embedding minus nuisance, a paired interval (the same resampled
  rows, or groups, score both), baseline 0. `details["nuisance"]`: columns, combinations, unseen_in_training
  (test rows whose combination their training fold lacked). The nuisance model is not applied to
  `holdout_auc`, the `pcs_*` classifier or a transfer.

Options shared with the other probes:

* `group` (one column or several, `group: [prompt, artist]`): rows sharing a value in ANY of the columns are
  one group (`probes/groups.py`); groups never fall on both sides of a split (StratifiedGroupKFold outer
  folds, StratifiedGroupKFold inner C sweep on each training fold), and every interval resamples whole
  groups. Each column is read from each of the two tables that has it (AI-Pastiche has `prompt`, the NGA
  table `artist`); a column neither table has, or a table with none of the columns, is an error. Group ids
  of the two tables never coincide. Rows with a NULL in their table's group columns are left out:
  `details["missing_group"]` counts them per table; `details["grouped_by"]` lists the columns (None
  without), `details["n_groups"]` counts the groups.
* `test_table` (and `test_against`, or with `sets` the test table's own `sets` column): a transfer. The
  logistic regression (C by the same inner sweep, grouped as configured) is fit once on every row of the two
  sets and scores the test sets, with no refitting: `transfer_auc`, `transfer_balanced_accuracy` and, with
  `pcs`, `transfer_pcs_accuracy` (the PCA(N) classifier fit on all rows), baseline 0.5, intervals over the
  test rows' groups where the test tables have group columns (a test table with none: each row its own
  group), else over rows. The test tables need the same dim and may not be one of the fit tables; `where`
  filters `table` only. `details["transfer"]`: tables, set sizes, chosen C, grouping. `tables` lists all four
  (or both) tables.
* Near-duplicates: where a set's table carries `dup_group` (`artlens dedup`),
  `details["straddling_duplicates"]` counts the near-duplicate pairs (within one table) tested in different
  outer folds; 0 once `dup_group` is a group column, None where no table has it.

`details`: set sizes and per-set recall, chosen C per fold, explained variance ratios and `pca` (first two
components of a PCA of all rows, fit for plotting only; at most MAX_POINTS points, a seeded subsample). With
`umap=True`, `details["umap"]` is a 2-D UMAP (umap-learn; n_neighbors=15, cosine metric, random_state=seed)
of the same points, drawn beside the PCA scatter in reports. It is off by default: numba compiles UMAP on
its first use in a process (about half a minute), and the map is a picture, not a measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold

from artlens.probes.classify import nuisance_keys, outer_splits
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows, table_columns
from artlens.probes.groups import DUP_COLUMN, combine, duplicate_report
from artlens.probes.regression import nuisance_details
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci
from artlens.probes.threads import probe_threads

NAME = "separability"
MAX_POINTS = 3000


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        against: the other set: a table of the same dim (exactly one of against and sets)
        sets: a two-valued column of `table`: its values are the two sets (set A: the first in sorted order)
        group: group columns: rows sharing a value in any are one group, kept on one side of every fold and
            resampled together
        holdout_by: a column of set A (e.g. generative_model): also score each of its values held out
        test_table: a transfer: fit once, score on this table too (with against: also test_against)
        test_against: the transfer's other set (with against)
        pcs: principal components of the `pcs_*` classifier (0: none)
        umap: also compute a 2-D UMAP of both sets (needs umap-learn): true or false
        folds: outer cross-validation folds
        inner_folds: inner folds of the C sweep on each training fold
        Cs: the logistic regression's C grid (one value: no sweep)
        nuisance: columns a nuisance model sees (set A's balanced share per value)
    """
    against: str | None = None
    sets: str | None = None                 # a two-valued column of `table`: its values are the two sets
    group: tuple[str, ...] = ()
    holdout_by: str | None = None
    test_table: str | None = None
    test_against: str | None = None
    pcs: int = 2                            # principal components of the `pcs_*` classifier (0: none)
    umap: bool = False
    folds: int = 5
    inner_folds: int = 3
    Cs: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    nuisance: tuple[str, ...] = ()          # columns a nuisance model sees (set A's balanced share per value)


@dataclass
class Sets:
    X: np.ndarray                 # float64 (n, dim), set A rows first
    y: np.ndarray                 # 1 = set A, 0 = set B
    names: tuple[str, str]
    tables: list[str]
    holdout: np.ndarray | None    # holdout_by value per row (None for set B and NULLs)
    groups: np.ndarray | None = None          # int64 group id per row (None: not grouped)
    dups: np.ndarray | None = None            # dup_group per row, "<table index>:<value>" (None: no table has it)
    missing_group: dict | None = None         # rows left out for a NULL group value, per table
    keys: np.ndarray | None = None            # nuisance combination per row (None: no nuisance columns)


@dataclass
class Part:
    """The rows of one table, with its group ids (None: it has no group column) and near-duplicate groups."""
    table: str
    X: np.ndarray
    columns: dict
    groups: np.ndarray | None
    dups: np.ndarray | None
    missing_group: int


@dataclass
class Folds:
    score: np.ndarray             # out-of-fold decision scores of the full logistic regression
    pc_scores: np.ndarray         # (n, 2) out-of-fold PC1/PC2 scores, oriented on the training fold
    chosen: list                  # C per fold
    pcs_score: np.ndarray | None  # out-of-fold decision scores of the PCA(pcs) classifier
    splits: list


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of `score` for y == 1 (Mann-Whitney, ties count half); NaN when a class is missing."""
    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((rankdata(score)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    pos = y == 1
    if pos.all() or not pos.any():
        return float("nan")
    return float((pred[pos].mean() + (1 - pred[~pos]).mean()) / 2)


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(y == pred)) if len(y) else float("nan")


def _is_null(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _read(s, table: str, columns: list[str], where: str | None, group: tuple[str, ...], index: int,
          require: list[str] | None = None) -> Part:
    """A table's rows; with `group`, those of its group columns it has (None of them: groups None), rows with a
    NULL in one of them left out and counted."""
    present = [c for c in group if c in table_columns(s, table)]
    rows = load_rows(s, table, list(dict.fromkeys([*columns, *present])), where, require=require,
                     optional=[DUP_COLUMN])
    keep = np.ones(len(rows.X), dtype=bool)
    for c in present:
        keep &= np.array([not _is_null(v) for v in rows.columns[c]], dtype=bool)
    if not keep.any():
        raise ProbeDataError(f"separability: every row of {table!r} has a NULL in group column(s) {present}")
    columns = {c: v[keep] for c, v in rows.columns.items()}
    groups = combine([columns[c] for c in present]) if present else None
    dups = None
    if DUP_COLUMN in columns:
        dups = np.array([None if _is_null(v) else f"{index}:{v}" for v in columns[DUP_COLUMN]], dtype=object)
    return Part(table, rows.X[keep], columns, groups, dups, int((~keep).sum()))


def _check_group_columns(s, tables: list[str], group: tuple[str, ...]) -> None:
    """Each group column in at least one of `tables`, and each table with at least one of them."""
    if not group:
        return
    available = {t: table_columns(s, t) for t in tables}
    absent = [c for c in group if not any(c in cols for cols in available.values())]
    if absent:
        raise ProbeDataError(f"separability: group column(s) {absent} are in none of the tables {tables}")
    for t, cols in available.items():
        if not any(c in cols for c in group):
            raise ProbeDataError(f"separability: table {t!r} has none of the group columns {list(group)}; "
                                 f"its columns: {sorted(cols)}")


def _joined_groups(parts: list[Part], grouped: bool) -> np.ndarray | None:
    """Group ids of the parts' rows, concatenated, offset so no two tables share an id; a part without group
    columns (only test tables) gives each row a group of its own."""
    if not grouped:
        return None
    out, offset = [], 0
    for p in parts:
        ids = p.groups if p.groups is not None else np.arange(len(p.X), dtype=np.int64)
        out.append(ids + offset)
        offset += int(ids.max()) + 1 if len(ids) else 0
    return np.concatenate(out)


def _joined_dups(parts: list[Part]) -> np.ndarray | None:
    if all(p.dups is None for p in parts):
        return None
    return np.concatenate([p.dups if p.dups is not None else np.full(len(p.X), None, dtype=object)
                           for p in parts])


def _check_dims(first: str, dim: int, other: str, other_dim: int) -> None:
    if dim != other_dim:
        raise ProbeDataError(f"tables {first!r} (dim {dim}) and {other!r} (dim {other_dim}) have different "
                             f"dims; their embeddings cannot be compared")


def _pair(s, table: str, against: str | None, where: str | None, cfg: Config, extra: list[str],
          grouped: bool, names: tuple[str, str] | None = None, nuisance: tuple[str, ...] = ()) -> Sets:
    """Set A and set B: `table` vs `against`, or `table` split by `cfg.sets` (into `names` when given); with
    `nuisance`, each row's combination of those columns in `keys`."""
    nuisance = list(nuisance)
    keys = None
    if against is not None:
        a = _read(s, table, extra + nuisance, where, cfg.group, 0)
        b = _read(s, against, nuisance, None, cfg.group, 1)
        _check_dims(table, a.X.shape[1], against, b.X.shape[1])
        X, n_a, names = np.vstack([a.X, b.X]), len(a.X), (table, against)
        holdout = a.columns[cfg.holdout_by] if cfg.holdout_by else None
        if nuisance:
            keys = np.concatenate([nuisance_keys(a.columns, nuisance), nuisance_keys(b.columns, nuisance)])
        groups, dups = _joined_groups([a, b], grouped), _joined_dups([a, b])
        tables, missing = [table, against], {table: a.missing_group, against: b.missing_group}
    else:
        rows = _read(s, table, [cfg.sets] + extra + nuisance, where, cfg.group, 0, require=[cfg.sets])
        values = rows.columns[cfg.sets].astype(str)
        found = np.unique(values)
        if names is None:
            if len(found) != 2:
                raise ProbeDataError(f"column {cfg.sets!r} of {table!r} has {len(found)} value(s) "
                                     f"{found.tolist()[:10]}; separability needs exactly two (filter with where=)")
            names = (str(found[0]), str(found[1]))
        elif set(found) - set(names):
            raise ProbeDataError(f"column {cfg.sets!r} of test table {table!r} has value(s) "
                                 f"{sorted(set(found) - set(names))[:10]} that are not the sets {list(names)}")
        order = np.argsort(values != names[0], kind="stable")       # set A (first value) first
        X, n_a = rows.X[order], int((values == names[0]).sum())
        holdout = rows.columns[cfg.holdout_by][order][:n_a] if cfg.holdout_by else None
        groups = _joined_groups([rows], grouped)
        groups = None if groups is None else groups[order]
        dups = None if rows.dups is None else rows.dups[order]
        keys = nuisance_keys(rows.columns, nuisance)[order] if nuisance else None
        tables, missing = [table], {table: rows.missing_group}
    y = np.r_[np.ones(n_a, int), np.zeros(len(X) - n_a, int)]
    if holdout is not None:
        holdout = np.r_[np.asarray(holdout, dtype=object), np.full(len(X) - n_a, None, dtype=object)]
    return Sets(X.astype(np.float64), y, names, tables, holdout, groups, dups, missing, keys)


def _check(cfg: Config) -> None:
    if (cfg.against is None) == (cfg.sets is None):
        raise ConfigError("separability needs exactly one of against=<table> or sets=<two-valued column>")
    if cfg.against == cfg.table:
        raise ConfigError(f"separability: against={cfg.against!r} is the table itself")
    if cfg.against is not None and (cfg.test_table is None) != (cfg.test_against is None):
        raise ConfigError("separability: a transfer with against= needs both test_table= and test_against=")
    if cfg.sets is not None and cfg.test_against is not None:
        raise ConfigError("separability: with sets=, test_table= alone is the transfer (its rows split by "
                          f"{cfg.sets!r}); test_against= does not apply")
    fitted = {cfg.table, cfg.against} - {None}
    tested = {cfg.test_table, cfg.test_against} - {None}
    if fitted & tested:
        raise ConfigError(f"separability: test table(s) {sorted(fitted & tested)} are also fit tables; a "
                          f"transfer is scored on tables the model never saw")
    if cfg.test_table is not None and cfg.test_table == cfg.test_against:
        raise ConfigError(f"separability: test_against={cfg.test_against!r} is the test table itself")
    if isinstance(cfg.pcs, bool) or not isinstance(cfg.pcs, int) or cfg.pcs < 0:
        raise ConfigError(f"separability: pcs must be a whole number of 0 or more, got {cfg.pcs!r}")


def _check_nuisance_columns(s, tables: list[str], nuisance: tuple[str, ...]) -> None:
    """Each nuisance column in every one of `tables` (both sets' tables, or the one table with `sets`)."""
    for t in tables:
        cols = table_columns(s, t)
        absent = [c for c in nuisance if c not in cols]
        if absent:
            raise ProbeDataError(f"separability: nuisance column(s) {absent} not in table {t!r} (each nuisance "
                                 f"column must be in both sets' tables); its columns: {sorted(cols)}")


def _load(s, cfg: Config) -> Sets:
    _check(cfg)
    fit_tables = [t for t in (cfg.table, cfg.against) if t is not None]
    _check_group_columns(s, fit_tables, cfg.group)
    _check_nuisance_columns(s, fit_tables, cfg.nuisance)
    extra = [cfg.holdout_by] if cfg.holdout_by else []
    return _pair(s, cfg.table, cfg.against, cfg.where, cfg, extra, bool(cfg.group), nuisance=cfg.nuisance)


def _inner(cfg: Config, groups: np.ndarray | None):
    if groups is None:
        return StratifiedKFold(cfg.inner_folds, shuffle=True, random_state=cfg.seed)
    return StratifiedGroupKFold(cfg.inner_folds, shuffle=True, random_state=cfg.seed)


def _fit(X: np.ndarray, y: np.ndarray, cfg: Config, groups: np.ndarray | None = None):
    """Balanced logistic regression; C from an inner stratified sweep (grouped with groups) when there is more
    than one."""
    model = LogisticRegression(C=cfg.Cs[0], class_weight="balanced", max_iter=2000)
    if len(cfg.Cs) == 1:
        return model.fit(X, y), cfg.Cs[0]
    search = GridSearchCV(model, {"C": list(cfg.Cs)}, cv=_inner(cfg, groups), scoring="roc_auc")
    search.fit(X, y, groups=groups)
    return search.best_estimator_, search.best_params_["C"]


def _fit_pcs(X: np.ndarray, y: np.ndarray, n: int):
    """The seed group's classifier: PCA(n) of the training rows, logistic regression without intercept."""
    if n > min(X.shape):
        raise ProbeDataError(f"separability: pcs={n} principal components need at least {n} rows and dims, "
                             f"got {X.shape[0]} training rows of dim {X.shape[1]}")
    pca = PCA(n, svd_solver="covariance_eigh").fit(X)
    model = LogisticRegression(fit_intercept=False, class_weight="balanced", max_iter=2000)
    return pca, model.fit(pca.transform(X), y)


def _out_of_fold(X: np.ndarray, y: np.ndarray, cfg: Config, groups: np.ndarray | None = None) -> Folds:
    """Out-of-fold decision scores, in-fold PC1/PC2 scores (oriented on the training fold), chosen Cs, and the
    PCA(pcs) classifier's scores."""
    score, pcs, chosen = np.empty(len(y)), np.empty((len(y), 2)), []
    pcs_score = np.empty(len(y)) if cfg.pcs else None
    splits = outer_splits(y, groups, cfg.folds, cfg.seed)
    for train, test in splits:
        model, C = _fit(X[train], y[train], cfg, None if groups is None else groups[train])
        score[test] = model.decision_function(X[test])
        chosen.append(C)
        pca = PCA(2, svd_solver="covariance_eigh").fit(X[train])
        fitted = pca.transform(X[train])
        sign = np.array([1.0 if auc(y[train], fitted[:, j]) >= 0.5 else -1.0 for j in range(2)])
        pcs[test] = pca.transform(X[test]) * sign
        if cfg.pcs:
            pca_n, clf = _fit_pcs(X[train], y[train], cfg.pcs)
            pcs_score[test] = clf.decision_function(pca_n.transform(X[test]))
    return Folds(score, pcs, chosen, pcs_score, splits)


def _b_shares(sets: Sets, values: list, seed: int) -> list[np.ndarray]:
    """Set B shuffled once and cut into disjoint shares sized like A's groups (relative to all of A); with
    groups, B's groups are shuffled and each share holds whole groups (cut where the running count of rows
    comes closest to the share's end)."""
    a = sets.y == 1
    rng = np.random.default_rng(seed)
    sizes = np.array([np.sum(sets.holdout[a] == g) for g in values])
    if sets.groups is None:
        b = rng.permutation(np.flatnonzero(~a))
        cuts = np.round(np.cumsum(sizes) / a.sum() * len(b)).astype(int)
        return np.split(b[:cuts[-1]], cuts[:-1])
    b_rows = np.flatnonzero(~a)
    ids = rng.permutation(np.unique(sets.groups[b_rows]))
    members = [b_rows[sets.groups[b_rows] == g] for g in ids]
    ends = np.cumsum([len(m) for m in members])
    targets = np.cumsum(sizes) / a.sum() * len(b_rows)
    cuts = [int(np.argmin(np.abs(np.r_[0, ends] - t))) for t in targets]   # groups before each cut
    return [np.concatenate(members[lo:hi]) if hi > lo else np.array([], dtype=int)
            for lo, hi in zip([0] + cuts[:-1], cuts)]


def _holdout_values(sets: Sets, cfg: Config) -> tuple[list[str], Sets]:
    values = sorted({str(v) for v in sets.holdout[sets.y == 1] if v is not None})
    if len(values) < 2:
        raise ProbeDataError(f"holdout_by={cfg.holdout_by!r} needs at least two values in set A, got {values}")
    labels = np.array([None if v is None else str(v) for v in sets.holdout], dtype=object)
    return values, Sets(sets.X, sets.y, sets.names, sets.tables, labels, sets.groups)


def _holdout_splits(sets: Sets, values: list[str], cfg: Config):
    """Per held-out value: (value, B's test share, fits), each fit (train, test, rows removed from training).
    Without groups one fit tests all of the value's rows and its share. With groups (every generator answered
    the same prompts) those test rows are cut into `folds` grouped folds, each scored by a model whose
    training rows share no group with them: training on another generator's answer to a test prompt would
    test prompt memory too."""
    for g, b_test in zip(values, _b_shares(sets, values, cfg.seed)):
        test = np.concatenate([np.flatnonzero(sets.holdout == g), b_test]).astype(int)
        train = np.setdiff1d(np.arange(len(sets.y)), test)
        if sets.groups is None:
            yield g, b_test, [(train, test, 0)]
            continue
        k = min(cfg.folds, len(np.unique(sets.groups[test])))
        fits = []
        for _, part in outer_splits(sets.y[test], sets.groups[test], k, cfg.seed):
            shared = np.isin(sets.groups[train], sets.groups[test[part]])
            fits.append((train[~shared], test[part], int(shared.sum())))
        yield g, b_test, fits


def _holdout(sets: Sets, cfg: Config) -> dict:
    """Per value of `holdout_by`: AUC of models that never saw that value's rows of set A (nor, with groups,
    any row sharing a group with the rows they score)."""
    values, sets = _holdout_values(sets, cfg)
    out = {}
    for i, (g, b_test, fits) in enumerate(_holdout_splits(sets, values, cfg)):
        test = np.concatenate([part for _, part, _ in fits])
        score, chosen = np.empty(len(sets.y)), []
        for train, part, _ in fits:
            model, C = _fit(sets.X[train], sets.y[train], cfg, None if sets.groups is None else sets.groups[train])
            score[part] = model.decision_function(sets.X[part])
            chosen.append(C)
        yt, st = sets.y[test], score[test]
        gt = None if sets.groups is None else sets.groups[test]
        ci = bootstrap_ci(lambda j: auc(yt[j], st[j]), len(test), cfg.n_boot, cfg.seed + i, gt)
        out[g] = {"auc": auc(yt, st), "ci": list(ci), "n_test_a": int(yt.sum()), "n_test_b": len(b_test),
                  "C": chosen[0] if len(chosen) == 1 else chosen,
                  "n_train": [len(train) for train, _, _ in fits],
                  "n_train_removed": [removed for _, _, removed in fits]}
        if gt is not None:
            out[g]["n_test_groups"] = int(len(np.unique(gt)))
    return out


def _subsample(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, MAX_POINTS, replace=False)) if n > MAX_POINTS else np.arange(n)


def _pca_details(sets: Sets, seed: int) -> dict:
    """A PCA of all rows for plots: explained variance and the first two components (A's mean on the + side)."""
    k = min(10, *sets.X.shape)
    pca = PCA(k, svd_solver="covariance_eigh").fit(sets.X)
    coords = pca.transform(sets.X)[:, :2]
    a = sets.y == 1
    coords = coords * np.where(coords[a].mean(0) >= coords[~a].mean(0), 1.0, -1.0)
    keep = _subsample(len(coords), seed)
    names = np.array(sets.names, dtype=object)[1 - sets.y[keep]]
    return {"explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
            "pca": {"x": coords[keep, 0].tolist(), "y": coords[keep, 1].tolist(), "set": names.tolist()}}


def _umap_details(sets: Sets, seed: int) -> dict:
    """A seeded 2-D UMAP of the points `_pca_details` plots (numba compiles it on first use: slow once)."""
    import warnings

    import umap

    keep = _subsample(len(sets.y), seed)
    with warnings.catch_warnings():   # "n_jobs overridden by setting random_state": seeded means serial
        warnings.simplefilter("ignore", UserWarning)
        coords = umap.UMAP(n_components=2, random_state=seed, n_neighbors=15, metric="cosine") \
            .fit_transform(sets.X[keep])
    names = np.array(sets.names, dtype=object)[1 - sets.y[keep]]
    return {"x": coords[:, 0].astype(float).tolist(), "y": coords[:, 1].astype(float).tolist(),
            "set": names.tolist()}


def balanced_share_by_key(train_keys: np.ndarray, train_y: np.ndarray, test_keys: np.ndarray):
    """The nuisance model: per combination, set A's share of the training rows with it, each set's rows
    weighted by 1 / (its training count) (as class_weight="balanced"); an unseen combination (or a training
    fold missing a set) scores 0.5. Returns the test rows' scores and a mask of those whose combination was
    unseen."""
    a = train_y == 1
    n_a, n_b = int(a.sum()), int((~a).sum())
    share: dict = {}
    if n_a and n_b:
        found, inverse = np.unique(train_keys.astype(str), return_inverse=True)
        w_a = np.bincount(inverse[a], minlength=len(found)) / n_a
        w_b = np.bincount(inverse[~a], minlength=len(found)) / n_b
        share = dict(zip(found.tolist(), (w_a / (w_a + w_b)).tolist()))
    test = test_keys.astype(str)
    unseen = np.array([k not in share for k in test], dtype=bool)
    return np.array([share.get(k, 0.5) for k in test], dtype=float), unseen


def _nuisance(result: Result, sets: Sets, folds: Folds, cfg: Config) -> dict:
    """`nuisance.auc`, `nuisance.balanced_accuracy` (baseline 0.5) of the nuisance model fit on each outer
    training fold, and the embedding's paired gains over them (baseline 0)."""
    y, groups, keys = sets.y, sets.groups, sets.keys
    nscore, unseen = np.empty(len(y)), 0
    for train, test in folds.splits:
        nscore[test], missing = balanced_share_by_key(keys[train], y[train], keys[test])
        unseen += int(missing.sum())
    npred = (nscore > 0.5).astype(int)          # a tie (0.5: e.g. an unseen combination) predicts set B
    pred = (folds.score > 0).astype(int)
    pairs = {"auc": (auc, folds.score, nscore), "balanced_accuracy": (balanced_accuracy, pred, npred)}
    for name, (fn, emb, nui) in pairs.items():
        ci = bootstrap_ci(lambda i, fn=fn, nui=nui: fn(y[i], nui[i]), len(y), cfg.n_boot, cfg.seed, groups)
        result.add(f"nuisance.{name}", fn(y, nui), ci, 0.5)

        def gain(i, fn=fn, emb=emb, nui=nui):
            return fn(y[i], emb[i]) - fn(y[i], nui[i])
        result.add(f"{name}_gain_over_nuisance", gain(np.arange(len(y))),
                   bootstrap_ci(gain, len(y), cfg.n_boot, cfg.seed, groups), 0.0)
    return nuisance_details(cfg, keys, unseen)


def _add_auc(result: Result, name: str, y, score, groups, cfg: Config) -> None:
    ci = bootstrap_ci(lambda i: auc(y[i], score[i]), len(y), cfg.n_boot, cfg.seed, groups)
    result.add(name, auc(y, score), ci, 0.5)


def _add_rate(result: Result, name: str, fn, y, pred, groups, cfg: Config) -> None:
    ci = bootstrap_ci(lambda i: fn(y[i], pred[i]), len(y), cfg.n_boot, cfg.seed, groups)
    result.add(name, fn(y, pred), ci, 0.5)


def _transfer(s, result: Result, sets: Sets, cfg: Config) -> dict:
    """Fit once on every row of the two sets, score the test sets (no refitting)."""
    test_tables = [t for t in (cfg.test_table, cfg.test_against) if t is not None]
    t_cols = {t: table_columns(s, t) for t in test_tables}
    grouped = bool(cfg.group) and any(c in cols for cols in t_cols.values() for c in cfg.group)
    names = sets.names if cfg.sets is not None else None
    test = _pair(s, cfg.test_table, cfg.test_against, None, cfg, [], grouped, names)
    _check_dims(cfg.table, sets.X.shape[1], cfg.test_table, test.X.shape[1])
    if test.y.sum() == 0 or test.y.sum() == len(test.y):
        raise ProbeDataError(f"separability: the test tables {test_tables} hold rows of one set only")
    model, C = _fit(sets.X, sets.y, cfg, sets.groups)
    score = model.decision_function(test.X)
    pred = (score > 0).astype(int)
    _add_auc(result, "transfer_auc", test.y, score, test.groups, cfg)
    _add_rate(result, "transfer_balanced_accuracy", balanced_accuracy, test.y, pred, test.groups, cfg)
    if cfg.pcs:
        pca, clf = _fit_pcs(sets.X, sets.y, cfg.pcs)
        pcs_pred = (clf.decision_function(pca.transform(test.X)) > 0).astype(int)
        _add_rate(result, "transfer_pcs_accuracy", accuracy, test.y, pcs_pred, test.groups, cfg)
    a = test.y == 1
    return {"tables": test.tables, "C": C, "n": len(test.y),
            "sets": {test.names[0]: int(a.sum()), test.names[1]: int((~a).sum())},
            "grouped_by": [c for c in cfg.group if any(c in cols for cols in t_cols.values())] or None,
            "n_groups": None if test.groups is None else int(len(np.unique(test.groups))),
            "missing_group": test.missing_group}


@probe_threads
def run(s, cfg: Config) -> Result:
    sets = _load(s, cfg)
    X, y, groups = sets.X, sets.y, sets.groups
    if min(y.sum(), len(y) - y.sum()) < cfg.folds:
        raise ProbeDataError(f"sets {sets.names} have {int(y.sum())} and {int(len(y) - y.sum())} rows; "
                             f"each needs at least folds={cfg.folds}")
    tables = sets.tables + [t for t in (cfg.test_table, cfg.test_against) if t is not None]
    result = Result(NAME, tables, cfg.as_dict(), n=len(y))
    folds = _out_of_fold(X, y, cfg, groups)
    pred = (folds.score > 0).astype(int)
    _add_auc(result, "auc", y, folds.score, groups, cfg)
    _add_rate(result, "balanced_accuracy", balanced_accuracy, y, pred, groups, cfg)
    for j, name in enumerate(("pc1_auc", "pc2_auc")):
        _add_auc(result, name, y, folds.pc_scores[:, j], groups, cfg)
    if cfg.pcs:
        _add_rate(result, "pcs_accuracy", accuracy, y, (folds.pcs_score > 0).astype(int), groups, cfg)
        _add_auc(result, "pcs_auc", y, folds.pcs_score, groups, cfg)
    if cfg.nuisance:
        result.details["nuisance"] = _nuisance(result, sets, folds, cfg)
    if cfg.holdout_by:
        result.per_class = _holdout(sets, cfg)
        aucs = np.array([g["auc"] for g in result.per_class.values()], dtype=float)
        aucs = aucs[np.isfinite(aucs)]
        if len(aucs) == 0:
            raise ProbeDataError(f"holdout_by={cfg.holdout_by!r}: no group had rows of both sets to test")
        ci = bootstrap_ci(lambda i: float(aucs[i].mean()), len(aucs), cfg.n_boot, cfg.seed)
        result.add("holdout_auc", aucs.mean(), ci, 0.5)
    if cfg.test_table is not None:
        result.details["transfer"] = _transfer(s, result, sets, cfg)
    a = y == 1
    result.details.update(
        sets={sets.names[0]: {"n": int(a.sum()), "recall": float(pred[a].mean())},
              sets.names[1]: {"n": int((~a).sum()), "recall": float(1 - pred[~a].mean())}},
        positive=sets.names[0], chosen_C=folds.chosen, holdout_by=cfg.holdout_by,
        grouped_by=list(cfg.group) or None, n_groups=None if groups is None else int(len(np.unique(groups))),
        missing_group=sets.missing_group, pcs=cfg.pcs,
        straddling_duplicates=None if sets.dups is None else
        duplicate_report({DUP_COLUMN: sets.dups}, folds.splits, len(y)),
        **_pca_details(sets, cfg.seed))
    if cfg.umap:
        result.details["umap"] = _umap_details(sets, cfg.seed)
    return result
