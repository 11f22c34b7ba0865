"""Bundled probe suites (`artlens probe run probes/suites/sample.yaml`); a package only so that setuptools ships
its `*.yaml` files."""
