"""A folder of images with human ratings in a CSV, end to end through the CLI: `artlens shards --metadata
ratings.csv` → `artlens extract` (tiny model, offline) → `artlens probe regression --target rating` works,
because the CSV's numeric column arrives in the store as DOUBLE (it used to arrive as VARCHAR and be
refused as "not numeric", which forcing the column to text still shows)."""
from __future__ import annotations

import json

import pytest

import imagefactory as imf
from artlens import store
from artlens.cli.main import main
from conftest import TINY_MODEL

N = 36
RATINGS = [round(1 + 4 * i / (N - 1), 2) if i % 3 else 1 + i % 5 for i in range(N)]  # floats, whole numbers
FAST = ("--n-boot", "50", "--folds", "3", "--inner-folds", "2", "--alphas", "1.0")


def extract_args(shards, store_dir):
    return ["extract", "--shards", str(shards), "--store", str(store_dir), "--table", "art", "--model", TINY_MODEL,
            "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]


def make_collection(root):
    images = root / "paintings"
    lines = ["file_name,rating,votes,artist"]
    for i in range(N):
        sub = images / f"artist{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        shade = 7 * i
        (sub / f"p{i:02d}.jpg").write_bytes(imf.jpeg(48, 40, color=(shade, 255 - shade, (3 * shade) % 256)))
        rating = RATINGS[i]
        votes = "" if i % 7 == 0 else str(10 + i)
        lines.append(f"artist{i % 4}/p{i:02d}.jpg,{rating},{votes},\"Artist, No. {i % 4}\"")
    (root / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return images, root / "ratings.csv"


@pytest.mark.slow  # about 10 s: an extraction of 36 images and a probe
def test_a_csv_rating_is_regressed_on_after_shards_and_extract(tmp_path, capsys):
    images, ratings = make_collection(tmp_path)
    shards, st = tmp_path / "shards", tmp_path / "store"
    assert main(["shards", str(images), "--out", str(shards), "--metadata", str(ratings), "--shard-size", "10",
                 "--no-progress"]) == 0
    assert main(extract_args(shards, st)) == 0
    with store.open(st) as s:
        types = {r["column_name"]: r["column_type"] for r in s.sql("DESCRIBE art").to_pylist()}
        counts = s.sql("SELECT count(*), count(votes), count(rating) FROM art").to_pylist()[0]
    assert (types["rating"], types["votes"], types["artist"]) == ("DOUBLE", "BIGINT", "VARCHAR")
    assert list(counts.values()) == [N, N - len(range(0, N, 7)), N]  # empty cells are NULL
    capsys.readouterr()
    out = tmp_path / "regression.json"
    assert main(["probe", "regression", "--store", str(st), "--table", "art", "--target", "rating",
                 *FAST, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["probe"], result["n"], result["details"]["missing_target"]) == ("regression", N, 0)
    assert -1 <= result["metrics"]["spearman_rho"]["value"] <= 1
    assert sorted(result["details"]["scatter"]["y_true"]) == sorted(RATINGS)  # the CSV's values, as numbers


def test_the_same_rating_forced_to_text_is_refused_as_not_numeric(tmp_path, capsys):
    images, ratings = make_collection(tmp_path)
    shards, st = tmp_path / "shards", tmp_path / "store"
    assert main(["shards", str(images), "--out", str(shards), "--metadata", str(ratings),
                 "--metadata-types", "rating=str", "--no-progress"]) == 0
    assert main(extract_args(shards, st)) == 0
    capsys.readouterr()
    assert main(["probe", "regression", "--store", str(st), "--table", "art", "--target", "rating",
                 *FAST]) == 2
    assert "regression target 'rating' is not numeric" in capsys.readouterr().err
