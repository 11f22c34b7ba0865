"""`artlens import` and `artlens texts`: the other two ways a table is written (precomputed embeddings, prompts)."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ import
def import_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.pipeline.importer import ImportConfig as C

    p.add_argument("source", help="Parquet file or folder, or clip-retrieval output (img_emb/ + metadata/)")
    p.add_argument("--store", required=True, help="the store folder (or URL) to write the table into")
    p.add_argument("--table", required=True, help="table to write")
    p.add_argument("--embedding-column", required=True,
                   help="column of vectors (e.g. 'ViT-L/14@336px'); clip-retrieval: the folder, e.g. img_emb")
    option(p, C, "key_column", help="column of unique keys (default: 'key'; clip-retrieval: 'key' or 'image_path')")
    option(p, C, "model_name", help="model recorded in the catalog (default: the embedding column name)")
    option(p, C, "overwrite", action="store_true", help="replace a table made with other settings")
    option(p, C, "image_url_column", help="column of image URLs (e.g. NGA's 'link'), recorded in the catalog: "
                                          "what the explorer and Store.image_url show for a table without images")


def import_config(a: argparse.Namespace):
    from artlens.pipeline.importer import ImportConfig

    return ImportConfig(source=a.source, store=a.store, table=a.table, embedding_column=a.embedding_column,
                        key_column=a.key_column, model_name=a.model_name, overwrite=a.overwrite,
                        image_url_column=a.image_url_column)


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

    p.add_argument("--store", required=True, help="the store folder (or URL) to write the table into")
    p.add_argument("--table", required=True, help="text table to write (kind 'text')")
    p.add_argument("--prompts", required=True,
                   help="prompt set: YAML, CSV or JSON file (CLIP_benchmark templates, CuPL), or the name of a "
                        "bundled set (sample-style)")
    from artlens.pipeline.texts import PROMPT_FORMATS

    option(p, C, "prompts_format", choices=("auto",) + tuple(PROMPT_FORMATS),
           help="auto (default: by suffix, and for .json by content: every entry with {c} is CLIP_benchmark "
                "templates, else CuPL), or the format of --prompts")
    option(p, C, "classnames", help="CLIP_benchmark: the class names JSON ({dataset: [class, ...]}) of a "
                                    "templates --prompts file (en_classnames.json)")
    option(p, C, "dataset", help="CLIP_benchmark: the dataset key of both files (default: the one they share)")
    model_arguments(p, default(C, "model"), help={"precision": "auto: fp16 on CUDA, fp32 on CPU"})
    option(p, C, "for_table", help="image table the prompts are for: refuse unless the same model, weights and "
                                   "dim made it")
    option(p, C, "batch_size", type=int, help="prompts per batch (default %(default)s)")
    option(p, C, "overwrite", action="store_true", help="replace the whole table (every prompts file in it)")


def texts_config(a: argparse.Namespace):
    from artlens.cli.args import default, model_spec
    from artlens.pipeline.texts import TextsConfig

    return TextsConfig(prompts=a.prompts, store=a.store, table=a.table,
                       model=model_spec(a, default(TextsConfig, "model")), for_table=a.for_table,
                       batch_size=a.batch_size, overwrite=a.overwrite, prompts_format=a.prompts_format,
                       classnames=a.classnames, dataset=a.dataset)


def texts_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.texts import embed_prompts

    for line in embed_prompts(texts_config(a)).lines():
        print(line)
    return 0


# ------------------------------------------------------------------ tables
#: `artlens tables` columns, each read from the catalog entry (store/catalog.py TableEntry) of one table.
TABLE_COLUMNS = ("table", "kind", "rows", "model", "pretrained", "dim", "parent", "failures", "updated")


def tables_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import output_arguments

    p.add_argument("--store", required=True, help="the store folder (or URL) whose tables to list")
    output_arguments(p)


def tables_rows(store_path: str):
    """One row per table of the store's catalog, through the store's API (`artlens.store.open`)."""
    import pyarrow as pa

    from artlens import store

    with store.open(store_path) as s:
        entries = [s.entry(name) for name in s.tables()]
    columns = {
        "table": pa.array([e.name for e in entries], pa.string()),
        "kind": pa.array([e.kind for e in entries], pa.string()),
        "rows": pa.array([e.rows for e in entries], pa.int64()),
        "model": pa.array([e.model for e in entries], pa.string()),
        "pretrained": pa.array([e.pretrained for e in entries], pa.string()),
        "dim": pa.array([e.dim for e in entries], pa.int64()),
        "parent": pa.array([e.parent or None for e in entries], pa.string()),
        "failures": pa.array([e.failures for e in entries], pa.int64()),
        "updated": pa.array([e.updated for e in entries], pa.timestamp("us", tz="UTC")),
    }
    return pa.table({name: columns[name] for name in TABLE_COLUMNS})


def tables_run(a: argparse.Namespace) -> int:
    from artlens.cli.output import write_result

    write_result(tables_rows(a.store), a.format, a.out, a.max_rows)
    return 0
