"""`artlens import` and `artlens texts`: the other two ways a table is written (precomputed embeddings, prompts)."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ import
def import_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.pipeline.importer import ImportConfig as C

    p.add_argument("source", help="Parquet file or folder, or clip-retrieval output (img_emb/ + metadata/)")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--embedding-column", required=True,
                   help="column of vectors (e.g. 'ViT-L/14@336px'); clip-retrieval: the folder, e.g. img_emb")
    option(p, C, "key_column", help="column of unique keys (default: 'key'; clip-retrieval: 'key' or 'image_path')")
    option(p, C, "model_name", help="model recorded in the catalog (default: the embedding column name)")
    option(p, C, "overwrite", action="store_true", help="replace a table made with other settings")


def import_config(a: argparse.Namespace):
    from artlens.pipeline.importer import ImportConfig

    return ImportConfig(source=a.source, store=a.store, table=a.table, embedding_column=a.embedding_column,
                        key_column=a.key_column, model_name=a.model_name, overwrite=a.overwrite)


def import_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.importer import run_import

    summary = run_import(import_config(a))
    for line in summary.lines():
        print(line)
    return summary.exit_code


# ------------------------------------------------------------------ texts
def texts_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import default, model_arguments, option
    from artlens.pipeline.texts import TextsConfig as C

    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="text table to write (kind 'text')")
    p.add_argument("--prompts", required=True,
                   help="prompt set: YAML or CSV file, or the name of a bundled set (sample-style)")
    model_arguments(p, default(C, "model"), help={"precision": None})
    option(p, C, "for_table", help="image table the prompts are for: refuse unless the same model, weights and "
                                   "dim made it")
    option(p, C, "batch_size", type=int)
    option(p, C, "overwrite", action="store_true", help="replace the whole table (every prompts file in it)")


def texts_config(a: argparse.Namespace):
    from artlens.cli.args import default, model_spec
    from artlens.pipeline.texts import TextsConfig

    return TextsConfig(prompts=a.prompts, store=a.store, table=a.table,
                       model=model_spec(a, default(TextsConfig, "model")), for_table=a.for_table,
                       batch_size=a.batch_size, overwrite=a.overwrite)


def texts_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.texts import embed_prompts

    for line in embed_prompts(texts_config(a)).lines():
        print(line)
    return 0
