"""A painting's deformed versions and saliency maps through the explorer's API over real HTTP: the extras of a
painting (cosines of each deformed embedding to the clean one, as numpy computes them from the store), the
contact sheet drawn on demand pixel-equal to the one `artlens perturb --save-examples` wrote, the saliency PNG,
404s and 400s as JSON, and nothing written to the store."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from explorerkit import (DEFORMATIONS, DEFORMED, SALIENT_KEY, SALIENT_TEXT, SHEET_KEY, explorer_store,  # noqa: F401
                         get, get_json, served)


def test_a_paintings_extras_list_its_deformations_with_their_cosines(served, explorer_store):
    from artlens import store

    data = get_json(served, "/api/tables/paintings/extras", key="p0_04")
    (deformed,) = data["deformations"]
    assert (deformed["table"], deformed["suite"], deformed["sheet_error"]) == (DEFORMED, "default", None)
    assert deformed["sheet"] == f"/api/tables/{DEFORMED}/sheet?key=p0_04"
    rows = deformed["rows"]
    assert [(r["deformation"], r["severity"]) for r in rows] == [(d, s) for d in sorted(DEFORMATIONS)
                                                                for s in range(1, 6)]
    with store.open(explorer_store) as s:
        clean = s.sql("SELECT embedding FROM paintings WHERE key = 'p0_04'").column("embedding").to_pylist()[0]
        found = s.sql(f"SELECT deformation, severity, ssim, embedding FROM {DEFORMED} WHERE key = 'p0_04'").to_pylist()
    clean = np.asarray(clean, np.float64)
    expected = {(r["deformation"], r["severity"]): (float(np.dot(r["embedding"], clean) / np.linalg.norm(r["embedding"])
                                                          / np.linalg.norm(clean)), r["ssim"]) for r in found}
    for r in rows:
        cosine, ssim = expected[(r["deformation"], r["severity"])]
        assert r["cosine"] == pytest.approx(cosine, abs=1e-5) and r["ssim"] == pytest.approx(ssim)
    assert data["saliency"] == []     # only p0_02 has a map
    assert min(r["cosine"] for r in rows) < 0.9999  # the deformations moved the embedding


def test_the_sheet_drawn_on_demand_is_the_one_perturb_saved(served, explorer_store):
    from artlens.pipeline.perturb.contactsheet import sheet_name
    from artlens.store.layout import StoreLayout

    saved = StoreLayout.at(explorer_store).examples_dir(DEFORMED) / sheet_name(SHEET_KEY)
    code, headers, body = get(served, f"/api/tables/{DEFORMED}/sheet", key=SHEET_KEY)
    assert code == 200 and headers["content-type"] == "image/png"
    drawn, kept = Image.open(io.BytesIO(body)), Image.open(saved)
    assert drawn.size == kept.size and np.array_equal(np.asarray(drawn.convert("RGB")), np.asarray(kept.convert("RGB")))
    other = np.asarray(Image.open(io.BytesIO(get(served, f"/api/tables/{DEFORMED}/sheet", key="p1_03")[2])))
    assert other.shape == np.asarray(drawn).shape and not np.array_equal(other, np.asarray(drawn))


def test_the_saliency_map_of_a_painting(served, explorer_store):
    data = get_json(served, "/api/tables/paintings/extras", key=SALIENT_KEY)
    (found,) = data["saliency"]
    assert (found["method"], found["text"]) == ("rollout", SALIENT_TEXT) and -1 <= found["score"] <= 1
    code, headers, body = get(served, found["url"])
    assert code == 200 and headers["content-type"] == "image/png"
    (sidecar,) = (explorer_store / "results" / "saliency" / "paintings").glob("*.json")
    assert body == sidecar.with_suffix(".png").read_bytes()
    assert json.loads(sidecar.read_text())["score"] == found["score"]


@pytest.mark.parametrize("path, params, status", [
    ("/api/tables/nope/extras", {"key": "p0_00"}, 404),
    ("/api/tables/paintings/extras", {"key": "nope"}, 404),
    ("/api/tables/paintings/extras", {}, 400),
    (f"/api/tables/{DEFORMED}/sheet", {"key": "nope"}, 404),
    ("/api/tables/paintings/sheet", {"key": "p0_00"}, 404),        # not a deformation table
    ("/api/tables/paintings/saliency", {"key": SALIENT_KEY, "n": "1"}, 404),
    ("/api/tables/paintings/saliency", {"key": "p0_00", "n": "0"}, 404),
    ("/api/tables/paintings/saliency", {"key": SALIENT_KEY, "n": "first"}, 400),
])
def test_unknown_tables_keys_and_maps_are_json_errors(served, path, params, status):
    body = get_json(served, path, status=status, **params)
    assert body["error"]


def test_a_suite_no_bundled_one_reproduces_gets_no_sheet():
    from artlens.api import deformation_suite
    from artlens.pipeline.perturb.recorded import UnknownSuite
    from artlens.pipeline.perturb.suite import load_suite
    from artlens.store.catalog import TableEntry

    suite = load_suite("default").select(["blur"])
    entry = TableEntry(name="d", kind="deformation", parent="t", preprocess=f"{suite.describe()}, then: x")
    assert deformation_suite(entry) == suite
    changed = entry.preprocess.replace(suite.digest[:12], "0" * 12)
    with pytest.raises(UnknownSuite, match="no bundled suite") as raised:
        deformation_suite(TableEntry(name="d", kind="deformation", parent="t", preprocess=changed))
    assert raised.value.suite_name == "default"


def test_extras_and_sheets_write_nothing_to_the_store(served, explorer_store):
    def files():
        return {p.relative_to(explorer_store): p.stat().st_mtime_ns for p in explorer_store.rglob("*")
                if p.is_file() and "thumbnails" not in p.parts}

    before = files()
    get(served, "/api/tables/paintings/extras", key=SALIENT_KEY)
    get(served, f"/api/tables/{DEFORMED}/sheet", key="p0_01")
    get(served, "/api/tables/paintings/saliency", key=SALIENT_KEY, n=0)
    assert files() == before
