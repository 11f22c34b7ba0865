"""A half-precision image tower's layer norms run in its own precision (pipeline/models/halfnorm.py)."""
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import LayerNorm, LayerNormFp32

from artlens.pipeline.models.halfnorm import half_layer_norms
from artlens.pipeline.models.load import load_model
from artlens.pipeline.models.spec import ModelSpec
from tests.conftest import TINY_MODEL


def _tiny(precision: str) -> torch.nn.Module:
    open_clip.add_model_config(TINY_MODEL)
    torch.manual_seed(0)
    model = open_clip.create_model("artlens-tiny-vit", precision=precision).eval()
    torch.manual_seed(2)  # trained norms' weights are not the initial ones and zeros (exact in any precision)
    with torch.no_grad():
        for norm in model.visual.modules():
            if isinstance(norm, torch.nn.LayerNorm):
                norm.weight.copy_(1 + 0.1 * torch.randn_like(norm.weight))
                norm.bias.copy_(0.1 * torch.randn_like(norm.bias))
    return model


def test_half_layer_norms_replace_every_float32_norm_and_keep_the_embedding():
    reference, low = _tiny("fp32"), _tiny("bf16")
    norms = [m for m in low.visual.modules() if type(m) is LayerNormFp32]
    assert len(norms) == 2 * 2 + 2  # two per block (2 blocks), ln_pre, ln_post
    pixels = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        before = low.encode_image(pixels.bfloat16()).float()
        assert half_layer_norms(low.visual, torch.bfloat16) == len(norms)
        after = low.encode_image(pixels.bfloat16()).float()
        exact = reference.encode_image(pixels)
    assert not any(type(m) is LayerNormFp32 for m in low.visual.modules())
    assert all(type(m) is LayerNorm and m.weight.dtype == torch.bfloat16 for m in norms)
    assert not torch.equal(before, after)  # the norms did change how the tower computes
    # bf16 has 8 bits of mantissa: the float32 norms' output was rounded to it anyway
    assert F.cosine_similarity(after, exact).min() > 0.999
    assert F.cosine_similarity(after, before).min() > 0.999
    assert half_layer_norms(low.visual, torch.bfloat16) == 0  # nothing left to change


def test_a_float32_model_on_the_cpu_keeps_its_norms():
    loaded = load_model(ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu"))
    assert loaded.dtype == torch.float32
    assert all(m.weight.dtype == torch.float32 for m in loaded.model.visual.modules() if isinstance(m, torch.nn.LayerNorm))
