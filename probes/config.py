"""Probe configs: frozen dataclasses, built from CLI options or YAML mappings, unknown keys refused."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import TypeVar

from artlens.errors import UserError

C = TypeVar("C", bound="ProbeConfig")


class ConfigError(UserError):
    """Probe options that are unknown, missing or do not fit together (the message names them as `name=`)."""


@dataclass(frozen=True)
class ProbeConfig:
    table: str
    seed: int = 0
    where: str | None = None          # SQL filter on the table's columns
    n_boot: int = 1000                # bootstrap resamples for confidence intervals

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
