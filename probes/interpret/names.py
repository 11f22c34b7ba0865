"""Names and citations of the saliency methods, IG baselines and guidance optimisers: plain data, light to
import, so `artlens --help` shows them without loading torch. The registries that implement them
(`saliency.METHODS`, `ig.BASELINES`, `guide.OPTIMIZERS`) use these keys and texts."""
from __future__ import annotations

#: --method → citation (in --help, the PNG title, the sidecar and the docs).
METHOD_CITATIONS = {
    "ig": 'Integrated Gradients: Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks" '
          "(captum)",
    "rollout": 'gradient-weighted attention rollout: Chefer, Gur & Wolf 2021, "Generic Attention-model '
               'Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers"',
}

#: --baseline (ig) → what the path integral starts from.
BASELINE_TEXTS = {
    "black": "all zeros, the paper's choice for image networks",
    "blur": "the view under a Gaussian blur of sigma = side/16 (credits detail and edges rather than brightness)",
}

#: --optimizer (guide) → how the pixels are updated.
OPTIMIZER_TEXTS = {
    "sign": "sign-gradient ascent x <- clamp(x + lr * sign(grad score), 0, 1) (iterative fast gradient sign: "
            "Goodfellow, Shlens & Szegedy 2015; Kurakin, Goodfellow & Bengio 2017)",
    "adam": "Adam (Kingma & Ba 2015) on -score, clamped to [0, 1] after each step",
}


def choices_help(texts: dict[str, str], default: str) -> str:
    return "; ".join(f"{name}: {text}" for name, text in texts.items()) + f" (default {default})"
