"""artlens store: Parquet embedding tables, their catalog, and the DuckDB query API.

`store.open(path)` is the entry point for readers; `store.writer.TableWriter` for the pipeline.
"""
from artlens.store.query import Store, StoreError, open  # noqa: A004

__all__ = ["Store", "StoreError", "open"]
