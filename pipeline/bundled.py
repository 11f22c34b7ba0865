"""Data files shipped inside the package (prompt sets, deformation suites): the user names a bundled one or
gives a path."""
from __future__ import annotations

from pathlib import Path


def find_bundled(spec: str, folder: Path) -> Path | None:
    """`spec` itself when it is a file, else `folder/<spec>.yaml` when `spec` is a plain name; None if neither."""
    path = Path(spec)
    if path.is_file():
        return path
    bundled = folder / f"{spec}.yaml"
    return bundled if "/" not in spec and bundled.is_file() else None


def bundled_names(folder: Path) -> str:
    return ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
