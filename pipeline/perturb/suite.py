"""Deformation suites: YAML files naming deformations and their five severity levels (bundled ones live in
`pipeline/perturb/suites/`; `--suite NAME` picks `NAME.yaml` there, any other value is a path).

    name: default
    work_side: 448          # images are reduced so the shorter side is at most this before deforming
    ssim_side: 224          # SSIM is computed with both images scaled to this shorter side
    deformations:
      blur: {levels: [0.004, 0.008, 0.016, 0.032, 0.064]}
      swirl: {levels: [0.5, 1, 2, 3.5, 6], options: {count: 3, radius: 0.25}}

Unknown keys, deformations or options are refused with the valid names; a suite's `digest` (sha256 of its
settings) goes into the catalog, so a table is only ever extended with the same deformations.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from artlens.errors import UserError
from artlens.pipeline.bundled import bundled_names, find_bundled
from artlens.pipeline.perturb.deformations import DEFORMATIONS, UnknownDeformation, get_deformation

SUITES_DIR = Path(__file__).parent / "suites"
SEVERITIES = (1, 2, 3, 4, 5)
_TOP_KEYS = {"name", "work_side", "ssim_side", "deformations"}
_SPEC_KEYS = {"levels", "options"}


class SuiteError(UserError):
    """A suite file that cannot be read or breaks the format rules (the message names the file)."""


@dataclass(frozen=True)
class DeformationSpec:
    name: str
    levels: tuple[float, ...]          # one value per severity 1..5
    options: tuple[tuple[str, float], ...] = ()

    def level(self, severity: int) -> float:
        return self.levels[severity - 1]


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    work_side: int | None
    ssim_side: int
    deformations: tuple[DeformationSpec, ...]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.deformations]

    @property
    def digest(self) -> str:
        settings = {"work_side": self.work_side, "ssim_side": self.ssim_side,
                    "deformations": [asdict(d) for d in self.deformations]}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        return (f"deformation suite {self.name} sha256:{self.digest[:12]} ({', '.join(self.names)}; "
                f"shorter side reduced to <= {self.work_side}, SSIM at {self.ssim_side})")

    def select(self, names: tuple[str, ...] | list[str]) -> "Suite":
        """The suite restricted to `names` (all when empty), in the suite's order."""
        if not names:
            return self
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise SuiteError(f"deformations {unknown} are not in suite {self.name} ({', '.join(self.names)})",
                             argument="deformations")
        return replace(self, deformations=tuple(d for d in self.deformations if d.name in set(names)))


def resolve_suite(spec: str) -> Path:
    """A suite file path, or the name of a bundled suite such as `default`."""
    found = find_bundled(spec, SUITES_DIR)
    if found is None:
        raise SuiteError(f"deformation suite {spec} does not exist (bundled suites: {bundled_names(SUITES_DIR)})")
    return found


def _positive_int(path: Path, key: str, value, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 8:
        raise SuiteError(f"{path}: {key} must be a whole number of pixels (at least 8), got {value!r}")
    return value


def _spec(path: Path, name: str, body) -> DeformationSpec:
    try:
        deformation = get_deformation(name)
    except UnknownDeformation as exc:
        raise SuiteError(f"{path}: {exc}") from None
    if not isinstance(body, dict) or set(body) - _SPEC_KEYS or "levels" not in body:
        raise SuiteError(f"{path}: {name} needs a mapping with 'levels' (and optionally 'options')")
    levels = body["levels"]
    if (not isinstance(levels, list) or len(levels) != len(SEVERITIES)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels)):
        raise SuiteError(f"{path}: {name}.levels must be {len(SEVERITIES)} numbers (severities 1..5), got {levels!r}")
    options = body.get("options") or {}
    unknown = sorted(set(options) - set(deformation.options))
    if unknown:
        raise SuiteError(f"{path}: {name} has no option(s) {unknown}; options: {sorted(deformation.options)}")
    merged = {**deformation.options, **options}
    return DeformationSpec(name, tuple(float(v) for v in levels), tuple(sorted(merged.items())))


def load_suite(spec: str) -> Suite:
    path = resolve_suite(spec)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("deformations"), dict) or not data["deformations"]:
        raise SuiteError(f"{path}: expected a mapping with a non-empty 'deformations' mapping "
                         f"(deformations: {', '.join(DEFORMATIONS)})")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SuiteError(f"{path}: unknown key(s) {unknown}; keys: {sorted(_TOP_KEYS)}")
    specs = tuple(_spec(path, str(n), body) for n, body in data["deformations"].items())
    return Suite(name=str(data.get("name") or path.stem), path=str(path.resolve()),
                 work_side=_positive_int(path, "work_side", data.get("work_side", 448), allow_none=True),
                 ssim_side=_positive_int(path, "ssim_side", data.get("ssim_side", 224)), deformations=specs)
