"""Tests for artlens.pipeline.demo: the procedurally drawn demo corpus."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from artlens.pipeline.demo.paintings import INK, PALETTES, PAPER, STYLES, SUBJECTS, iter_paintings, render_painting

SMALL = (160, 128)


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=float)


def _hf_energy(im: Image.Image) -> float:
    """Mean absolute horizontal pixel difference: high for dots/strokes, low for soft washes."""
    return float(np.abs(np.diff(_arr(im), axis=1)).mean())


def _mad(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_arr(a) - _arr(b)).mean())


@pytest.mark.parametrize("style", sorted(STYLES))
def test_same_arguments_give_identical_pixels(style):
    a = render_painting(style, "landscape", "warm", 11)
    b = render_painting(style, "landscape", "warm", 11)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("style", sorted(STYLES))
def test_different_seeds_differ(style):
    a = render_painting(style, "seascape", "cool", 1)
    b = render_painting(style, "seascape", "cool", 2)
    assert a.tobytes() != b.tobytes()
    assert _mad(a, b) > 1.0


@pytest.mark.parametrize("style,subject,palette", [
    *((s, "portrait", "earth") for s in STYLES),
    *(("pointillist", s, "pastel") for s in SUBJECTS),
    *(("geometric", "still-life", p) for p in PALETTES),
])
def test_every_registry_entry_renders_rgb_of_requested_size(style, subject, palette):
    for size in (SMALL, (97, 211)):
        im = render_painting(style, subject, palette, 5, size)
        assert isinstance(im, Image.Image)
        assert im.mode == "RGB"
        assert im.size == size
        assert _arr(im).std() > 3.0  # not a blank canvas


def test_default_size():
    assert render_painting("wash", "interior", "vivid", 0).size == (384, 320)


@pytest.mark.parametrize("which,registry", [(0, STYLES), (1, SUBJECTS), (2, PALETTES)])
def test_unknown_name_raises_keyerror_listing_choices(which, registry):
    args = ["wash", "landscape", "warm"]
    args[which] = "no-such-thing"
    with pytest.raises(KeyError) as exc:
        render_painting(*args, seed=0, size=SMALL)
    message = str(exc.value)
    assert "no-such-thing" in message
    for name in registry:
        assert name in message


def test_registries_are_big_enough():
    assert len(STYLES) >= 4 and len(SUBJECTS) >= 4 and len(PALETTES) >= 4
    for name, colours in PALETTES.items():
        assert len(colours) >= 6, name
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours), name


def test_iter_paintings_covers_everything_with_unique_safe_names():
    items = list(iter_paintings(64, size=SMALL))
    assert len(items) == 64
    names = [name for name, _, _ in items]
    assert len(set(names)) == 64
    assert all("." not in n and "/" not in n and " " not in n and n for n in names)
    labels = [lab for _, _, lab in items]
    assert {lab["style"] for lab in labels} == set(STYLES)
    assert {lab["subject"] for lab in labels} == set(SUBJECTS)
    assert {lab["palette"] for lab in labels} == set(PALETTES)
    for _, im, lab in items:
        assert set(lab) == {"style", "subject", "palette", "seed"}
        assert isinstance(lab["seed"], int)
        assert im.mode == "RGB"
    assert len({im.size for _, im, _ in items}) > 1, "sizes should vary a little"


def test_iter_paintings_is_deterministic_and_matches_render_painting():
    a = list(iter_paintings(6, seed=3, size=SMALL))
    b = list(iter_paintings(6, seed=3, size=SMALL))
    assert [(n, lab, im.tobytes()) for n, im, lab in a] == [(n, lab, im.tobytes()) for n, im, lab in b]
    name, im, lab = a[4]
    again = render_painting(lab["style"], lab["subject"], lab["palette"], lab["seed"], im.size)
    assert again.tobytes() == im.tobytes()
    other = [lab for _, _, lab in iter_paintings(6, seed=4, size=SMALL)]
    assert other != [lab for _, _, lab in a]


def test_iter_paintings_cycles_all_combinations():
    n = len(STYLES) * len(SUBJECTS) * len(PALETTES)
    combos = [(lab["style"], lab["subject"], lab["palette"]) for _, _, lab in iter_paintings(n, size=(32, 32))]
    assert set(combos) == set(itertools.product(STYLES, SUBJECTS, PALETTES))


@pytest.mark.parametrize("a,b", list(itertools.combinations(sorted(STYLES), 2)))
def test_styles_are_visibly_different(a, b):
    assert _mad(render_painting(a, "portrait", "warm", 9), render_painting(b, "portrait", "warm", 9)) > 8.0


@pytest.mark.parametrize("a,b", list(itertools.combinations(sorted(SUBJECTS), 2)))
def test_subjects_are_visibly_different(a, b):
    assert _mad(render_painting("impasto", a, "cool", 9), render_painting("impasto", b, "cool", 9)) > 8.0


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
@pytest.mark.parametrize("palette", sorted(PALETTES))
def test_wash_has_far_less_high_frequency_energy_than_pointillist(subject, palette):
    wash = _hf_energy(render_painting("wash", subject, palette, 4))
    dots = _hf_energy(render_painting("pointillist", subject, palette, 4))
    strokes = _hf_energy(render_painting("impasto", subject, palette, 4))
    assert wash < 0.2 * dots
    assert wash < 0.3 * strokes


@pytest.mark.parametrize("palette", sorted(PALETTES))
def test_geometric_is_flat_hard_edged_blocks(palette):
    a = np.asarray(render_painting("geometric", "interior", palette, 6))
    colours = {tuple(c) for c in np.unique(a.reshape(-1, 3), axis=0)}
    assert len(colours) <= 16 and INK in colours  # a few flat colours, outlined in ink
    assert (a[:, 1:] == a[:, :-1]).all(axis=-1).mean() > 0.85  # mostly flat runs, no blur ramps
    dots = np.asarray(render_painting("pointillist", "interior", palette, 6))
    assert (dots[:, 1:] == dots[:, :-1]).all(axis=-1).mean() < 0.8


def test_pointillist_leaves_canvas_showing_between_dots():
    a = np.asarray(render_painting("pointillist", "portrait", "vivid", 2))
    bare = (a == np.array(PAPER, np.uint8)).all(axis=-1).mean()
    assert 0.005 < bare < 0.2


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
@pytest.mark.parametrize("palette", ["pastel", "vivid"])
def test_wash_has_no_hard_edges(subject, palette):
    jumps = np.abs(np.diff(_arr(render_painting("wash", subject, palette, 4)), axis=1))
    assert jumps.max() < 40


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_seed_moves_the_composition_shared_by_all_styles(subject):
    """Same seed, different styles: same layout underneath, so closer at low resolution than different seeds."""
    def coarse(style, seed):
        return _arr(render_painting(style, subject, "warm", seed, (192, 160)).resize((12, 10), Image.BOX))

    same = np.mean([np.abs(coarse("pointillist", s) - coarse("impasto", s)).mean() for s in range(4)])
    other = np.mean([np.abs(coarse("pointillist", s) - coarse("impasto", s + 10)).mean() for s in range(4)])
    assert other > 1.15 * same
