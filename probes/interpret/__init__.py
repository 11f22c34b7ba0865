"""Guidance interpretability: what drives an image–text CLIP score, and how far pixels can push it.

Modules: `view` (the model's own view of an image in [0, 1] and a differentiable image–text score),
`source` (the model to score with: a store table's own, or an open_clip spec), `ig` and `rollout` (the
saliency methods), `saliency` (`artlens saliency`), `heatmap` (the overlay figure), `guide` (`artlens guide`:
gradient ascent on pixels), `guideout` (its images, result and files).
"""
