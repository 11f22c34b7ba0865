"""Shards: sources (folder, WikiArt, Parquet) → WebDataset tars + manifest, and reading them back (shard specs,
the streaming tar reader, sample records).
"""
