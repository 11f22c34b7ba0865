"""Shared fixtures: the tiny open_clip model config, real data paths, tar builders, an extraction runner."""
from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
TINY_MODEL = str(TESTS / "models" / "artlens-tiny-vit.json")
SHARED = REPO.parent / "shared" / "data"
PAINTINGS = SHARED / "paintings"
AI_PASTICHE_NGA = SHARED / "ai-pastiche-nga"

sys.path.insert(0, str(TESTS))  # for `import imagefactory`


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs the shared data at {path} (present in CI and beside developer checkouts)")
    return path


@pytest.fixture
def paintings() -> Path:
    return require(PAINTINGS)


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny open_clip ViT with seeded random weights, loaded once for the session (fp32, CPU)."""
    from pipeline.config import ModelSpec
    from pipeline.model import load_model

    return load_model(ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar with exactly these members, in this order (names are not sanitised: tests need odd ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def meta(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.fixture
def extract(tmp_path, tiny_model):
    """Run an extraction in-process with the tiny model: extract(shards, table='t', **config)."""
    from pipeline.config import ExtractConfig, ModelSpec
    from pipeline.extract import run_extract

    def run(shards, table="t", store=None, **kwargs):
        kwargs.setdefault("workers", 0)
        kwargs.setdefault("progress", False)
        spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
        cfg = ExtractConfig(shards=str(shards), store=str(store or tmp_path / "store"), table=table,
                            model=spec, **kwargs)
        return run_extract(cfg, loaded=tiny_model)

    return run
