"""`artlens extract`: its config (`config`), the DataLoader of per-shard batches (`loader`), the per-shard commit
loop every engine and perturb share (`commit`), the one shard retrier and its rule (`retry`), the one summary
(`summary`), the local run (`run`), and the engine registry with the other engines (`engines/`).
"""
