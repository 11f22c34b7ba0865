"""The procedural sample corpus (`artlens sample`): painted-like images with known labels (`paintings`) written
as shards (`corpus`).
"""
