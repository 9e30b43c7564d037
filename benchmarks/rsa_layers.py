"""Cost of the per-layer model RSA that `emolake rsa` adds (`model_rsa.layer`), on the study's
released RoBERTa activations (12 seeds x 27 emotions x 12 layers x 3,072 neurons) against the
published mean human distances (embedded `study_similarity.csv`, one rater set).

Times, in one run: the all-neuron rows (model RDM + tau-b + permutation p + bootstrap CI over
emotions) and the same for every layer, with the `emolake rsa` defaults (10,000 permutations,
1,000 resamples). Prints a Markdown table for docs/BENCHMARKS.md.

    PYTHONPATH=. python benchmarks/rsa_layers.py [--release ../shared/data/model_emotion] [--permutations 10000] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from emolake.analysis.lake_inputs import Profiles
from emolake.analysis.layers import layer_model_rdms
from emolake.analysis.rdm import model_rdm, pair_indices
from emolake.analysis.rsa import _human_rows
from benchmarks.searchlight_speed import load_release
from emolake.ingest.embedded import similarity_path
from emolake.ingest.emotions import GOEMOTIONS_27


def human_rdm(emotions: list[str]) -> np.ndarray:
    """The published 351 mean distances [n_pairs] in RDM order over `emotions`."""
    lookup = {e: k for k, e in enumerate(emotions)}
    square = np.full((len(emotions), len(emotions)), np.nan)
    with open(similarity_path(), newline="") as handle:
        for row in csv.DictReader(handle):
            a, b = lookup[row["emotion_a"]], lookup[row["emotion_b"]]
            square[a, b] = square[b, a] = float(row["distance"])
    i, j = pair_indices(len(emotions))
    return square[i, j]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("EMOLAKE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--release", type=Path, default=default / "model_emotion")
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--bootstrap", type=int, default=1_000)
    args = parser.parse_args()
    torch.set_num_threads(1)

    profiles, _ = load_release(args.release)  # [12 seeds, 27, 36864]
    emotions = sorted(GOEMOTIONS_27)  # load_release sorts the release's emotions by name too
    neurons = np.arange(profiles.shape[2])
    runs = Profiles("li2024-roberta", [str(s) for s in range(len(profiles))], emotions, neurons, neurons // 3072,
                    neurons % 3072, profiles.astype(np.float64))
    human = human_rdm(emotions)
    raters = np.empty((0, len(human)))

    start = time.perf_counter()
    model = model_rdm(runs.values, "correlation")
    overall = _human_rows(human, raters, model, "correlation", "tau_b", args.permutations, args.bootstrap, 0)
    all_seconds = time.perf_counter() - start

    start = time.perf_counter()
    per_layer = [(layer, _human_rows(human, raters, rdm_, "correlation", "tau_b", args.permutations,
                                     args.bootstrap, 0)[0]) for layer, _, rdm_ in layer_model_rdms(runs)]
    layer_seconds = time.perf_counter() - start

    print(f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"P = {args.permutations:,}, B = {args.bootstrap:,}\n")
    print("| rows | time | per model RDM |\n| --- | --- | --- |")
    print(f"| all neurons (1 RDM of 36,864 neurons) | {all_seconds:.1f} s | {all_seconds:.1f} s |")
    print(f"| per layer (12 RDMs of 3,072 neurons) | {layer_seconds:.1f} s | {layer_seconds / 12:.1f} s |")
    print(f"\nratio per-layer / all-neuron: {layer_seconds / all_seconds:.1f}x\n")
    print(f"all neurons: tau-b {overall[0]['tau']:.3f} [{overall[0]['ci_emotions_low']:.3f}, "
          f"{overall[0]['ci_emotions_high']:.3f}], p_perm {overall[0]['p_perm']:.4g}")
    for layer, row in per_layer:
        print(f"layer {layer:2d}: tau-b {row['tau']:.3f} [{row['ci_emotions_low']:.3f}, {row['ci_emotions_high']:.3f}], "
              f"p_perm {row['p_perm']:.4g}")


if __name__ == "__main__":
    main()
