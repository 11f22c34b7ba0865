"""artlens: measure how CLIP-like models perceive art.

The public Python API. Names are imported on first use, so `import artlens` loads neither torch nor DuckDB:

    import artlens
    artlens.extract(artlens.ExtractConfig(shards="data/shards", store="artstore", table="paintings"))
    with artlens.open_store("artstore") as s:
        s.sql("SELECT style, count(*) FROM paintings GROUP BY style")
    artlens.neighbors("artstore", "paintings", text="a pointillist seascape", k=5)
    artlens.run_probe("artstore", "linear", {"table": "paintings", "label": "style", "group": "artist"})
    artlens.write_report("artstore", "report/")

Each command's config (`ExtractConfig`, `ShardsConfig`, ...) is the one the `artlens` CLI builds from its
flags, with the same defaults. Errors a caller can fix derive from `artlens.errors.UserError`.
"""
from __future__ import annotations

import importlib

from artlens import startup

__version__ = "0.1.0"
startup.install()  # torchvision without torch._dynamo (artlens/startup.py)

# public name -> "module:attribute"
_API = {
    # stores
    "open_store": "artlens.store:open",
    "Store": "artlens.store:Store",
    "neighbors": "artlens.api:neighbors",
    "IndexConfig": "artlens.store.index:IndexConfig",
    "build_index": "artlens.store.index:build_index",
    # writing tables
    "SampleConfig": "artlens.pipeline.demo.corpus:SampleConfig",
    "write_sample_corpus": "artlens.pipeline.demo.corpus:write_sample_corpus",
    "ShardsConfig": "artlens.pipeline.shards.config:ShardsConfig",
    "write_shards": "artlens.pipeline.shards.write:write_shards",
    "ModelSpec": "artlens.pipeline.models.spec:ModelSpec",
    "load_model": "artlens.pipeline.models.load:load_model",
    "ExtractConfig": "artlens.pipeline.extract.config:ExtractConfig",
    "extract": "artlens.pipeline.extract.engines:run",
    "ImportConfig": "artlens.pipeline.importer:ImportConfig",
    "import_embeddings": "artlens.pipeline.importer:run_import",
    "TextsConfig": "artlens.pipeline.texts:TextsConfig",
    "embed_texts": "artlens.pipeline.texts:embed_prompts",
    "PerturbConfig": "artlens.pipeline.perturb.run:PerturbConfig",
    "perturb": "artlens.pipeline.perturb.run:run_perturb",
    "DedupConfig": "artlens.pipeline.dedup:DedupConfig",
    "dedup": "artlens.pipeline.dedup:run_dedup",
    # reading them
    "run_probe": "artlens.probes.runner:run_probe",
    "run_suite": "artlens.probes.runner:run_suite",
    "write_report": "artlens.probes.report:write_report",
    # errors
    "ArtlensError": "artlens.errors:ArtlensError",
    "UserError": "artlens.errors:UserError",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    try:
        module, attribute = _API[name].split(":")
    except KeyError:
        raise AttributeError(f"module 'artlens' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
