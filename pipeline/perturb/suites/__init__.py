"""Bundled deformation suites for `artlens perturb` (pass `--suite NAME` for `NAME.yaml` here).

A package only so that setuptools ships its `*.yaml` files (pyproject: package-data `"*" = ["*.yaml"]`).
"""
