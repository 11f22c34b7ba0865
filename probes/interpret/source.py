"""Which model scores the image–text pairs: a store table's own model and weights (from its catalog entry,
as `artlens neighbors --text` does), or an open_clip model and weights named on the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from artlens.errors import UserError

if TYPE_CHECKING:
    from artlens.pipeline.models.load import LoadedModel


@dataclass(frozen=True)
class ModelSource:
    store: str | None = None
    table: str | None = None
    model: str | None = None          # open_clip name or JSON config path (without a table)
    pretrained: str | None = None     # tag, checkpoint path or 'random' (without a table)
    seed: int = 0
    device: str = "auto"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        by_table = self.store is not None and self.table is not None
        by_spec = self.model is not None and self.pretrained is not None
        if (self.store is None) != (self.table is None):
            raise UserError("give store and table together", argument=("store", "table"))
        if (self.model is None) != (self.pretrained is None):
            raise UserError("give model and pretrained together", argument=("model", "pretrained"))
        if by_table == by_spec:
            raise UserError("choose the model either by `store` DIR `table` T (the table's own model and "
                            "weights) or by `model` M `pretrained` P, not both or neither",
                            argument=("store", "table", "model", "pretrained"))

    @property
    def by_table(self) -> bool:
        return self.table is not None

    def load(self) -> "LoadedModel":
        from artlens import store
        from artlens.pipeline.models.load import load_for_table, load_model
        from artlens.pipeline.models.spec import ModelSpec

        if self.by_table:
            with store.open(self.store) as s:
                entry = s.entry(self.table)
            return load_for_table(entry, self.device, self.cache_dir)
        # fp32 (not ModelSpec's auto): gradients through a half-precision model are too coarse here
        return load_model(ModelSpec(model=self.model, pretrained=self.pretrained, precision="fp32",
                                    device=self.device, seed=self.seed, cache_dir=self.cache_dir))


def describe(loaded: "LoadedModel") -> dict:
    """What a sidecar or result records about the model: catalog label, weights, checksum, device."""
    return {"model": loaded.name, "weights": loaded.weights.label, "weights_sha256": loaded.weights.sha256,
            "device": str(loaded.device)}
