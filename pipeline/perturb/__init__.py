"""`artlens perturb`: deformations (`deformations`), suites (`suite`, bundled YAML in `suites/`), pixel-space
visibility (`visibility`), the deforming loader (`loader`), the run (`run`) and contact sheets.
"""
