"""Benchmarks and their corpus makers (not shipped): `make bench` runs `python -m benchmarks.extraction`,
`make bench-store` runs `python -m benchmarks.store_indexes`.
"""
