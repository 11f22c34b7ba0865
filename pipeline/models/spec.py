"""The model a command runs: an open_clip name or config, its weights, precision, device and seed."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from artlens.errors import UserError

PRECISION_NAMES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelSpec:
    model: str = "ViT-B-32"          # open_clip name, or path to an open_clip JSON model config
    pretrained: str = "openai"        # tag, checkpoint path, or 'random'
    precision: str = "auto"           # auto: fp16 on CUDA, fp32 elsewhere (load.py DEVICE_DEFAULTS)
    device: str = "auto"
    seed: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISION_NAMES + ("auto",):
            raise UserError(f"unknown precision {self.precision!r}; choose from auto, {', '.join(PRECISION_NAMES)}",
                            argument="precision")


def table_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.rsplit("/", 1)[-1].removesuffix(".json").lower()).strip("_")


def parse_models(text: str, template: ModelSpec) -> tuple[ModelSpec, ...]:
    """`models` "ViT-B-32:openai,ViT-L-14:laion2b_s32b_b82k" → ModelSpecs sharing the other settings."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, sep, pretrained = item.partition(":")
        if not sep or not model or not pretrained:
            raise UserError(f"models entry {item!r} is not MODEL:PRETRAINED (e.g. ViT-B-32:openai)", argument="models")
        specs.append(replace(template, model=model, pretrained=pretrained))
    if not specs:
        raise UserError("models names no model", argument="models")
    return tuple(specs)
