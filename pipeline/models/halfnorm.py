"""Layer norms of a half-precision image tower run in its own precision, not through float32 copies.

open_clip builds a model asked for in fp16/bf16 with `LayerNormFp32`: every layer norm casts its input to
float32, normalises, and casts back. On a GPU that is three extra passes over every activation tensor, twice
per transformer block; on the H200 they cost ViT-L-14 about 13% of its forward time (docs/performance.md).
PyTorch's CUDA layer norm already accumulates the mean and variance of half inputs in float32, so computing it
on the half tensor, with the weight and bias rounded to that precision as every matrix's weights already are,
changes the output only by that rounding (parity is measured against the float32 model, docs/performance.md).
"""
from __future__ import annotations

import torch
from open_clip.transformer import LayerNorm, LayerNormFp32


def half_layer_norms(module: torch.nn.Module, dtype: torch.dtype) -> int:
    """Make every `LayerNormFp32` under `module` a plain layer norm in `dtype`; how many were changed."""
    changed = 0
    for norm in module.modules():
        if type(norm) is LayerNormFp32 and norm.elementwise_affine:
            norm.__class__ = LayerNorm
            norm.to(dtype)
            changed += 1
    return changed
