"""`make bench`: extraction throughput. Prints a table and writes JSON.

In one run: a synthetic corpus of JPEG paintings (benchmarks/jpeg_corpus.py, 512–1024 px), then for each model
  1. forward-only ceiling: the model on uint8 batches already on the device (normalisation included),
     beside plain open_clip's image tower (`.to(dtype)`, at the bench's batch and at 1,024) and the share of
     the matrix rate (a large matrix product in the model's precision, timed in the same run) each reaches
     at the tower's GFLOP per image (PyTorch's FlopCounterMode),
  2. end to end with `--decode gpu` (nvJPEG in the main process's decode threads) — only on CUDA,
  3. end to end with `--decode cpu`: Pillow decode and resize in DataLoader workers, clip-retrieval's way.
  4. the whole command, as a user waits for it: `artlens extract` run as a subprocess (from a checkpoint
     written by plain open_clip, so the weights load as real ones do) over the corpus and over one shard,
     timed from start to exit beside a bare `python -c "import torch"`, with where its start-up went (the
     summary's start-up line: before the run, models, first batch).
End-to-end rates are reported twice: over the whole run (worker spawn and the first batch's decode
included) and at steady state (from the first batch to the last commit), which is what a long run sees.
Before a model's measured end-to-end runs, one unmeasured extraction of a few shards (`--warmup-shards`)
lets the CUDA caching allocator, cuBLAS and the JPEG decoders reach their working sizes, as the forward-only
measurement warms up first: on a 20,000-image corpus each end-to-end run lasts seconds, and the first one
in a process had decoder calls twice as long as the later ones (docs/performance.md).

    python -m benchmarks.extraction --n 20000 --models ViT-B-32,ViT-L-14,ViT-L-14-336,ViT-B-16  # on a CUDA machine
    python -m benchmarks.extraction --small                                   # CPU, tiny model, a few images
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.jpeg_corpus import CorpusSpec, write_bench_corpus
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.imaging.gpu.stage import claim_hardware_queues
from artlens.pipeline.extract.run import decode_device, prepared_batches, run_extract, workers_for
from artlens.pipeline.models.load import LoadedModel, device_default, load_model
from artlens.pipeline.shards.spec import expand_shards

PLAIN_BATCH = 1024  # the plain tower is also timed at this batch on CUDA (the ceiling was measured there)
TINY = str(Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "models" / "artlens-tiny-vit.json")


def _rate(step, batch_size: int, seconds: float, device: torch.device) -> dict:
    """Images per second of `step()` (one batch) repeated for `seconds`, after three warm-up calls."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        step()
    sync()
    start, batches = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or batches < 3:
        step()
        batches += 1
        if batches % 4 == 0:
            sync()
    sync()
    elapsed = time.perf_counter() - start
    return {"img_s": round(batches * batch_size / elapsed, 1), "batches": batches, "seconds": round(elapsed, 2),
            "batch_size": batch_size}


def forward_only(model: LoadedModel, batch_size: int, seconds: float) -> dict:
    """Images per second of `embed_on_device` on a uint8 batch that is already on the device."""
    pixels = torch.randint(0, 256, (batch_size, 3, *_input_size(model)), dtype=torch.uint8, device=model.device)
    return _rate(lambda: model.embed_on_device(pixels), batch_size, seconds, model.device)


def plain_tower(name: str, device: torch.device, dtype: torch.dtype, batch_sizes: list[int],
                seconds: float) -> dict:
    """Plain open_clip's image tower as a user times it: built in float32, `.to(dtype)` as a whole (so its
    layer norms run in that precision too), `visual(x)` on normalised input already on the device, under
    `torch.inference_mode()`. The fastest of `batch_sizes` is the ceiling artlens's rates are read against."""
    import open_clip

    if name.endswith(".json"):
        open_clip.add_model_config(name)
        name = Path(name).stem
    torch.manual_seed(0)
    tower = open_clip.create_model(name, device=device).visual.to(dtype).eval()  # random weights: same speed
    size = tower.image_size if isinstance(tower.image_size, (tuple, list)) else (tower.image_size,) * 2
    runs = []
    with torch.inference_mode():
        for batch in batch_sizes:  # each batch's input is freed before the next one's is made
            runs.append(_rate(functools.partial(tower, torch.randn(batch, 3, *size, device=device, dtype=dtype)),
                              batch, seconds, device))
    return {**max(runs, key=lambda r: r["img_s"]), "runs": runs}


def image_gflop(model: LoadedModel) -> float:
    """GFLOP of one image through the image tower (matrix products and attention, counted by PyTorch's
    FlopCounterMode with MultiheadAttention's fused fast path off, so its products are seen)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(2, 3, *_input_size(model), dtype=model.dtype, device=model.device)
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model.model.encode_image(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return round(counter.get_total_flops() / 2 / 1e9, 2)


@functools.lru_cache(maxsize=None)
def matrix_rate(device: torch.device, dtype: torch.dtype, seconds: float = 2.0) -> dict:
    """TFLOP/s of a large square matrix product in `dtype`: the machine's ceiling a model's rate is a share of
    (8192² on CUDA; 1024² in float32 on a CPU)."""
    n, dtype = (8192, dtype) if device.type == "cuda" else (1024, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    rate = _rate(lambda: a @ b, 1, seconds, device)
    return {"tflop_s": round(rate["img_s"] * 2 * n ** 3 / 1e12, 1), "n": n, "dtype": str(dtype).split(".")[-1]}


def _input_size(model: LoadedModel) -> tuple[int, int]:
    size = model.model.visual.image_size
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def end_to_end(model: LoadedModel, corpus: Path, store: Path, decode: str, batch_size: int,
               workers: int | None, decode_threads: int = 2, jpeg_decoder: str = "auto",
               shards: int | None = None) -> dict:
    """`artlens extract` of the corpus (or of its first `shards` shards) into a fresh store."""
    shutil.rmtree(store, ignore_errors=True)
    only = tuple(expand_shards(str(corpus))[:shards]) if shards else ()
    cfg = ExtractConfig(shards=str(corpus), store=str(store), table="bench", batch_size=batch_size,
                        workers=workers, decode=decode, decode_threads=decode_threads, jpeg_decoder=jpeg_decoder,
                        only=only, progress=False)
    summary = run_extract(cfg, loaded=model)
    steady = summary.images / max(summary.elapsed_s - summary.startup_s, 1e-9)
    shutil.rmtree(store, ignore_errors=True)
    return {"img_s": round(summary.images_per_s, 1), "steady_img_s": round(steady, 1),
            "images": summary.images, "failures": summary.failures, "gpu_decoded": summary.gpu_decoded,
            "seconds": round(summary.elapsed_s, 2), "startup_s": round(summary.startup_s, 2),
            "workers": workers_for(cfg, decode == "gpu"), "decode_threads": decode_threads,
            "gpu_decoded_share": round(summary.gpu_decoded / max(summary.images, 1), 3)}


def import_torch_s() -> float:
    """Seconds of a bare `python -c "import torch"`, start to exit: the floor of any command's start-up."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return round(time.perf_counter() - start, 2)


def plain_checkpoint(name: str, work: Path) -> Path:
    """A checkpoint of `name` as plain open_clip writes one (seeded random init, torch.save of the state dict)."""
    import open_clip

    path = work / f"{Path(name).stem}.checkpoint.pt"
    if not path.exists():
        if name.endswith(".json"):
            open_clip.add_model_config(name)
        torch.manual_seed(0)
        work.mkdir(parents=True, exist_ok=True)
        torch.save(open_clip.create_model(Path(name).stem if name.endswith(".json") else name).state_dict(), path)
    return path


_STARTUP = re.compile(r"^start-up: (.*)$", re.M)
_ELAPSED = re.compile(r"img/s, ([0-9.]+) s elapsed")


def whole_command(name: str, checkpoint: Path, shards: str, store: Path, device: str,
                  workers: int | None) -> dict:
    """`artlens extract` in a fresh process, start to exit, and where its time went: the summary's start-up
    phases, the rest of the run after the first batch, and what is left (writing the summary, exit)."""
    shutil.rmtree(store, ignore_errors=True)
    cmd = [sys.executable, "-m", "artlens", "extract", "--shards", shards, "--store", str(store), "--table", "bench",
           "--model", name, "--pretrained", str(checkpoint), "--device", device, "--no-progress",
           *(["--workers", str(workers)] if workers is not None else [])]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    shutil.rmtree(store, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    phases = {what: float(secs) for what, secs in
              re.findall(r"([a-z ]+) ([0-9.]+) s", _STARTUP.search(done.stdout).group(1))}
    phases = {what.strip(): secs for what, secs in phases.items()}
    elapsed = float(_ELAPSED.search(done.stdout).group(1))
    images = int(done.stdout.split(" images embedded", 1)[0].rsplit(" ", 1)[-1])
    known = sum(phases.values()) - phases.get("first batch", 0.0) + elapsed
    return {"wall_s": round(wall, 2), "images": images, "startup": phases,
            "startup_to_first_batch_s": round(sum(phases.values()), 2),
            "run_after_first_batch_s": round(elapsed - phases.get("first batch", 0.0), 2),
            "after_the_run_s": round(max(0.0, wall - known), 2), "command": " ".join(cmd[1:])}


def decode_only(model: LoadedModel, corpus: Path, decode: str, batch_size: int, workers: int | None,
                decode_threads: int = 2, jpeg_decoder: str = "auto") -> dict:
    """The input side alone: shards → pixels on the device, no model (where the time goes)."""
    cfg = ExtractConfig(shards=str(corpus), store="-", table="bench", batch_size=batch_size, workers=workers,
                        decode=decode, decode_threads=decode_threads, jpeg_decoder=jpeg_decoder, progress=False)
    gpu = decode_device(cfg, [model])
    start, first, images = time.perf_counter(), None, 0
    for batch in prepared_batches(cfg, expand_shards(str(corpus)), [model.plan], model.device, gpu):
        first = first or time.perf_counter()
        if batch.pixels is not None:
            batch.pixels[0].to(model.device, non_blocking=True)
            images += len(batch.rows)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    end = time.perf_counter()
    return {"img_s": round(images / (end - start), 1), "steady_img_s": round(images / (end - first), 1),
            "images": images, "workers": workers_for(cfg, gpu is not None)}


def ensure_corpus(path: Path, spec: CorpusSpec, processes: int) -> float:
    """Build the corpus unless `path` already holds one made from the same spec; seconds spent."""
    manifest = path / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("source") == f"artlens-bench-corpus({spec})":
        return 0.0
    shutil.rmtree(path, ignore_errors=True)
    start = time.perf_counter()
    write_bench_corpus(str(path), spec, processes=processes, progress=False)
    return time.perf_counter() - start


def bench_model(name: str, pretrained: str, corpus: Path, work: Path, device: str, batch_size: int | None,
                workers: int | None, seconds: float, threads: list[int], decoders: list[str],
                warmup_shards: int = 2, whole: bool = True) -> dict:
    model = load_model(ModelSpec(model=name, pretrained=pretrained, precision="auto", device=device))
    batch = batch_size or device_default(model.device, "batch_size")
    row = {"model": Path(name).stem if name.endswith(".json") else name, "device": str(model.device),
           "precision": model.precision, "batch_size": batch,
           "forward_only": forward_only(model, batch, seconds), "gflop_per_image": image_gflop(model),
           "matrix_rate": matrix_rate(model.device, model.dtype),
           "plain_tower": plain_tower(name, model.device, model.dtype,
                                      sorted({batch, PLAIN_BATCH}) if model.device.type == "cuda" else [batch],
                                      seconds)}
    decodes = ("gpu", "cpu") if model.device.type == "cuda" else ("cpu",)
    for decode in decodes:
        variants = [(t, d) for d in decoders for t in threads] if decode == "gpu" else [(threads[0], "auto")]
        only = [{**decode_only(model, corpus, decode, batch, workers, threads[0], d), "jpeg_decoder": d}
                for d in dict.fromkeys(d for _, d in variants)]
        row[f"decode_only_{decode}"] = max(only, key=lambda r: r["steady_img_s"])
        if warmup_shards:
            warm = end_to_end(model, corpus, work / "store", decode, batch, workers, *variants[0], warmup_shards)
            row[f"warmup_{decode}_decode"] = {k: warm[k] for k in ("images", "seconds")}
        runs = [{**end_to_end(model, corpus, work / "store", decode, batch, workers, t, d), "jpeg_decoder": d}
                for t, d in variants]
        row[f"e2e_{decode}_decode"] = max(runs, key=lambda r: r["steady_img_s"])
        if len(runs) > 1:
            row[f"decode_only_{decode}_variants"] = only
            row[f"e2e_{decode}_decode_variants"] = [
                {k: r[k] for k in ("jpeg_decoder", "decode_threads", "workers", "steady_img_s", "gpu_decoded_share")}
                for r in runs]
    if whole:
        checkpoint = plain_checkpoint(name, work)
        device_name = str(model.device)
        row["whole_command"] = {
            "corpus": whole_command(name, checkpoint, str(corpus), work / "store", device_name, workers),
            "one_shard": whole_command(name, checkpoint, expand_shards(str(corpus))[0], work / "store",
                                       device_name, workers)}
    ceiling, plain = row["forward_only"]["img_s"], row["plain_tower"]["img_s"]
    best = row.get("e2e_gpu_decode", row["e2e_cpu_decode"])
    matrix = row["matrix_rate"]["tflop_s"] * 1000 / row["gflop_per_image"]  # img/s at the matrix rate
    row["matrix_share"] = {what: round(rate / matrix, 3) for what, rate in
                           (("plain_tower", plain), ("forward_only", ceiling), ("e2e", best["steady_img_s"]))}
    row["ratios"] = {
        "e2e_vs_plain_tower": round(best["steady_img_s"] / plain, 3),
        "forward_only_vs_plain_tower": round(ceiling / plain, 3),
        "e2e_vs_forward_only": round(best["steady_img_s"] / ceiling, 3),
        "e2e_vs_forward_only_whole_run": round(best["img_s"] / ceiling, 3),
        "gpu_vs_cpu_decode": (round(row["e2e_gpu_decode"]["steady_img_s"] / row["e2e_cpu_decode"]["steady_img_s"], 2)
                              if "e2e_gpu_decode" in row else None),
    }
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return row


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
            "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda_device_max_connections"] = os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS", "8 (CUDA's default)")
    return info


def _print_head(head: str) -> None:
    print(head)
    print("-" * len(head))


def print_table(result: dict) -> None:
    spec = result["corpus"]
    print(f"\n{spec['n']:,} JPEGs, longer side {spec['min_side']}–{spec['max_side']} px, "
          f"mean {result['corpus_mean_kib']:.0f} KiB; {result['machine'].get('gpu', 'CPU')}, "
          f"{result['machine']['cpus']} CPUs")
    head = (f"{'model':<22} {'prec':<5} {'batch':>5} {'forward-only':>12} {'GPU dec only':>12} {'e2e GPU dec':>11} "
            f"{'CPU dec only':>12} {'e2e CPU dec':>11} {'e2e/fwd':>7} {'GPU/CPU':>7}")
    _print_head(head)
    for r in result["results"]:
        gpu = r.get("e2e_gpu_decode", {}).get("steady_img_s", "")
        gpu_only = r.get("decode_only_gpu", {}).get("steady_img_s", "")
        ratio = r["ratios"]["gpu_vs_cpu_decode"]
        print(f"{r['model']:<22} {r['precision']:<5} {r['batch_size']:>5} {r['forward_only']['img_s']:>12,.0f} "
              f"{gpu_only if gpu_only == '' else f'{gpu_only:,.0f}':>12} {gpu if gpu == '' else f'{gpu:,.0f}':>11} "
              f"{r['decode_only_cpu']['steady_img_s']:>12,.0f} {r['e2e_cpu_decode']['steady_img_s']:>11,.0f} "
              f"{r['ratios']['e2e_vs_forward_only']:>7.2f} {'' if ratio is None else f'{ratio:.2f}':>7}")
    print("img/s; end-to-end at steady state (whole-run rates and startup seconds are in the JSON)")
    print(f"\nagainst plain open_clip's image tower (`.to(dtype)`, best batch) and the matrix rate "
          f"({result['results'][0]['matrix_rate']['tflop_s']:,.1f} TFLOP/s, "
          f"{result['results'][0]['matrix_rate']['dtype']} {result['results'][0]['matrix_rate']['n']}²)")
    head = (f"{'model':<22} {'GFLOP/img':>9} {'plain tower':>11} {'at batch':>8} {'fwd/plain':>9} {'e2e/plain':>9} "
            f"{'share: plain':>12} {'fwd':>5} {'e2e':>5}")
    _print_head(head)
    for r in result["results"]:
        share = r["matrix_share"]
        print(f"{r['model']:<22} {r['gflop_per_image']:>9.1f} {r['plain_tower']['img_s']:>11,.0f} "
              f"{r['plain_tower']['batch_size']:>8} {r['ratios']['forward_only_vs_plain_tower']:>9.2f} "
              f"{r['ratios']['e2e_vs_plain_tower']:>9.2f} {share['plain_tower']:>12.0%} {share['forward_only']:>5.0%} "
              f"{share['e2e']:>5.0%}")
    if any("whole_command" in r for r in result["results"]):
        print(f"\nthe whole command (artlens extract in a fresh process, start to exit; a bare "
              f"`python -c \"import torch\"`: {result['import_torch_s']:.1f} s)")
        for r in result["results"]:
            for what, w in r.get("whole_command", {}).items():
                phases = ", ".join(f"{k} {v:.1f}" for k, v in w["startup"].items())
                print(f"  {r['model']:<22} {what.replace('_', ' '):<9} {w['images']:>7,} images {w['wall_s']:>6.1f} s"
                      f"  [start-up: {phases}; rest of the run {w['run_after_first_batch_s']:.1f}; "
                      f"after it {w['after_the_run_s']:.1f}]")


def run(a: argparse.Namespace) -> dict:
    claim_hardware_queues()  # before the first model starts CUDA, as `artlens extract` does
    spec = CorpusSpec(n=a.n, shard_size=a.shard_size, min_side=a.min_side, max_side=a.max_side,
                      bases=min(240, a.n))
    corpus, work = Path(a.corpus), Path(a.work)
    corpus_s = ensure_corpus(corpus, spec, a.processes or os.cpu_count() or 1)
    sizes = [p.stat().st_size for p in corpus.glob("*.tar")]
    threads = [int(t) for t in str(a.decode_threads).split(",")]
    results = [bench_model(m, a.pretrained, corpus, work, a.device, a.batch_size, a.workers, a.seconds, threads,
                           a.jpeg_decoders.split(","), a.warmup_shards, a.whole_command)
               for m in a.models.split(",")]
    return {"corpus": spec.__dict__, "corpus_build_s": round(corpus_s, 1),
            "import_torch_s": import_torch_s() if a.whole_command else None,
            "corpus_mean_kib": sum(sizes) / max(spec.n, 1) / 1024, "machine": machine(), "results": results,
            "command": "python -m benchmarks.extraction " + " ".join(a.argv)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.extraction", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000, help="corpus size (images)")
    p.add_argument("--shard-size", type=int, default=500)
    p.add_argument("--min-side", type=int, default=512)
    p.add_argument("--max-side", type=int, default=1024)
    p.add_argument("--models", default="ViT-B-32,ViT-L-14,ViT-L-14-336,ViT-B-16", help="comma-separated open_clip names or configs")
    p.add_argument("--pretrained", default="random", help="weights (random: no download; speed is the same)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, help="default: the device's (512 on CUDA, 64 on CPU)")
    p.add_argument("--workers", type=int, help="decode workers (default: CPU cores - 1)")
    p.add_argument("--decode-threads", default="2",
                   help="threads feeding nvJPEG; a list (2,4,8) runs each and reports the best")
    p.add_argument("--jpeg-decoders", default="auto",
                   help="GPU JPEG decoders to compare (auto, torchvision, nvimgcodec); the best is reported")
    p.add_argument("--processes", type=int, help="processes making the corpus (default: all cores)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each forward-only measurement")
    p.add_argument("--warmup-shards", type=int, default=2,
                   help="shards extracted, unmeasured, before a model's end-to-end runs (0: none)")
    p.add_argument("--no-whole-command", dest="whole_command", action="store_false",
                   help="leave out the whole `artlens extract` command timed in a fresh process")
    p.add_argument("--corpus", default="bench-out/corpus", help="kept and reused when the spec is the same")
    p.add_argument("--work", default="bench-out/work", help="scratch stores (deleted afterwards)")
    p.add_argument("--out", default="bench-out/bench.json")
    p.add_argument("--small", action="store_true",
                   help="CPU-sized run: 96 images of 256–384 px, the tiny test model, 1 s forward-only")
    argv = list(argv) if argv is not None else __import__("sys").argv[1:]
    a = p.parse_args(argv)
    a.argv = argv
    if a.small:
        a.n, a.min_side, a.max_side, a.shard_size, a.models, a.seconds = 96, 256, 384, 24, TINY, 1.0
        a.workers = 2 if a.workers is None else a.workers
    result = run(a)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
