"""The model a command runs: an open_clip name or config, its weights, precision, device and seed."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from artlens.errors import UserError
from artlens.pipeline.models.hub import HUB, PREFIX as HUB_PREFIX, is_hub_model

PRECISION_NAMES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelSpec:
    model: str = "ViT-B-32"          # open_clip name, hf-hub:ORG/NAME, or path to an open_clip JSON model config
    pretrained: str = "openai"        # tag, checkpoint path, 'random'; hf-hub models: 'hub' (their own) or hub@COMMIT
    precision: str = "auto"           # auto: fp16 on CUDA, fp32 elsewhere (load.py DEVICE_DEFAULTS)
    device: str = "auto"
    seed: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISION_NAMES + ("auto",):
            raise UserError(f"unknown precision {self.precision!r}; choose from auto, {', '.join(PRECISION_NAMES)}",
                            argument="precision")
        if is_hub_model(self.model) and self.pretrained == DEFAULT_PRETRAINED:
            # an hf-hub model carries its own weights: the default tag (openai) means them
            object.__setattr__(self, "pretrained", HUB)


#: The default `pretrained`; for an hf-hub model it means the repository's own weights (`hub`).
DEFAULT_PRETRAINED = "openai"


def table_slug(text: str) -> str:
    """A model or `pretrained` as part of a table name: `ViT-B-32` → vit_b_32, a path → its file's stem,
    `hf-hub:timm/ViT-B-16-SigLIP` → timm_vit_b_16_siglip (organisation and name)."""
    text = text[len(HUB_PREFIX):] if is_hub_model(text) else text.rsplit("/", 1)[-1].removesuffix(".json")
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def parse_models(text: str, template: ModelSpec) -> tuple[ModelSpec, ...]:
    """`models` "ViT-B-32:openai,ViT-L-14:laion2b_s32b_b82k" → ModelSpecs sharing the other settings.
    An hf-hub model needs no PRETRAINED: `hf-hub:ORG/NAME` (its own weights) or `hf-hub:ORG/NAME:random`."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if is_hub_model(item):
            rest, sep, pretrained = item[len(HUB_PREFIX):].partition(":")
            model, sep, pretrained = HUB_PREFIX + rest, ":", pretrained or HUB
        else:
            model, sep, pretrained = item.partition(":")
        if not sep or not model or not pretrained:
            raise UserError(f"models entry {item!r} is not MODEL:PRETRAINED (e.g. ViT-B-32:openai)", argument="models")
        specs.append(replace(template, model=model, pretrained=pretrained))
    if not specs:
        raise UserError("models names no model", argument="models")
    return tuple(specs)
