"""Probe registry: name → module exposing `Config` (a ProbeConfig dataclass), `run(store, config)`, `NAME`.

Modules are imported on first use, so listing names costs nothing and a broken optional dependency of
one probe does not stop the others.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from artlens.errors import UserError

PROBES: dict[str, str] = {
    "zero-shot": "artlens.probes.zero_shot",
    "linear": "artlens.probes.linear",
    "knn": "artlens.probes.knn",
    "regression": "artlens.probes.regression",
    "period": "artlens.probes.period",
    "separability": "artlens.probes.separability",
    "rsa": "artlens.probes.rsa",
    "deformation": "artlens.probes.deformation",
}


class UnknownProbe(UserError, KeyError):
    def __str__(self) -> str:
        return self.args[0]


def get_probe(name: str) -> ModuleType:
    try:
        return importlib.import_module(PROBES[name])
    except KeyError:
        raise UnknownProbe(f"unknown probe {name!r}; probes: {', '.join(PROBES)}") from None


def available() -> dict[str, ModuleType]:
    """Probes whose module exists (used by the conformance test and the CLI)."""
    found = {}
    for name, module in PROBES.items():
        try:
            found[name] = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return found
