"""Bundled prompt sets for `artlens texts` (pass `--prompts NAME` for `NAME.yaml` here).

A package only so that setuptools ships its `*.yaml` files (pyproject: package-data `"*" = ["*.yaml"]`).
"""
