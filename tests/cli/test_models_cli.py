"""`artlens models`: open_clip's models and tags and the hf-hub models of the local cache, marked by whether
their weights are on disk, with no network and no model built."""
import argparse
import json
import time

import open_clip
import pytest

from artlens.cli.main import COMMANDS, main
from artlens.cli.models import models_args, models_run
from hubcache import build_hub_repo

MODEL = "hf-hub:artlens-test/tiny-clip"


def run(capsys, *argv) -> tuple[int, str]:
    """Through `artlens models` once main.py registers it; until then through the module's own parser."""
    if "models" in COMMANDS:
        code = main(["models", *argv])
    else:
        p = argparse.ArgumentParser()
        models_args(p)
        code = models_run(p.parse_args(list(argv)))
    return code, capsys.readouterr().out


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "hf-cache"
    build_hub_repo(root, "artlens-test/tiny-clip")
    build_hub_repo(root, "artlens-test/config-only", weights=None)
    (root / "models--someone--not-open-clip" / "snapshots" / "abc").mkdir(parents=True)   # no open_clip config
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_json_lists_every_tag_and_marks_the_cached_hub_model(cache, capsys):
    start = time.perf_counter()
    code, out = run(capsys, "--format", "json", "--cache-dir", str(cache))
    elapsed = time.perf_counter() - start
    rows = json.loads(out)                                     # one JSON document
    assert code == 0 and elapsed < 5
    by = {(r["model"], r["pretrained"]): r for r in rows}
    assert len(rows) == len(open_clip.list_pretrained()) + 2
    assert by[(MODEL, "hub")]["cached"] is True and by[(MODEL, "hub")]["source"] == "hf-hub"
    assert by[(MODEL, "hub")]["weights"].endswith("open_clip_model.safetensors")
    assert by[("hf-hub:artlens-test/config-only", "hub")]["cached"] is False
    assert by[("ViT-B-32", "openai")] == {"model": "ViT-B-32", "pretrained": "openai", "source": "open_clip",
                                          "cached": False, "weights": ""}
    assert not any(r["model"] == "hf-hub:someone/not-open-clip" for r in rows)


def test_cached_only_table_reads_the_cache_from_the_environment(cache, capsys):
    code, out = run(capsys, "--cached-only")
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].split() == ["model", "pretrained", "source", "cached"]
    assert lines[1].split() == [MODEL, "hub", "hf-hub", "true"]
    assert len(lines) == 3 and "1 with weights on disk" in lines[2]


def test_an_open_clip_tag_in_the_hub_cache_shows_as_cached(cache, capsys):
    """ViT-B-32 openai's weights, where open_clip's pretrained table says the hub keeps them."""
    from open_clip import pretrained as oc_pretrained

    repo = oc_pretrained.get_pretrained_cfg("ViT-B-32", "openai")["hf_hub"].rstrip("/")
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("c" * 40)
    (folder / "snapshots" / ("c" * 40)).mkdir(parents=True)
    (folder / "snapshots" / ("c" * 40) / "open_clip_model.safetensors").write_bytes(b"x")
    code, out = run(capsys, "--format", "json", "--cached-only")
    got = {(r["model"], r["pretrained"]) for r in json.loads(out)}
    assert code == 0 and ("ViT-B-32", "openai") in got and (MODEL, "hub") in got
    assert ("ViT-B-32", "laion2b_s34b_b79k") not in got


def test_an_empty_or_missing_cache_lists_nothing_cached(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nowhere"))
    code, out = run(capsys, "--format", "json", "--cached-only", "--cache-dir", str(tmp_path / "nowhere"))
    assert code == 0 and json.loads(out) == []
