"""Start-up: torchvision imported without torch._dynamo, the optional packages a command does not use left out
(artlens/startup.py), and the config read that decides it (pipeline/models/modelconfig.py `packages_needed`).
Each import check runs in a fresh interpreter: what a process has imported cannot be undone."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_MODEL

from artlens import store
from artlens.pipeline.models.modelconfig import packages_needed

ROI = """
import json, sys, torch
torch.manual_seed(0)
x = torch.rand(1, 2, 9, 9)
from torchvision.ops import roi_align
out = roi_align(x, [torch.tensor([[0.5, 1.0, 6.0, 7.5]])], 3, sampling_ratio=2)
print(json.dumps({"dynamo_at_import": DYNAMO, "roi": out.flatten().tolist()}))
"""


def python(code: str, plain: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "ARTLENS_LEAVE_OUT"} | (env or {})
    if plain:
        environ["ARTLENS_PLAIN_IMPORTS"] = "1"
    else:
        environ.pop("ARTLENS_PLAIN_IMPORTS", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300)


def test_torchvision_is_imported_without_dynamo_and_its_ops_still_work():
    code = ("import sys, artlens, torchvision\nDYNAMO = 'torch._dynamo' in sys.modules\n" + ROI +
            "import torch._dynamo\nassert type(torch._dynamo).__name__ == 'module', type(torch._dynamo)\n"
            "assert callable(torch._dynamo.optimize) and callable(torch._dynamo.utils.is_compile_supported)\n")
    lean, plain = python(code), python(code, plain=True)
    assert lean.returncode == 0 and plain.returncode == 0, lean.stderr[-2000:] + plain.stderr[-2000:]
    lean_out, plain_out = json.loads(lean.stdout), json.loads(plain.stdout)
    assert lean_out["dynamo_at_import"] is False      # torchvision came in without torch._dynamo
    assert plain_out["dynamo_at_import"] is True      # and it does pull it in the usual way
    assert lean_out["roi"] == plain_out["roi"] and len(lean_out["roi"]) == 18  # roi_align asked the real one


def test_left_out_packages_cannot_be_imported_here_or_in_child_processes_and_open_clip_still_builds_a_vit():
    code = f"""
import os, subprocess, sys, artlens
left = artlens.startup.leave_out(["timm", "transformers"])
import open_clip
open_clip.add_model_config({TINY_MODEL!r})
model = open_clip.create_model("artlens-tiny-vit")
assert sum(p.numel() for p in model.visual.parameters()) > 0
assert "timm" not in sys.modules and "torch._dynamo" not in sys.modules, sorted(m for m in sys.modules if "timm" in m)
try:
    import timm
    raise SystemExit("timm was imported")
except ModuleNotFoundError as exc:
    assert "left out by artlens" in str(exc), exc
child = subprocess.run([sys.executable, "-c", "import artlens\\ntry:\\n import timm\\nexcept ModuleNotFoundError as e:\\n print('child:', e)"],
                       capture_output=True, text=True)
print(left, os.environ["ARTLENS_LEAVE_OUT"], child.stdout.strip())
"""
    done = python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("['timm', 'transformers'] timm,transformers child: No module named 'timm' (left out")
    plain = python("import artlens\nprint(artlens.startup.leave_out(['timm']))\nimport timm\nprint('timm', timm.__version__)",
                   plain=True)
    assert plain.returncode == 0 and plain.stdout.startswith("[]\ntimm "), plain.stderr[-2000:]


def test_the_packages_a_model_needs_come_from_its_config(tmp_path):
    assert packages_needed("ViT-B-32") == set() and packages_needed("ViT-L-14-336") == set()
    assert packages_needed("ViT-L/14") == set()
    assert packages_needed("convnext_base") == {"timm"}
    assert packages_needed("xlm-roberta-base-ViT-B-32") == {"transformers"}
    assert packages_needed(TINY_MODEL) == set()
    timm_tower = tmp_path / "timm-tower.json"
    timm_tower.write_text(json.dumps({"embed_dim": 8, "vision_cfg": {"timm_model_name": "vit_tiny_patch16_224"},
                                      "text_cfg": {"hf_tokenizer_name": "bert-base-uncased"}}))
    assert packages_needed(str(timm_tower)) == {"timm", "transformers"}
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"{\"vision_cfg\": ")
    for unknown in ("hf-hub:org/model", "no-such-model", str(broken), str(tmp_path / "missing.json")):
        assert packages_needed(unknown) is None, unknown  # not at hand: nothing may be left out


@pytest.mark.slow
def test_extract_leaves_timm_out_and_embeds_exactly_as_with_every_import(tmp_path, tiny_model):
    import torch

    from artlens.pipeline.demo.corpus import SampleConfig, write_sample_corpus

    shards, checkpoint = tmp_path / "shards", tmp_path / "tiny.pt"
    write_sample_corpus(SampleConfig(out=str(shards), n=12, shard_size=6, progress=False))
    torch.save(tiny_model.model.state_dict(), checkpoint)  # a checkpoint as plain open_clip saves one
    args = ["--shards", str(shards), "--table", "t", "--model", TINY_MODEL, "--pretrained", str(checkpoint),
            "--workers", "0", "--no-progress"]
    runs = {}
    for name, plain in (("lean", False), ("plain", True)):
        environ = {**os.environ, "ARTLENS_PLAIN_IMPORTS": "1" if plain else ""}
        environ.pop("ARTLENS_LEAVE_OUT", None)
        runs[name] = subprocess.run([sys.executable, "-X", "importtime", "-m", "artlens", "extract",
                                     "--store", str(tmp_path / name), *args],
                                    capture_output=True, text=True, env=environ, timeout=300)
        assert runs[name].returncode == 0, runs[name].stderr[-3000:]
    imported = {name: {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if "|" in line}
                for name, r in runs.items()}
    # (-X importtime lists a failed import too: `timm` itself is tried, and refused, in the lean run)
    assert "timm.models" not in imported["lean"] and "torch._dynamo" not in imported["lean"]
    assert "open_clip" in imported["lean"]
    assert "timm.models" in imported["plain"]  # it is installed (the dev extra): the lean run left it out
    assert "start-up: before the run " in runs["lean"].stdout and ", first batch " in runs["lean"].stdout

    def rows(name):
        with store.open(tmp_path / name) as s:
            table = s.sql("SELECT key, embedding FROM t")
        return {k: np.asarray(e) for k, e in zip(table["key"].to_pylist(), table["embedding"].to_pylist())}

    lean, plain = rows("lean"), rows("plain")
    assert sorted(lean) == sorted(plain) and len(lean) == 12
    assert all(np.array_equal(lean[k], plain[k]) for k in lean)


def test_in_a_python_session_the_summary_reports_no_process_start_up(tmp_path, extract):
    """`before the run` is a command's start-up; in a Python session the process's age would be misleading."""
    import imagefactory as f
    from conftest import write_tar

    shard = write_tar(tmp_path / "shards" / "00000.tar", [("a.jpg", f.jpeg(32, 24)), ("b.jpg", f.jpeg(20, 30))])
    summary = extract(shard.parent)
    assert summary.images == 2 and set(summary.startup) == {"before the run", "models", "first batch"}
    assert summary.startup["before the run"] is None and summary.startup["models"] >= 0
    line = [x for x in summary.lines() if x.startswith("start-up:")]
    assert line and "before the run" not in line[0] and "first batch" in line[0]


ENDS = """
import atexit, sys
atexit.register(lambda: print("teardown ran"))
from artlens.cli.main import main
sys.argv = ["artlens", *sys.argv[1:]]
sys.exit(main())
"""


def test_extract_ends_its_process_at_once_with_everything_written_and_printed(tmp_path):
    """`artlens extract` ends with os._exit once its summary is out (no interpreter teardown: no atexit
    handler runs), its table complete and its output flushed into a pipe; other commands end as usual."""
    import imagefactory as f
    from conftest import write_tar

    shard = write_tar(tmp_path / "shards" / "00000.tar", [(f"{i}.jpg", f.jpeg(32 + i, 24)) for i in range(5)])
    st = str(tmp_path / "st")
    run = subprocess.run([sys.executable, "-c", ENDS, "extract", "--shards", str(shard), "--store", st,
                          "--table", "t", "--model", TINY_MODEL, "--pretrained", "random", "--workers", "0",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "teardown ran" not in run.stdout and "table t now holds 5 rows" in run.stdout
    with store.open(st) as s:
        assert s.sql("SELECT count(*) AS n FROM t")["n"].to_pylist() == [5]
    listing = subprocess.run([sys.executable, "-c", ENDS, "tables", "--store", st], capture_output=True,
                             text=True, timeout=300)
    assert listing.returncode == 0 and "teardown ran" in listing.stdout and "t" in listing.stdout
