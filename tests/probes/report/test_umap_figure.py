"""The report's PCA scatter gains a UMAP panel beside it when a result has `details["umap"]` (separability
with umap=True), in the same colours per set; results without it keep the single PCA panel."""
import numpy as np
from matplotlib.colors import to_hex

from artlens.probes.report.figures import PALETTE, pca_figures


def _points(rng, n, sets):
    return {"x": rng.normal(size=n).tolist(), "y": rng.normal(size=n).tolist(), "set": sets}


def _result(umap: bool) -> dict:
    rng = np.random.default_rng(0)
    sets = ["ai"] * 30 + ["human"] * 30
    details = {"pca": _points(rng, 60, sets), "explained_variance_ratio": [0.2, 0.1]}
    if umap:
        details["umap"] = _points(rng, 60, sets[::-1])        # the sets listed in another order
    return {"probe": "separability", "details": details}


def _colours(ax) -> dict:
    return {t.get_text().split(" (")[0]: to_hex(h.get_facecolor()[0])
            for h, t in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts())}


def test_umap_panel_beside_the_pca_in_the_same_colours():
    [(suffix, caption, fig)] = pca_figures(_result(umap=True))
    assert suffix == "pca" and "UMAP" in caption
    pca_ax, umap_ax = fig.axes
    assert pca_ax.get_xlabel().startswith("PC1 (20.0%") and umap_ax.get_xlabel() == "UMAP 1"
    assert _colours(pca_ax) == _colours(umap_ax) == {"ai": PALETTE[0].lower(), "human": PALETTE[1].lower()}
    assert sum(len(c.get_offsets()) for c in umap_ax.collections) == 60


def test_without_umap_the_pca_figure_is_one_panel():
    [(_, caption, fig)] = pca_figures(_result(umap=False))
    assert len(fig.axes) == 1 and "UMAP" not in caption
