"""`extract --ray` with 1 vs 2 Ray workers on this machine, and the Llama-3-70B projection.

Measured here, in one run (one local Ray instance on 127.0.0.1 with as many CPUs as the machine):
- wall time of `extract_ray` (bundled all-MiniLM-L6-v2, GoEmotions test texts, one CPU and one
  torch thread per worker) with 1 and 2 workers, alternating 1, 2, 2, 1, ... so both see the same
  neighbours; each pass is a fresh run id, and the passes include each worker's model load;
  an unsharded in-process `extract_run` on all the machine's threads is timed beside them;
- bytes per stored activation of one of those runs (files in the lake / values);
- Parquet encoding rate of the activation files (process CPU time to rewrite the run's files
  with the lake's options: raw float32 MB per CPU-second);
- tokens per stimulus of the default causal-LM prompt (`{text}\\nThe emotion expressed here is`)
  over ALL of GoEmotions (train + dev + test), with the bundled SmolLM2 tokenizer (a Llama-family
  49k BPE; Llama-3's own 128k tokenizer is not available offline).
Then arithmetic, every assumption printed with it: storage, GPU-hours and cluster size for
Llama-3-70B (80 layers x 28,672) over the 54,263 GoEmotions stimuli.

    PYTHONPATH=. python benchmarks/ray_extract.py --data ../shared/data --limit 512 --reps 2
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emolake.extract.distributed import extract_ray  # noqa: E402
from emolake.extract.models.loading import load_model  # noqa: E402
from emolake.extract.prompts import CAUSAL_TEMPLATE  # noqa: E402
from emolake.extract.run import ExtractSettings, extract_run  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402
from emolake.warehouse.tables import TABLES  # noqa: E402

# Llama-3-70B (Meta's config.json): 80 layers, hidden 8192, intermediate 28672, 70.6e9 parameters.
LLAMA_LAYERS, LLAMA_D_FF, LLAMA_PARAMS = 80, 28_672, 70.6e9
GOEMOTIONS_STIMULI = 54_263
H100_BF16_DENSE = 989e12  # FLOP/s, H100 SXM, dense (no sparsity)
ASSUMED_MFU = 0.40  # of one GPU's peak for the layers it runs (large-batch prefill of ~30-token prompts)
GPUS_PER_REPLICA = 2  # 141 GB of bf16 weights: two 80 GB H100s per model (device_map='auto' runs them in turn)
PROFILE_STATS, PROFILE_EMOTIONS, PROFILE_BYTES = 3, 28, 8  # count, sum, sum of squares as float64, 28 emotions


def ingest(lake: Path, data: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "cli.py"), "--lake", str(lake), "init"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, str(REPO / "cli.py"), "--lake", str(lake), "ingest", "goemotions",
                    str(data / "goemotions")], check=True, stdout=subprocess.DEVNULL)


def settings(run_id: str, limit: int, batch: int, chunk: int) -> ExtractSettings:
    return ExtractSettings(dataset="goemotions", split="test", limit=limit, run_id=run_id, batch_size=batch,
                           chunk_size=chunk)


def run_bytes(lake: Lake, run_id: str) -> tuple[int, list[Path]]:
    paths = lake.live_paths("activations", f"run_id={run_id}")
    return sum(p.stat().st_size for p in paths), paths


def encode_rate(paths: list[Path], scratch: Path) -> float:
    """Raw float32 MB per process CPU-second to write these activation files with the lake's options."""
    raw, cpu = 0, 0.0
    for i, path in enumerate(paths):
        table = pq.read_table(path)
        raw += 4 * len(table.column("activation").combine_chunks().values)
        start = time.process_time()
        pq.write_table(table, scratch / f"{i}.parquet", **TABLES["activations"].write_options)
        cpu += time.process_time() - start
    return raw / 1e6 / cpu


def tokens_per_stimulus(data: Path) -> tuple[float, int]:
    from transformers import AutoTokenizer

    from emolake.extract.models.gguf import bundled_smollm2_path

    gguf = bundled_smollm2_path()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    texts = []
    for split in ("train", "dev", "test"):
        texts += [line.split("\t")[0] for line in (data / "goemotions" / f"{split}.tsv").read_text().splitlines()]
    prompts = [CAUSAL_TEMPLATE.replace("{text}", t) for t in texts]
    lengths = [len(ids) for ids in tok(prompts)["input_ids"]]
    return sum(lengths) / len(lengths), len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=512, help="GoEmotions test stimuli per pass")
    parser.add_argument("--reps", type=int, default=2, help="pairs of passes (1 worker, 2 workers), alternating")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=64, help="stimuli per chunk (shard granularity)")
    args = parser.parse_args()
    import ray
    import torch

    cpus = os.cpu_count() or 1
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"{cpus} CPUs, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, ray {ray.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lake"
        ingest(root, args.data)
        lake = Lake(root)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        try:
            extract_ray(lake, settings("warm-up", 16, args.batch_size, 8), workers=2)  # worker processes, imports
            times: dict[int, list[float]] = {1: [], 2: []}
            order = [w for rep in range(args.reps) for w in ((1, 2) if rep % 2 == 0 else (2, 1))]
            for i, workers in enumerate(order):
                start = time.perf_counter()
                summary = extract_ray(lake, settings(f"w{workers}-{i}", args.limit, args.batch_size, args.chunk_size),
                                      workers=workers)
                times[workers].append(time.perf_counter() - start)
                print(f"pass {i}: {workers} worker(s) {times[workers][-1]:.1f} s, {summary['status']}, "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            ray.shutdown()
        start = time.perf_counter()
        torch.set_num_threads(cpus)
        unsharded = extract_run(lake, settings("in-process", args.limit, args.batch_size, args.chunk_size),
                                loaded=None)
        in_process = time.perf_counter() - start
        n_values = unsharded["n_stimuli"] * unsharded["n_neurons"]
        size, paths = run_bytes(lake, "in-process")
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        rate = encode_rate(paths, scratch)
    tokens, n_texts = tokens_per_stimulus(args.data)

    best1, best2 = min(times[1]), min(times[2])
    ratios = [a / b for a, b in zip(times[1], times[2])]
    print("\n| workers | passes (s) | best (s) | prompts/s (best) |\n| ---: | --- | ---: | ---: |")
    for w in (1, 2):
        print(f"| {w} | {', '.join(f'{t:.1f}' for t in times[w])} | {min(times[w]):.1f} | {args.limit / min(times[w]):.1f} |")
    print(f"| in-process, unsharded, {cpus} threads | {in_process:.1f} | | {args.limit / in_process:.1f} |")
    print(f"\nspeed-up 2 vs 1 workers: best {best1 / best2:.2f}x, pairs {', '.join(f'{r:.2f}x' for r in ratios)}")
    bpv = size / n_values
    print(f"bytes per value: {bpv:.3f} ({size:,} B for {n_values:,} values)")
    print(f"Parquet encoding: {rate:.0f} MB of float32 per CPU-second")
    print(f"tokens per stimulus (SmolLM2 tokenizer, causal template, {n_texts:,} GoEmotions texts): {tokens:.2f}")

    # --- projection: Llama-3-70B over all of GoEmotions, read-out 'last' (one vector per stimulus)
    neurons = LLAMA_LAYERS * LLAMA_D_FF
    values = neurons * GOEMOTIONS_STIMULI
    full = values * bpv
    profiles = PROFILE_EMOTIONS * PROFILE_STATS * neurons * PROFILE_BYTES
    flops = 2 * LLAMA_PARAMS * tokens * GOEMOTIONS_STIMULI
    gpu_s = flops / (ASSUMED_MFU * H100_BF16_DENSE) * GPUS_PER_REPLICA  # both GPUs of a replica are held
    encode_core_s = values * 4 / 1e6 / rate
    print(f"\nLlama-3-70B: {neurons:,} neurons x {GOEMOTIONS_STIMULI:,} stimuli = {values:.3e} values")
    print(f"storage, full vectors at {bpv:.2f} B/value: {full / 1e9:.0f} GB "
          f"({neurons * bpv / 1e6:.1f} MB per stimulus)")
    print(f"storage, --store profiles ({PROFILE_EMOTIONS} x {PROFILE_STATS} x float64 per neuron, uncompressed): "
          f"{profiles / 1e9:.2f} GB ({full / profiles:.0f}x less)")
    print(f"FLOPs 2 x {LLAMA_PARAMS:.3g} x {tokens:.1f} tokens x {GOEMOTIONS_STIMULI:,} = {flops:.3e}; at "
          f"{ASSUMED_MFU:.0%} MFU of {H100_BF16_DENSE / 1e12:.0f} TFLOP/s with {GPUS_PER_REPLICA} H100 per replica: "
          f"{gpu_s / 3600:.2f} GPU-hours")
    print(f"Parquet encoding of {values * 4 / 1e9:.0f} GB of float32 at {rate:.0f} MB/CPU-s: "
          f"{encode_core_s / 3600:.1f} core-hours, {math.ceil(encode_core_s / 86400)} core(s) for a day")
    replicas = max(1, math.ceil(gpu_s / GPUS_PER_REPLICA / 86400))
    print(f"a day's run: {replicas} replica(s) = {replicas * GPUS_PER_REPLICA} H100 and "
          f"{math.ceil(encode_core_s / 86400)} encoding core(s); one 8-GPU node (4 replicas, --workers 4 "
          f"--num-gpus 2) takes {gpu_s / 8 / 3600 * 60:.0f} min of GPU time and "
          f"{encode_core_s / 3600 / 4:.1f} h of encoding on 4 cores (one per worker)")


if __name__ == "__main__":
    main()
