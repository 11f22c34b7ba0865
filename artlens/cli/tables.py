"""`artlens import` and `artlens texts`: the other two ways a table is written (precomputed embeddings, prompts)."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ import
def import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="Parquet file or folder, or clip-retrieval output (img_emb/ + metadata/)")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--embedding-column", required=True,
                   help="column of vectors (e.g. 'ViT-L/14@336px'); clip-retrieval: the folder, e.g. img_emb")
    p.add_argument("--key-column", help="column of unique keys (default: 'key'; clip-retrieval: "
                                        "'key' or 'image_path')")
    p.add_argument("--model-name", help="model recorded in the catalog (default: the embedding column name)")
    p.add_argument("--overwrite", action="store_true", help="replace a table made with other settings")


def import_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.importer import ImportConfig, run_import

    cfg = ImportConfig(source=a.source, store=a.store, table=a.table, embedding_column=a.embedding_column,
                       key_column=a.key_column, model_name=a.model_name, overwrite=a.overwrite)
    summary = run_import(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code


# ------------------------------------------------------------------ texts
def texts_args(p: argparse.ArgumentParser) -> None:
    from artlens.pipeline.models.spec import PRECISION_NAMES

    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="text table to write (kind 'text')")
    p.add_argument("--prompts", required=True,
                   help="prompt set: YAML or CSV file, or the name of a bundled set (sample-style)")
    p.add_argument("--model", default="ViT-B-32", help="open_clip model name or JSON model config path")
    p.add_argument("--pretrained", default="openai", help="open_clip tag, checkpoint path, or 'random'")
    p.add_argument("--for-table", help="image table the prompts are for: refuse unless the same model, "
                                       "weights and dim made it")
    p.add_argument("--seed", type=int, default=0, help="seed for --pretrained random")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--precision", default="fp32", choices=PRECISION_NAMES)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")
    p.add_argument("--overwrite", action="store_true", help="replace the whole table (every prompts file in it)")


def texts_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.models.spec import ModelSpec
    from artlens.pipeline.texts import TextsConfig, embed_prompts

    spec = ModelSpec(model=a.model, pretrained=a.pretrained, precision=a.precision, device=a.device,
                     seed=a.seed, cache_dir=a.cache_dir)
    cfg = TextsConfig(prompts=a.prompts, store=a.store, table=a.table, model=spec, for_table=a.for_table,
                      batch_size=a.batch_size, overwrite=a.overwrite)
    for line in embed_prompts(cfg).lines():
        print(line)
    return 0
