"""Probe configs: frozen dataclasses, built from CLI options or YAML mappings, unknown keys refused."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import TypeVar

from artlens.errors import UserError
from artlens.probes.groups import as_columns

C = TypeVar("C", bound="ProbeConfig")

#: The fewest bootstrap resamples a 95% percentile interval is computed from: with fewer than 40, not one
#: resample lies beyond each end (2.5% of 40 is 1), so the interval's ends would be the extreme resamples,
#: and with 0 there is no interval at all ([nan, nan]).
MIN_N_BOOT = 40

#: Options that name one or more columns: a single name or a list, kept as a tuple (probes/groups.py).
COLUMN_LISTS = ("group", "nuisance", "test_group")


def check_n_boot(n_boot) -> None:
    """Refuse a number of resamples that cannot give a 95% interval (`MIN_N_BOOT`)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < MIN_N_BOOT:
        raise UserError(f"n_boot must be a whole number of at least {MIN_N_BOOT} (bootstrap resamples of a 95% "
                        f"interval; 1000 by default), got {n_boot!r}", argument="n_boot")


class ConfigError(UserError):
    """Probe options that are unknown, missing or do not fit together (the message names them as `name=`)."""


def field_help(config: type) -> dict[str, str]:
    """Each option's description, from the `Options:` section of the docstrings of `config` and its bases
    (`name: text`, continuation lines indented deeper); a subclass's text wins. The CLI's `artlens probe KIND
    --help` is generated from it, and a test requires one for every field of every registered probe."""
    found: dict[str, str] = {}
    for cls in reversed(config.__mro__):
        lines = (cls.__dict__.get("__doc__") or "").expandtabs().splitlines()
        start = next((i for i, line in enumerate(lines) if line.strip() == "Options:"), None)
        if start is None:
            continue
        name, indent = None, None
        for line in lines[start + 1:]:
            if not line.strip():
                continue
            depth = len(line) - len(line.lstrip())
            head, sep, text = line.strip().partition(":")
            if indent is None:
                indent = depth
            if depth < indent:
                break
            if depth == indent and sep and head.isidentifier():
                name = head
                found[name] = text.strip()
            elif name is not None:
                found[name] = f"{found[name]} {line.strip()}"
    return found


@dataclass(frozen=True)
class ProbeConfig:
    """Options:
        table: the table of embeddings the probe reads
        seed: random seed of folds, resamples and permutations
        where: one SQL expression over the table's columns that keeps rows, e.g. "style = 'Baroque'"
        n_boot: bootstrap resamples of each 95% interval (at least 40)
        threads: BLAS/OpenMP threads the probe may use (1 by default: the same bits on every machine; at any
            fixed count a result is the same on one machine)
    """
    table: str
    seed: int = 0
    where: str | None = None          # SQL filter on the table's columns
    n_boot: int = 1000                # bootstrap resamples for confidence intervals
    threads: int = 1                  # BLAS/OpenMP threads (probes/threads.py)

    def __post_init__(self) -> None:
        """Options every probe shares, checked before any data is read: `n_boot` (at least MIN_N_BOOT), and
        `min_count`, the fewest rows a class keeps, in the probes that have it (0 or more)."""
        check_n_boot(self.n_boot)
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"threads must be a whole number of at least 1 (BLAS/OpenMP threads), got "
                              f"{self.threads!r}", argument="threads")
        for name in COLUMN_LISTS:  # `group: artist` (YAML, Python) and `--group a --group b` (CLI) alike
            if hasattr(self, name):
                object.__setattr__(self, name, as_columns(getattr(self, name)))
        min_count = getattr(self, "min_count", None)
        if min_count is not None and (isinstance(min_count, bool) or not isinstance(min_count, int)
                                      or min_count < 0):
            raise ConfigError(f"min_count must be a whole number of 0 or more (the fewest rows a class needs to "
                              f"be kept), got {min_count!r}", argument="min_count")

    @classmethod
    def from_dict(cls: type[C], data: dict) -> C:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{cls.__module__.split('.')[-1]}: unknown option(s) {unknown}; "
                              f"options: {sorted(known)}")
        missing = [n for n, f in known.items() if n not in data and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise ConfigError(f"{cls.__module__.split('.')[-1]}: missing option(s) {missing}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
