"""artlens.pipeline: from images to embeddings. Sub-packages by concern: `shards` (sources → WebDataset shards,
and reading them back), `imaging` (decode and preprocess; `imaging.gpu` on CUDA), `models` (model spec, weights,
loading), `extract` (the extraction loop and its engines), `perturb` (deformations), `demo` (the procedural
sample corpus); `texts` and `importer` write the other two kinds of table.
"""
