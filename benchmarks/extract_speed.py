"""Extraction speed: capture + write vs the bare forward pass, vs the naive way, vs the machine's peak.

For the bundled all-MiniLM-L6-v2 and a random-weight RoBERTa-base (RobertaConfig() defaults, fed
the MiniLM tokenizer's ids), on real GoEmotions test texts with the default template and the mask
read-out, in one process:

- bare: the batched forward pass of the encoder on the same length-sorted batches, nothing kept;
- emolake: `extract_run` end to end into a fresh lake (select stimuli, tokenize, capture every
  layer into one buffer, write Parquet, manifest), model already loaded;
- naive: batch 1, hooks keep every position of every layer, stack, pick the mask row, append one
  wide row per prompt to a CSV with pandas (the study's way of writing activations);
- FLOPs per prompt (matmuls + attention over the real tokens) against a big float32 matmul's
  measured rate, and bytes per stored activation.

    python benchmarks/extract_speed.py [--n-minilm 512] [--n-roberta 96] [--reps 3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.extract.capture import encode, length_sorted_batches, pad_batch  # noqa: E402
from emolake.extract.hooks import hooked  # noqa: E402
from emolake.extract.models.loading import LoadedModel, load_model  # noqa: E402
from emolake.extract.prompts import DEFAULT_TEMPLATE, fill_template  # noqa: E402
from emolake.extract.run import ExtractSettings, extract_run  # noqa: E402
from emolake.warehouse.database import rebuild_views  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402

BATCH = 32


def goemotions_texts(data: Path, n: int) -> list[str]:
    lines = (data / "goemotions" / "test.tsv").read_text(encoding="utf-8").splitlines()[:n]
    return [line.split("\t")[0] for line in lines]


def matmul_peak_gflops(size: int = 2048, reps: int = 10, one_thread_cpu: bool = False) -> float:
    """GFLOP/s of a big float32 matmul: wall clock on all threads, or CPU time on one thread."""
    threads = torch.get_num_threads()
    if one_thread_cpu:
        torch.set_num_threads(1)
    clock = time.process_time if one_thread_cpu else time.perf_counter
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    start = clock()
    for _ in range(reps):
        torch.matmul(a, b)
    seconds = clock() - start
    torch.set_num_threads(threads)
    return 2 * size**3 * reps / seconds / 1e9


def flops_per_prompt(loaded: LoadedModel, lengths: np.ndarray) -> float:
    """Mean forward FLOPs over real tokens: dense matmuls plus attention scores and mixing."""
    config = loaded.model.config
    h, d_ff, n_layers = config.hidden_size, loaded.d_ff, loaded.n_layers
    dense = 2 * (4 * h * h + 2 * h * d_ff) * n_layers  # per token
    attention = 2 * 2 * h * n_layers  # per token pair (QK^T and AV)
    return float(np.mean(dense * lengths + attention * lengths**2))


def bare_pass(loaded: LoadedModel, encoded, pad_id: int) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in length_sorted_batches(encoded.lengths(), BATCH):
            ids, attention = pad_batch([encoded.ids[i] for i in batch], pad_id, loaded.device)
            loaded.model.base_model(input_ids=ids, attention_mask=attention)
    return time.perf_counter() - start


def paired_overhead(loaded: LoadedModel, encoded, pad_id: int, tmp: Path) -> tuple[float, float, float]:
    """(bare, hooked capture, write) CPU seconds, bare and captured passes alternated batch by batch.

    On a shared machine wall-clock passes measure the neighbours: pairing each batch's bare pass
    with its captured pass (order alternating) cancels load drift, and process CPU time on one
    thread leaves out the time spent descheduled (with two threads, OpenMP workers spin while
    their partner waits for a core, which inflates CPU time by whatever the neighbours do).
    """
    from emolake.extract.capture import capture_batch
    from emolake.extract.store import activation_table, write_activation_file

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lengths = encoded.lengths()
    buffer = torch.empty((len(lengths), loaded.n_layers, loaded.d_ff))  # [n, n_layers, d_ff]
    bare = hooked_s = 0.0
    filled = 0
    for k, batch in enumerate(length_sorted_batches(lengths, BATCH)):
        ids, attention = pad_batch([encoded.ids[i] for i in batch], pad_id, loaded.device)
        index = torch.tensor([encoded.read_index[i] for i in batch])
        out = buffer[filled:filled + len(batch)]
        for bare_turn in ((True, False) if k % 2 == 0 else (False, True)):
            start = time.process_time()
            if bare_turn:
                with torch.inference_mode():
                    loaded.model.base_model(input_ids=ids, attention_mask=attention)
                bare += time.process_time() - start
            else:
                capture_batch(loaded, ids, attention, "mask", index, out)
                hooked_s += time.process_time() - start
        filled += len(batch)
    values = buffer.numpy()
    rows = np.arange(len(lengths))
    start = time.process_time()
    for layer in range(loaded.n_layers):
        table = activation_table([str(i) for i in rows], values[rows, layer])
        write_activation_file(table, tmp / f"paired-{layer}.parquet")
    write_s = time.process_time() - start
    torch.set_num_threads(threads)
    return bare, hooked_s, write_s


def emolake_pass(loaded: LoadedModel, texts: list[str], root: Path) -> tuple[float, Lake, str]:
    lake = Lake(root)
    lake.init()
    n = len(texts)
    with lake.transaction("benchmark") as txn:
        txn.write("stimuli", pa.table({
            "split": ["test"] * n, "stimulus_id": [f"test-{i:05d}" for i in range(n)], "text": texts,
            "emotion": ["joy"] * n, "n_labels": [1] * n, "source_row": list(range(n)),
        }), {"dataset": "bench"})
    rebuild_views(lake)  # as in a lake in use; building the views is not extraction
    start = time.perf_counter()
    summary = extract_run(lake, ExtractSettings(dataset="bench", batch_size=BATCH, position="mask", template=DEFAULT_TEMPLATE),
                          loaded=loaded)
    return time.perf_counter() - start, lake, summary["run_id"]


def naive_pass(loaded: LoadedModel, prompts: list[str], csv_path: Path) -> tuple[float, float]:
    """(wall s on all threads, CPU s on one thread) of the naive way over `prompts` (two passes)."""
    wall = _naive(loaded, prompts, csv_path, time.perf_counter)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu = _naive(loaded, prompts, csv_path.with_suffix(".1.csv"), time.process_time)
    torch.set_num_threads(threads)
    return wall, cpu


def _naive(loaded: LoadedModel, prompts: list[str], csv_path: Path, clock) -> float:
    tok = loaded.tokenizer
    start = clock()
    for i, prompt in enumerate(prompts):
        kept: dict[int, torch.Tensor] = {}
        enc = tok(prompt, return_tensors="pt")
        with torch.inference_mode(), hooked(loaded.model, lambda layer, act: kept.__setitem__(layer, act.clone())):
            loaded.model.base_model(**{k: v for k, v in enc.items() if k != "token_type_ids"})
        every = torch.stack([kept[layer][0] for layer in sorted(kept)])  # [n_layers, pos, d_ff]
        where = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
        row = every[:, where].reshape(1, -1).numpy()  # [1, n_layers * d_ff]
        pd.DataFrame(row).to_csv(csv_path, mode="a", header=i == 0, index=False)
    return clock() - start


def random_roberta_base(folder: Path) -> LoadedModel:
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    from emolake.extract.models.loading import default_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)
    RobertaModel(RobertaConfig(pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_model(str(folder))


def measure(name: str, loaded: LoadedModel, texts: list[str], n_naive: int, peak: float, peak_1: float,
            tmp: Path, reps: int) -> None:
    prompts = fill_template(DEFAULT_TEMPLATE, texts, loaded.tokenizer.mask_token)
    encoded = encode(loaded, prompts, "mask", [str(i) for i in range(len(prompts))])
    pad_id = loaded.tokenizer.pad_token_id
    bare_pass(loaded, encode(loaded, prompts[:BATCH], "mask", [""] * BATCH), pad_id)  # warm up
    bare, ours = [], []
    for rep in range(reps):  # interleaved, best of `reps`: the machine's noise hits both alike
        bare.append(bare_pass(loaded, encoded, pad_id))
        seconds, lake, run_id = emolake_pass(loaded, texts, tmp / f"{name}-lake-{rep}")
        ours.append(seconds)
    paired_bare, paired_hooked, paired_write = paired_overhead(loaded, encoded, pad_id, tmp)
    naive, naive_cpu = naive_pass(loaded, prompts[:n_naive], tmp / f"{name}-naive.csv")
    n = len(prompts)
    bare_rate, ours_rate, naive_rate = n / min(bare), n / min(ours), n_naive / naive
    files = list((lake.root / "activations").glob(f"run_id={run_id}/layer=*/*.parquet"))
    stored = n * loaded.n_layers * loaded.d_ff
    flops = flops_per_prompt(loaded, encoded.lengths())
    print(f"\n## {name}: {loaded.n_layers} layers x {loaded.d_ff} units, {n} prompts "
          f"(mean {encoded.lengths().mean():.1f} tokens), batch {BATCH}")
    print(f"  bare forward pass       {bare_rate:8.1f} prompts/s   (passes: {', '.join(f'{n / t:.1f}' for t in bare)})")
    print(f"  emolake capture + write {ours_rate:8.1f} prompts/s   (passes: {', '.join(f'{n / t:.1f}' for t in ours)})"
          f"   overhead {min(ours) / min(bare) - 1:+.1%} vs bare (best), {np.median(ours) / np.median(bare) - 1:+.1%} (median)")
    print(f"  paired per batch, CPU s on 1 thread: bare {paired_bare:.2f}, with capture hooks {paired_hooked:.2f}, "
          f"writing {paired_write:.2f} -> capture + write overhead "
          f"{(paired_hooked + paired_write) / paired_bare - 1:+.1%} (hooks {paired_hooked / paired_bare - 1:+.1%}, "
          f"write {paired_write / paired_bare:+.1%})")
    print(f"  naive (batch 1, all positions, pandas CSV) {naive_rate:8.1f} prompts/s on {n_naive} prompts"
          f"   emolake is {ours_rate / naive_rate:.1f}x faster")
    ours_cpu_rate = n / (paired_hooked + paired_write)
    print(f"  naive vs emolake, CPU time on 1 thread: {n_naive / naive_cpu:.1f} vs {ours_cpu_rate:.1f} prompts per "
          f"CPU-second: emolake is {ours_cpu_rate / (n_naive / naive_cpu):.1f}x faster")
    print(f"  FLOPs per prompt {flops / 1e9:.3f} GFLOP -> {flops * ours_rate / 1e9:.1f} GFLOP/s = "
          f"{flops * ours_rate / 1e9 / peak:.0%} of the matmul peak (bare pass: {flops * bare_rate / 1e9 / peak:.0%})")
    print(f"  one thread, CPU time: {flops * n / (paired_hooked + paired_write) / 1e9:.1f} GFLOP per CPU-second with "
          f"capture + write = {flops * n / (paired_hooked + paired_write) / 1e9 / peak_1:.0%} of the one-thread matmul "
          f"({peak_1:.1f}); bare {flops * n / paired_bare / 1e9 / peak_1:.0%}")
    print(f"  stored: {sum(p.stat().st_size for p in files) / stored:.3f} bytes per activation "
          f"(CSV: {(tmp / f'{name}-naive.csv').stat().st_size / (n_naive * loaded.n_layers * loaded.d_ff):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-minilm", type=int, default=512)
    parser.add_argument("--n-roberta", type=int, default=96)
    parser.add_argument("--n-naive", type=int, default=32, help="prompts for the (slow) naive way")
    parser.add_argument("--reps", type=int, default=3, help="interleaved bare/emolake passes per model")
    parser.add_argument("--data", default=os.environ.get("EMOLAKE_SHARED_DATA", "../shared/data"))
    args = parser.parse_args()
    data = Path(args.data)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    peak, peak_1 = matmul_peak_gflops(), matmul_peak_gflops(one_thread_cpu=True)
    print(f"float32 matmul peak (2048^3): {peak:.1f} GFLOP/s wall clock, {torch.get_num_threads()} threads; "
          f"{peak_1:.1f} GFLOP per CPU-second on one thread")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        measure("all-MiniLM-L6-v2", load_model(), goemotions_texts(data, args.n_minilm), args.n_naive, peak, peak_1,
                tmp, args.reps)
        roberta = random_roberta_base(tmp / "roberta-base-random")
        measure("random RoBERTa-base", roberta, goemotions_texts(data, args.n_roberta), args.n_naive // 2, peak,
                peak_1, tmp, args.reps)


if __name__ == "__main__":
    main()
