"""Gradient-weighted attention rollout for ViT CLIP (Chefer, Gur & Wolf 2021, "Generic Attention-model
Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV), self-attention rule:

    R = I;  for every block b:  Ā_b = mean over heads of (∂score/∂A_b ⊙ A_b)⁺;  R ← R + Ā_b · R

The relevance of each image patch is the pooled token's row of R (the class token for `pool_type='tok'`, the
mean of the patch rows for `'avg'`), upsampled bilinearly to the view.

open_clip's blocks call `nn.MultiheadAttention` with `need_weights=False`, so the attention probabilities are
captured by a forward hook on each block's `attn` that recomputes the same attention explicitly (in-projection,
softmax(QKᵀ/√d), out-projection) and returns that output in its place: the probabilities are then part of the
graph and their gradients can be taken. The hook checks that its output equals open_clip's and refuses an
attention variant it does not reproduce. Other image towers (ModifiedResNet, timm) are refused.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

from artlens.pipeline.models.load import ModelError
from artlens.probes.interpret.names import METHOD_CITATIONS
from artlens.probes.interpret.view import ClipScore

CITATION = METHOD_CITATIONS["rollout"]

#: pool_type of the ViT → the relevance row(s) of the token that becomes the image embedding.
POOLED_ROW: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tok": lambda r: r[0, 1:],
    "avg": lambda r: r[1:, 1:].mean(dim=0),
}


class RolloutUnsupported(ModelError):
    """The image tower is not an open_clip ViT whose attention the rollout can capture."""


def check_vit(visual: torch.nn.Module) -> list[torch.nn.MultiheadAttention]:
    """The attention modules of every block, or RolloutUnsupported saying why not."""
    if not isinstance(visual, VisionTransformer):
        raise RolloutUnsupported(f"attention rollout needs a ViT image tower (open_clip VisionTransformer); this "
                                 f"model's is {type(visual).__name__}: use `method` ig", argument="method")
    if getattr(visual, "attn_pool", None) is not None or visual.pool_type not in POOLED_ROW:
        raise RolloutUnsupported(f"attention rollout supports ViTs pooled by {sorted(POOLED_ROW)} without an "
                                 "attentional pooler; use `method` ig", argument="method")
    blocks = list(visual.transformer.resblocks)
    odd = [type(b).__name__ for b in blocks if not isinstance(b, ResidualAttentionBlock)
           or not isinstance(b.attn, torch.nn.MultiheadAttention) or not b.attn._qkv_same_embed_dim]
    if odd:
        raise RolloutUnsupported(f"attention rollout reproduces open_clip's standard ViT block only, not {odd[0]}; "
                                 "use `method` ig", argument="method")
    return [b.attn for b in blocks]


def explicit_attention(mha: torch.nn.MultiheadAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention of x (B, N, D) as nn.MultiheadAttention computes it: (probabilities (B, h, N, N), output)."""
    b, n, d = x.shape
    heads = mha.num_heads
    q, k, v = (t.reshape(b, n, heads, d // heads).transpose(1, 2)
               for t in F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1))
    probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1)
    return probs, mha.out_proj((probs @ v).transpose(1, 2).reshape(b, n, d))


@contextmanager
def captured_attention(modules: list[torch.nn.MultiheadAttention]) -> Iterator[list[torch.Tensor]]:
    """Hooks on each attention module; yields the list their probabilities (B, h, N, N) are appended to."""
    maps: list[torch.Tensor] = []

    def hook(module, args, kwargs, output):
        query, key, value = (args[i] if i < len(args) else kwargs.get(name)
                             for i, name in enumerate(("query", "key", "value")))
        if key is not query or value is not query or kwargs.get("attn_mask") is not None:
            raise RolloutUnsupported("attention rollout handles unmasked self-attention only")
        x = query if module.batch_first else query.transpose(0, 1)
        probs, out = explicit_attention(module, x)
        out = out if module.batch_first else out.transpose(0, 1)
        tolerance = 1e-3 if out.dtype == torch.float32 else 5e-2
        if not torch.allclose(out, output[0], atol=tolerance, rtol=tolerance):
            raise RolloutUnsupported(f"block {len(maps)}: the re-computed attention differs from open_clip's")
        maps.append(probs)
        return out, None

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in modules]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def rollout(scorer: ClipScore, view: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Relevance of each view pixel (H, W) to the score of one view (3, H, W), and that score."""
    visual = scorer.loaded.model.visual
    modules = check_vit(visual)
    with captured_attention(modules) as maps:
        score = scorer(view[None])[0]
    grads = torch.autograd.grad(score, maps)
    tokens = maps[0].shape[-1]
    relevance = torch.eye(tokens, device=maps[0].device)
    for probs, grad in zip(maps, grads):
        cam = (grad * probs).float().clamp(min=0).mean(dim=1)[0]       # heads averaged, (N, N)
        relevance = relevance + cam @ relevance
    patches = POOLED_ROW[visual.pool_type](relevance)
    grid_h, grid_w = visual.grid_size
    if patches.numel() != grid_h * grid_w:
        raise RolloutUnsupported(f"{tokens} tokens do not match the {grid_h}x{grid_w} patch grid plus a class token")
    grid = patches.reshape(1, 1, grid_h, grid_w)
    heat = F.interpolate(grid, size=tuple(view.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    return heat.detach().cpu(), float(score.detach())
