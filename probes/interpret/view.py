"""The region of an image the model actually sees, in [0, 1] pixel space, and a differentiable image–text score.

open_clip's preprocess is Resize → CenterCrop → RGB → ToTensor → Normalize. Everything up to Normalize gives
the *view*: a (3, H, W) float tensor in [0, 1] at the model's input resolution. Saliency maps and guidance
work on the view, so a heatmap lines up with the crop the model scores, and a guided image can be saved as
it is. Normalisation happens inside `ClipScore`, so gradients are with respect to view pixels.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from artlens.errors import MissingInput, UserError
from artlens.pipeline.imaging.decode import ImageRejected, decode_image
from artlens.pipeline.models.load import LoadedModel, ModelError
from artlens.pipeline.shards.sources import IMAGE_SUFFIXES
from artlens.pipeline.texts import encode_texts


@dataclass(frozen=True)
class SourceImage:
    path: str
    sha256: str
    image: Image.Image            # upright RGB, as decoded by pipeline/imaging/decode.py


def read_image(path: str | Path) -> SourceImage:
    """Decode one image file (EXIF, odd modes, alpha on white); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"image {path} does not exist (or is not a file)")
    data = path.read_bytes()
    try:
        image = decode_image(data)
    except ImageRejected as exc:
        raise ImageRejected(f"image {path}: {exc}", argument=exc.arguments) from None
    return SourceImage(str(path), hashlib.sha256(data).hexdigest(), image)


def image_paths(specs: list[str]) -> list[Path]:
    """`images` values: files, or folders whose images (by suffix, sorted) are taken."""
    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise MissingInput(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


class ModelView:
    """The model's preprocess split at Normalize: PIL image → view in [0, 1]; view → model input."""

    def __init__(self, preprocess: object):
        steps = list(getattr(preprocess, "transforms", []))
        norms = [s for s in steps if isinstance(s, T.Normalize)]
        if len(norms) != 1:
            raise ModelError(f"expected open_clip's preprocess with one Normalize step, got {preprocess!r}")
        self.to_view = T.Compose([s for s in steps if not isinstance(s, T.Normalize)])
        self.mean = torch.tensor(norms[0].mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(norms[0].std, dtype=torch.float32).view(1, 3, 1, 1)

    def view(self, image: Image.Image) -> torch.Tensor:
        """(3, H, W) float32 in [0, 1]: the resized, center-cropped region the model sees."""
        return self.to_view(image).float()

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean.to(pixels.device)) / self.std.to(pixels.device)


def to_numpy_image(pixels: torch.Tensor) -> np.ndarray:
    """(3, H, W) view in [0, 1] → (H, W, 3) float64 array, for figures, PNGs and SSIM."""
    return pixels.detach().clamp(0, 1).permute(1, 2, 0).cpu().double().numpy()


class ClipScore(torch.nn.Module):
    """view pixels (B, 3, H, W) in [0, 1] → cosine of the normalised image embedding with one text, (B,)."""

    def __init__(self, loaded: LoadedModel, text: str):
        super().__init__()
        if not text.strip():
            raise UserError("text must not be empty", argument="text")
        self.loaded = loaded
        self.view = ModelView(loaded.preprocess)
        self.text = text
        self.text_embedding = torch.from_numpy(encode_texts(loaded, [text])[0]).to(loaded.device)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        inputs = self.view.normalise(pixels.to(self.loaded.device)).to(self.loaded.dtype)
        features = F.normalize(self.loaded.model.encode_image(inputs).float(), dim=-1)
        return features @ self.text_embedding

    def score(self, pixels: torch.Tensor) -> float:
        """The score of one view (3, H, W), without gradients."""
        with torch.no_grad():
            return float(self(pixels[None])[0])
