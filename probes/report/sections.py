"""What goes where in the report: perception sections chosen by rules (data, not branches), titles and
one-line config summaries, file-safe result names, and the number formatting every table shares."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

SECTIONS = ("Human vs AI", "Style", "Period", "Content and scene", "Human ratings", "Grouping", "Deformations",
            "Guidance", "Other")
OTHER = "Other"


@dataclass(frozen=True)
class Rule:
    """A result belongs to `section` when its probe is one of `probes` (any probe if empty), one of `words`
    names its label/target/column (any if empty), and, with `numeric`, its target is a numeric rating."""
    section: str
    probes: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()
    numeric: bool = False


#: The first rule a result matches chooses its section; a result matching none goes to "Other".
RULES: tuple[Rule, ...] = (
    Rule("Deformations", probes=frozenset({"deformation"})),
    Rule("Human vs AI", probes=frozenset({"separability"})),
    Rule("Period", probes=frozenset({"period"})),
    Rule("Grouping", probes=frozenset({"knn"})),
    Rule("Human ratings", probes=frozenset({"regression"})),
    Rule("Guidance", probes=frozenset({"guide"})),
    Rule("Style", words=("style", "movement")),
    Rule("Period", words=("period", "century", "decade", "year", "date", "era")),
    Rule("Content and scene", words=("subject", "genre", "theme", "scene", "content")),
    Rule("Human ratings", probes=frozenset({"rsa"}), numeric=True),
)

#: Config keys naming what a probe reads off the embeddings (first found is the "subject" of a title).
LABEL_KEYS = ("label", "labels", "target", "column")
#: Words that mark a target as a human rating when the result does not say it is numeric.
RATING_WORDS = frozenset({"rating", "ratings", "score", "defects", "authenticity", "adherence", "aesthetic",
                          "aesthetics", "quality", "beauty", "liking", "preference", "realism"})
#: details keys/values by which a probe may say its target is numeric.
NUMERIC_KINDS = frozenset({"numeric", "continuous", "rating", "ratings", "ordinal", "absolute"})
#: Config keys shown in the one-line summary, with the word shown for them.
SUMMARY_KEYS = (("against", "against"), ("label", "label"), ("labels", "labels"), ("target", "target"),
                ("column", "column"), ("texts", "texts"), ("sets", "sets"), ("group", "group"),
                ("nuisance", "nuisance"), ("holdout_by", "holdout"), ("test_table", "tested on"),
                ("test_against", "tested against"), ("where", "where"))


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", text.lower()) if t}


def label_text(result: dict) -> str:
    """What the probe reads: label/labels/target/column, or the prompt texts when none is given."""
    cfg = result.get("config") or {}
    primary = " ".join(_text(cfg.get(k)) for k in LABEL_KEYS if cfg.get(k))
    return primary or _text(cfg.get("texts"))


def is_numeric(result: dict) -> bool:
    details = result.get("details") or {}
    if details.get("numeric") is True:
        return True
    kinds = {str(details.get(k, "")).lower() for k in ("target_kind", "label_kind", "kind", "metric")}
    return bool(kinds & NUMERIC_KINDS) or bool(_tokens(label_text(result)) & RATING_WORDS)


def _matches(rule: Rule, result: dict) -> bool:
    if rule.probes and result.get("probe") not in rule.probes:
        return False
    if rule.words:
        tokens = _tokens(label_text(result))
        if not any(w in tokens or f"{w}s" in tokens for w in rule.words):
            return False
    return not rule.numeric or is_numeric(result)


def section_of(result: dict) -> str:
    return next((rule.section for rule in RULES if _matches(rule, result)), OTHER)


def title_of(result: dict) -> str:
    """e.g. 'linear: style on ngd, grouped by artist' or 'separability: ai_pastiche vs ngd'."""
    cfg = result.get("config") or {}
    tables = _text(cfg.get("table")) or _text(result.get("tables")) or "?"
    if cfg.get("against"):
        tables = f"{tables} vs {_text(cfg['against'])}"
    subject = next((_text(cfg[k]) for k in LABEL_KEYS if cfg.get(k)), "")
    title = f"{result.get('probe', '?')}: {subject + ' on ' if subject else ''}{tables}"
    if cfg.get("sets"):
        title += f", sets by {_text(cfg['sets'])}"
    if cfg.get("group"):
        title += f", grouped by {_text(cfg['group'])}"
    if cfg.get("nuisance"):
        title += f", against {_text(cfg['nuisance'])} alone"
    if cfg.get("test_table"):
        title += f", tested on {_text(cfg['test_table'])}"
    if cfg.get("holdout_by"):
        title += f", held out by {_text(cfg['holdout_by'])}"
    return title


def config_line(result: dict) -> str:
    cfg = result.get("config") or {}
    parts = [f"table: {_text(cfg.get('table')) or _text(result.get('tables')) or '?'}"]
    parts += [f"{shown}: {_text(cfg[key])}" for key, shown in SUMMARY_KEYS if cfg.get(key) not in (None, "", [])]
    return " · ".join(parts)


def result_names(results: list[dict]) -> list[str]:
    """File-safe, unique names built like the store's result names (probe, tables, distinguishing options)."""
    names, seen = [], {}
    for result in results:
        cfg = result.get("config") or {}
        parts = [result.get("probe", "result"), *(result.get("tables") or [])]
        parts += [f"{k}={_text(cfg[k]).replace(', ', ',')}" for k in
                  ("label", "labels", "target", "column", "against", "sets", "group", "nuisance", "holdout_by",
                   "texts", "test_against") if cfg.get(k)]
        name = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", "__".join(str(p) for p in parts))[:120] or "result"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names


# ------------------------------------------------------------------ numbers
def metric_parts(metric) -> tuple[object, list]:
    """(value, [lo, hi]) of a metric entry: {"value", "ci"} as results store it, or a bare number."""
    if isinstance(metric, dict):
        ci = metric.get("ci")
        return metric.get("value"), list(ci) if isinstance(ci, (list, tuple)) and len(ci) == 2 else [None, None]
    return metric, [None, None]


def fmt(value) -> str:
    """Every value in the report: 3 decimals; integers as integers; missing or NaN as 'n/a'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a" if value is None else str(value)
    if not math.isfinite(number):
        return "n/a"
    text = f"{number:.3f}"
    return "0.000" if text == "-0.000" else text


def fmt_ci(ci) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or all(fmt(v) == "n/a" for v in ci):
        return "n/a"
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def fmt_n(n) -> str:
    try:
        return str(int(n))
    except (TypeError, ValueError):
        return "n/a"


def fmt_p(p) -> str:
    try:
        return "< 0.001" if 0 <= float(p) < 0.001 else fmt(p)
    except (TypeError, ValueError):
        return fmt(p)
