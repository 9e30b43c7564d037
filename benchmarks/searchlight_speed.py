"""Searchlight speed on the study's released activations: the vectorised kernel vs a per-test
`scipy.stats.kendalltau` loop, and vs the machine's matrix-multiply peak; then the permutation
inference (the default) vs the asymptotic pass and vs a per-test permutation loop.

Reads the release directly (12 seeds x 27 emotions x 36,864 neurons; the 27 x 14 published
attribute table), so it runs before anything is ingested. The naive loops are timed on a random
sample of tests and extrapolated to all 516,096; the permutation pass is timed on the first
`--perm-neurons` neurons and scaled to all (its cost is linear in neurons).

    PYTHONPATH=. python benchmarks/searchlight_speed.py [--release ../shared/data/model_emotion] [--sample 3000]
        [--permutations 500] [--perm-neurons 4096] [--perm-sample 20]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from emolake.analysis.kendall import concordance
from emolake.analysis.rdm import feature_rdms, rdm
from emolake.analysis.inference import label_permutations
from emolake.analysis.rdm import square
from emolake.analysis.searchlight import N_PERMUTATIONS, searchlight_tau

ACTIVATIONS = "Data/raw_data/PLM/prompt_tuning_RoBERTa/neurons_activation_before_relu"
ATTRIBUTES = "Data/preprocessed/emotional_features/score_emotional_PCs.csv"
ORDER = "Data/preprocessed/reordered_emotions.csv"


def load_release(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(profiles [n_seeds, 27, 36864], attributes [27, 14]) with emotions sorted by name."""
    files = sorted((root / ACTIVATIONS).glob("*-*.csv*"))
    emotions = sorted({f.name.split("-")[0] for f in files})
    seeds = sorted({int(f.name.split("-")[1].split(".")[0]) for f in files})
    profiles = np.empty((len(seeds), len(emotions), 36864), dtype=np.float32)
    for f in files:
        emotion, seed = f.name.split("-")[0], int(f.name.split("-")[1].split(".")[0])
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt") as handle:
            handle.readline()
            profiles[seeds.index(seed), emotions.index(emotion)] = np.array(handle.readline().split(","), dtype=np.float32)
    order = [line.strip() for line in (root / ORDER).read_text().splitlines() if line.strip()]
    table = np.loadtxt(root / ATTRIBUTES, delimiter=",", skiprows=1)
    attributes = table[[order.index(e) for e in emotions]]
    return profiles, attributes


def matmul_peak(seconds: float = 2.0) -> float:
    """Measured float32 GFLOP/s of a large single-thread matmul (the kernel runs single-threaded)."""
    torch.set_num_threads(1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 2048 ** 3 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("EMOLAKE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--release", type=Path, default=default / "model_emotion")
    parser.add_argument("--sample", type=int, default=3000, help="tests timed in the scipy loop")
    parser.add_argument("--permutations", type=int, default=N_PERMUTATIONS, help="permutations of the permutation pass")
    parser.add_argument("--perm-neurons", type=int, default=4096, help="neurons the permutation pass is timed on")
    parser.add_argument("--perm-sample", type=int, default=20, help="tests timed in the per-test permutation loop")
    args = parser.parse_args()

    profiles, attributes = load_release(args.release)
    neuron_rdms = feature_rdms(profiles)  # [351, 36864] float64
    attribute_rdms = rdm(attributes, "absolute")  # [351, 14]
    n_tests = neuron_rdms.shape[1] * attribute_rdms.shape[1]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"tests: {neuron_rdms.shape[1]:,} neurons x {attribute_rdms.shape[1]} attributes = {n_tests:,}; "
          f"{neuron_rdms.shape[0]} pairs, {neuron_rdms.shape[0] * (neuron_rdms.shape[0] - 1) // 2:,} pairs of pairs")

    start = time.perf_counter()
    stats_ours = searchlight_tau(neuron_rdms, attribute_rdms, "asymptotic")
    ours = time.perf_counter() - start
    print(f"ours (float64, the default; tau-b + one-sided p + both FDR q): {ours:.1f} s  ({n_tests / ours:,.0f} tests/s)")

    start = time.perf_counter()
    searchlight_tau(neuron_rdms.astype(np.float32), attribute_rdms, "asymptotic")
    ours32 = time.perf_counter() - start
    print(f"ours (--precision float32): {ours32:.1f} s  ({n_tests / ours32:,.0f} tests/s)")

    rng = np.random.default_rng(0)
    sample = rng.choice(n_tests, size=args.sample, replace=False)
    start = time.perf_counter()
    worst = 0.0
    for t in sample:
        neuron, attribute = divmod(int(t), attribute_rdms.shape[1])
        ref = stats.kendalltau(neuron_rdms[:, neuron], attribute_rdms[:, attribute],
                               alternative="greater")
        worst = max(worst, abs(ref.statistic - stats_ours.tau[neuron, attribute]))
    naive = (time.perf_counter() - start) / args.sample * n_tests
    print(f"scipy.stats.kendalltau loop: {args.sample:,} tests timed, extrapolated to {naive:.0f} s "
          f"(max |tau difference| {worst:.1e})")
    print(f"speed-up: {naive / ours:.0f}x (float64), {naive / ours32:.0f}x (float32)")

    start = time.perf_counter()
    concordance(neuron_rdms[:, :4096].astype(np.float32), attribute_rdms)
    kernel = (time.perf_counter() - start) * neuron_rdms.shape[1] / 4096
    pair_pairs = neuron_rdms.shape[0] * (neuron_rdms.shape[0] - 1) // 2
    flops = 2 * pair_pairs * neuron_rdms.shape[1] * attribute_rdms.shape[1]
    peak = matmul_peak()
    print(f"float32 concordance kernel alone: {kernel:.1f} s = {flops / kernel / 1e9:.1f} GFLOP/s of useful matmul work; "
          f"single-thread float32 matmul peak {peak:.0f} GFLOP/s ({100 * flops / kernel / 1e9 / peak:.0f}% of peak; "
          f"the rest is building the {pair_pairs * neuron_rdms.shape[1] / 1e9:.2f} G sign entries)")

    # permutation inference: the default pass, on a slice of neurons, scaled to all of them
    part = neuron_rdms[:, :args.perm_neurons]
    scale = neuron_rdms.shape[1] / part.shape[1]
    start = time.perf_counter()
    searchlight_tau(part, attribute_rdms, "asymptotic")
    asymptotic_part = time.perf_counter() - start
    start = time.perf_counter()
    searchlight_tau(part, attribute_rdms, "permutation", args.permutations, seed=0)
    permutation = (time.perf_counter() - start) * scale
    asymptotic_all = asymptotic_part * scale
    n = attribute_rdms.shape[0]
    perms = label_permutations(27, args.permutations, 1)
    i, j = np.triu_indices(27, 1)
    start = time.perf_counter()
    for t in rng.choice(n_tests, size=args.perm_sample, replace=False):
        neuron, attribute = divmod(int(t), attribute_rdms.shape[1])
        full = square(attribute_rdms[:, attribute], 27)
        for p in perms:
            stats.kendalltau(neuron_rdms[:, neuron], full[p[i], p[j]])
    loop = (time.perf_counter() - start) / args.perm_sample * n_tests
    print(f"permutation inference, {args.permutations} permutations (timed on {part.shape[1]:,} neurons, scaled "
          f"x{scale:.1f}): {permutation:.0f} s = {permutation / asymptotic_all:.1f}x the asymptotic pass "
          f"({asymptotic_all:.1f} s on the same slice, scaled); per-test loop of scipy.stats.kendalltau over the same "
          f"permutations: {args.perm_sample} tests timed, extrapolated to {loop:,.0f} s = {loop / permutation:,.0f}x ours "
          f"({n} pairs)")


if __name__ == "__main__":
    main()
