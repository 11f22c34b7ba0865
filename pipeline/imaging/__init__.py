"""Images: bytes → upright RGB (`decode`), the model's preprocessing split into CPU geometry and device
normalisation (`pixels`); `gpu/` decodes and resizes JPEGs on CUDA.
"""
