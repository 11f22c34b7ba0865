"""Helpers for the deformation tests: small procedural paintings, a digest of the pixels of a whole suite
(compared across processes), and synthetic deformation tables (what `artlens perturb` writes) over a clean
table's vectors. Kept light to import: a subprocess of test_perturb imports this module alone.

In a synthetic table each deformation d pushes every painting along its own fixed direction by
`strength × severity` and adds a little painting-specific noise, so shift and detectability grow with
severity, as real deformations should; its SSIM falls with severity, faster for later deformations.
"""
from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from pipeline.deformations import deform
from pipeline.deformsuite import load_suite
from pipeline.sample import render_painting

from store.catalog import TableEntry
from store.writer import TableWriter


STYLES = ("pointillist", "impasto", "geometric", "wash")


def painting(i: int, size=(96, 80)) -> Image.Image:
    return render_painting(STYLES[i % 4], "landscape", "vivid", seed=i, size=size)


def digest_of_suite(image: Image.Image, key: str) -> str:
    """sha256 over the pixels of every deformation × severity of the default suite."""
    h = hashlib.sha256()
    for spec in load_suite("default").deformations:
        for sev in range(1, 6):
            h.update(deform(image, spec.name, spec.level(sev), key, dict(spec.options)).tobytes())
    return h.hexdigest()


def write_deformed(root, clean: TableEntry, keys, X: np.ndarray, deformations=("blur", "noise"),
                   strength: float = 0.15, seed: int = 0, name: str | None = None, **entry) -> TableEntry:
    rng = np.random.default_rng(seed)
    dim = X.shape[1]
    rows, vectors = [], []
    for j, d in enumerate(deformations):
        direction = rng.normal(size=dim)
        direction /= np.linalg.norm(direction)
        for sev in range(1, 6):
            for key, x in zip(keys, X):
                v = x + strength * sev * (direction + 0.3 * rng.normal(size=dim))
                rows.append({"key": key, "shard": "syn", "deformation": d, "severity": sev,
                             "level": float(sev), "ssim": float(1 - 0.12 * sev * (j + 1) / len(deformations))})
                vectors.append(v / np.linalg.norm(v))
    fields = {"name": name or f"{clean.name}_deformed", "kind": "deformation", "parent": clean.name,
              "model": clean.model, "pretrained": clean.pretrained, "preprocess": "synthetic deformations",
              "dim": clean.dim, **entry}
    writer = TableWriter(root, TableEntry(**fields))
    writer.commit("syn", rows, np.asarray(vectors, np.float32), [])
    return writer.finish()
