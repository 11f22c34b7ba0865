"""The explorer's JSON API over real HTTP (a uvicorn server of the app, the tiny model's store): every route,
404s and 400s as JSON, images as JPEGs of the asked size, neighbours by key, words and an uploaded image, the
filter applied as one expression, and nothing written to the store but the map."""
from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import numpy as np
import pytest
from PIL import Image

import imagefactory as f
from explorerkit import HOSTILE, explorer_store, get, get_json, served  # noqa: F401 - fixtures


def post_image(server, table: str, data: bytes, **params):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    url = f"{server.url}/api/tables/{table}/neighbors?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_tables_lists_each_table_with_its_images_and_columns(served):
    tables = {t["name"]: t for t in get_json(served, "/api/tables")}
    assert set(tables) == {"paintings", "nga", "paintings_deformed"}
    p, nga = tables["paintings"], tables["nga"]
    assert (p["rows"], p["kind"], p["has_images"], p["image_url_column"]) == (21, "image", True, None) and p["dim"] > 0
    assert p["pretrained"].startswith("random") and "style" in p["columns"] and "embedding" not in p["columns"]
    assert (nga["has_images"], nga["image_url_column"], nga["rows"]) == (False, "link", 12)


def test_a_row_is_its_metadata_without_the_embedding(served):
    row = get_json(served, "/api/tables/paintings/rows/p0_02")
    assert row["key"] == "p0_02" and row["style"] == HOSTILE and "embedding" not in row
    assert row["title"] == f"painting 2 {HOSTILE}"


@pytest.mark.parametrize("path", ["/api/tables/nope", "/api/tables/nope/rows/p0_00", "/api/tables/paintings/rows/nope",
                                  "/api/tables/nope/map", "/api/tables/paintings/image/nope",
                                  "/api/tables/nope/image/p0_00", "/api/tables/paintings/neighbors?key=nope",
                                  "/api/results/nope", "/api/results/nope/rows", "/api/nothing"])
def test_unknown_tables_keys_results_and_routes_are_404_with_a_json_error(served, path):
    code, headers, body = get(served, path)
    assert code == 404, (path, code, body[:300])
    assert headers["content-type"].startswith("application/json") and json.loads(body)["error"]


def test_image_routes_take_no_paths(served, explorer_store):
    """A key that looks like a path is a key: no row has it, so 404, and no file of the machine is served."""
    for key in ("../../catalog.json", "/etc/passwd", "..%2F..%2Fcatalog.json", str(explorer_store / "catalog.json")):
        code, _, body = get(served, f"/api/tables/paintings/image/{urllib.parse.quote(key, safe='')}")
        assert code == 404 and b"root:" not in body and b"artlens-catalog" not in body, key


@pytest.mark.parametrize("size", [64, 200])
def test_image_bytes_are_a_jpeg_of_the_asked_size(served, size):
    code, headers, body = get(served, "/api/tables/paintings/image/p0_03", size=size)
    assert code == 200 and headers["content-type"] == "image/jpeg" and "max-age" in headers["cache-control"]
    image = Image.open(io.BytesIO(body))
    assert image.format == "JPEG" and max(image.size) == size


def test_image_without_size_is_the_original(served):
    code, headers, body = get(served, "/api/tables/paintings/image/p0_03")
    assert code == 200 and Image.open(io.BytesIO(body)).size == (224, 150)


def test_bad_sizes_and_k_are_400(served):
    for path, params in (("/api/tables/paintings/image/p0_03", {"size": "huge"}),
                         ("/api/tables/paintings/image/p0_03", {"size": "100000"}),
                         ("/api/tables/paintings/neighbors", {"key": "p0_01", "k": "0"}),
                         ("/api/tables/paintings/neighbors", {}),
                         ("/api/tables/paintings/neighbors", {"key": "p0_01", "text": "both"})):
        body = get_json(served, path, status=400, **params)
        assert body["error"]


def test_a_table_without_images_redirects_to_its_url_or_names_it(served):
    assert get_json(served, "/api/tables/nga/image/nga3", format="json") == {"url": "http://127.0.0.1:9/nga/3.jpg"}
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                              {"redirect_request": lambda *a, **k: None}))
    with pytest.raises(urllib.error.HTTPError) as raised:
        opener.open(f"{served.url}/api/tables/nga/image/nga3", timeout=30)
    assert raised.value.code == 307 and raised.value.headers["location"] == "http://127.0.0.1:9/nga/3.jpg"
    assert get(served, "/api/tables/nga/image/nope")[0] == 404


def test_neighbours_by_key_exclude_the_key_and_respect_where(served):
    rows = get_json(served, "/api/tables/paintings/neighbors", key="p0_00", k=5)
    assert len(rows) == 5 and "p0_00" not in [r["key"] for r in rows]
    assert all("score" in r and "embedding" not in r for r in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    filtered = get_json(served, "/api/tables/paintings/neighbors", key="p0_00", k=20, where="style = 'baroque'")
    assert filtered and {r["style"] for r in filtered} == {"baroque"}


@pytest.mark.parametrize("where", ["style = ", "1; DROP TABLE paintings", "true) OR (true",
                                   "key IN (SELECT * FROM read_csv('/etc/passwd'))", "no_such_column = 1"])
def test_a_bad_where_is_400_with_the_message(served, where):
    body = get_json(served, "/api/tables/paintings/neighbors", status=400, key="p0_00", where=where)
    assert "where" in body["error"]
    body = get_json(served, "/api/tables/paintings/map", status=400, where=where)
    assert "where" in body["error"]


def test_neighbours_of_words_use_the_tables_own_model(served):
    rows = get_json(served, "/api/tables/paintings/neighbors", text="a stormy sea", k=4)
    assert len(rows) == 4 and all(-1.0001 <= r["score"] <= 1.0001 for r in rows)


def test_neighbours_of_words_on_a_table_without_a_model_say_why(served):
    body = get_json(served, "/api/tables/nga/neighbors", status=400, text="a portrait")
    assert body["error"]


def test_neighbours_of_an_uploaded_image(served):
    code, rows = post_image(served, "paintings", f.jpeg(200, 150, color=(40, 0, 0)), k=3)
    assert code == 200 and len(rows) == 3 and all("score" in r for r in rows)
    code, body = post_image(served, "paintings", b"not an image at all", k=3)
    assert code == 400 and body["error"]


def test_the_map_is_compact_arrays_with_colours(served, explorer_store):
    from artlens import store
    from artlens.explorer.api import unpack

    data = get_json(served, "/api/tables/paintings/map", color="style")
    x, y, codes = unpack(data, "x"), unpack(data, "y"), unpack(data, "codes")
    assert data["n"] == 21 == len(data["keys"]) == len(x) == len(y) == len(codes)
    assert data["arrays"] == {"x": "float32", "y": "float32", "codes": "uint8"}
    with store.open(explorer_store) as s:   # the stored map's coordinates, exactly, in the payload's key order
        kept = s.map("paintings", "pca").to_pydict()
    where = {k: i for i, k in enumerate(kept["key"])}
    assert np.array_equal(x, np.float32([kept["x"][where[k]] for k in data["keys"]]))
    assert np.array_equal(y, np.float32([kept["y"][where[k]] for k in data["keys"]]))
    assert data["color_kind"] == "category" and set(data["categories"]) == {"cubism", "baroque", HOSTILE}
    rows = {r["key"]: r["style"] for r in get_json(served, "/api/tables/paintings/neighbors", key="p0_00", k=20)}
    rows["p0_00"] = "cubism"
    assert all(data["categories"][c] == rows[k] for k, c in zip(data["keys"], codes))
    numbers = get_json(served, "/api/tables/paintings/map", color="year")
    assert numbers["color_kind"] == "number" and numbers["range"] == [1600.0, 1600.0 + 17 * 20]
    years = unpack(numbers, "values")
    assert years.min() == 1600 and years.max() == 1600 + 17 * 20 and len(years) == 21
    filtered = get_json(served, "/api/tables/paintings/map", where="style = 'cubism'")
    assert filtered["n"] == 7 and set(filtered["keys"]) < set(data["keys"]) and len(unpack(filtered, "x")) == 7
    assert get_json(served, "/api/tables/paintings/map", status=400, color="embedding")["error"]
    assert get_json(served, "/api/tables/paintings/map", status=400, color="no_such")["error"]
    assert "umap" in get_json(served, "/api/tables/paintings/map", status=400, method="tsne")["error"]


def test_results_and_a_confusion_cells_rows(served):
    results = get_json(served, "/api/results")
    (linear,) = [r for r in results if r["probe"] == "linear"]
    assert linear["n"] == 21 and "accuracy" in linear["metrics"]
    detail = get_json(served, f"/api/results/{linear['name']}")
    rows = detail["rows"]
    assert rows["kind"] == "classification" and set(rows["labels"]) == {"cubism", "baroque", HOSTILE}
    assert sum(map(sum, rows["confusion"])) == 21
    assert set(rows["typical"]) == set(rows["labels"])
    i = rows["labels"].index(HOSTILE)
    for j, predicted in enumerate(rows["labels"]):
        cell = get_json(served, f"/api/results/{linear['name']}/rows", label=HOSTILE, predicted=predicted)
        assert cell["n"] == rows["confusion"][i][j] == len(cell["rows"])
        assert all(r["label"] == HOSTILE and r["predicted"] == predicted for r in cell["rows"])


def test_no_request_writes_the_store_but_the_map(served, explorer_store):
    def files():
        return {p.relative_to(explorer_store): p.stat().st_mtime_ns for p in explorer_store.rglob("*")
                if p.is_file() and "maps" not in p.parts and "thumbnails" not in p.parts}

    before = files()
    for path in ("/api/tables", "/api/tables/paintings/rows/p0_01", "/api/results", "/api/tables/paintings/map"):
        get(served, path)
    get(served, "/api/tables/paintings/neighbors", key="p0_01", where="style = 'baroque'")
    assert files() == before
