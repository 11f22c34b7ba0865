"""`artlens extract`: its config, the DataLoader of per-shard batches (`loader`), the per-shard commit loop and
retrier every engine shares (`commit`), the local run (`run`), and the other engines (`engines/`).
"""
