"""The bundled decoder LLM (SmolLM2-135M-Instruct): GGUF first load vs cached load, extraction vs the
bare forward pass, prompts/s by batch size, peak memory. One process, one run: ratios are what to read.

On real GoEmotions test texts with the causal default (last token of
"{text}\\nThe emotion expressed here is", mlp_post neurons, 30 x 1,536 = 46,080 per prompt):

- first load: dequantize the GGUF into an empty cache folder and load it; cached: load again;
- bare: `model.base_model` forward on the same length-sorted, padded batches, nothing kept;
- capture: the same passes through `extract.capture.capture` (hooks on all 30 layers, one buffer);
- extract: `extract_run` end to end into a fresh lake (tokenize, capture, write Parquet, manifest);
- prompts/s of capture at batch 1, 8 and 32; peak RSS of the process (ru_maxrss).

    python benchmarks/extract_llm.py [--n 128] [--threads 1] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.extract.capture import build_prompts, capture, encode, forward_base, length_sorted_batches, pad_batch  # noqa: E402
from emolake.extract.models.loading import load_model  # noqa: E402
from emolake.extract.prompts import CAUSAL_TEMPLATE  # noqa: E402
from emolake.extract.run import ExtractSettings, extract_run  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402


def goemotions_texts(data: Path, n: int) -> list[str]:
    lines = (data / "goemotions" / "test.tsv").read_text(encoding="utf-8").splitlines()[:n]
    return [line.split("\t")[0] for line in lines]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_pass(loaded, encoded, batch_size: int) -> None:
    pad_id = loaded.tokenizer.pad_token_id
    with torch.inference_mode():
        for batch in length_sorted_batches(encoded.lengths(), batch_size):
            ids, attention = pad_batch([encoded.ids[i] for i in batch], pad_id, loaded.device)
            forward_base(loaded, ids, attention)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128, help="prompts per measurement")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f} at start, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EMOLAKE_CACHE"] = str(Path(tmp) / "cache")
        first = timed(lambda: load_model("smollm2-135m-instruct"))
        loaded = None

        def load_cached():
            nonlocal loaded
            loaded = load_model("smollm2-135m-instruct")

        cached = timed(load_cached)
        print(f"GGUF first load (dequantize + cache + load): {first:.1f} s; cached load: {cached:.1f} s; "
              f"ratio {first / cached:.0f}x")
        texts = goemotions_texts(args.data, args.n)
        prompts, spans = build_prompts(loaded, texts, CAUSAL_TEMPLATE, "last")
        encoded = encode(loaded, prompts, "last", [str(i) for i in range(len(texts))], spans)
        bare_pass(loaded, encode(loaded, prompts[:8], "last", [""] * 8), 8)  # warm up
        bare = timed(lambda: bare_pass(loaded, encoded, 16))
        captured = timed(lambda: capture(loaded, encoded, "last", 16))
        lake = Lake(Path(tmp) / "lake")
        lake.init()
        with lake.transaction("benchmark") as txn:
            txn.write("stimuli", pa.table({
                "split": ["test"] * len(texts), "stimulus_id": [f"s{i:05d}" for i in range(len(texts))],
                "text": texts, "emotion": ["joy"] * len(texts), "n_labels": [1] * len(texts),
                "source_row": list(range(len(texts)))}), {"dataset": "bench"})
        extracted = timed(lambda: extract_run(lake, ExtractSettings(model="smollm2-135m-instruct", dataset="bench",
                                                                    batch_size=16), loaded=loaded))
        n = len(texts)
        print(f"batch 16, {n} prompts: bare forward {n / bare:.1f} prompts/s; capture {n / captured:.1f} "
              f"({captured / bare:.2f}x bare); extract_run end to end {n / extracted:.1f} ({extracted / bare:.2f}x bare)")
        for batch_size in (1, 8, 32):
            seconds = timed(lambda b=batch_size: capture(loaded, encoded, "last", b))
            print(f"capture at batch {batch_size}: {n / seconds:.1f} prompts/s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
