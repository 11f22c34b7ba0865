"""Probe registry: name → module exposing `Config` (a ProbeConfig dataclass), `run(store, config)`, `NAME`.

Modules are imported on first use, so listing names costs nothing and a broken optional dependency of
one probe does not stop the others.
"""
from __future__ import annotations

import importlib
from types import ModuleType

PROBES: dict[str, str] = {
    "zero-shot": "probes.zero_shot",
    "linear": "probes.linear",
    "knn": "probes.knn",
    "regression": "probes.regression",
    "period": "probes.period",
    "separability": "probes.separability",
    "rsa": "probes.rsa",
    "deformation": "probes.deformation",
}


class UnknownProbe(KeyError):
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
