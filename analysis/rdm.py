"""Representational dissimilarity matrices as condensed vectors over item pairs.

An RDM over n items (emotions, sorted by name) is a vector of n(n-1)/2 values, one per pair
(i, j), i < j, in row-major order (`pair_indices`); for 27 emotions that is 351 pairs, the
same order as the `model_rdm`, `attribute_rdm` and `human_rdm` views (emotion_a < emotion_b).
`rdm(patterns, metric)` is the one function that computes RDMs: the pattern metrics are
`scipy.spatial.distance.pdist` (whose condensed order is this one); per-feature |a_i - a_j| is
computed here, because pdist computes one RDM per call and the searchlight needs 36,864 at once.

Every RDM of ratings or patterns is made tie-exact (`tie_exact`): distances are rounded to `TIE_DIGITS` significant
digits of the RDM's largest distance, so that distances equal in exact arithmetic (which floating
point leaves ~1e-16 apart: |0.3 - 0.1| != |0.5 - 0.3|) are equal floats and rank statistics
(Kendall tau-b, Spearman) count them as ties, as they would on the exact values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from scipy.spatial.distance import pdist

TIE_DIGITS = 12  # significant digits kept: far above the data's precision, far below float64 error


@lru_cache(maxsize=32)
def pair_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every pair i < j, row-major: ([n_pairs], [n_pairs]) int64, read-only (cached:
    bootstraps and permutations ask for them thousands of times)."""
    i, j = np.triu_indices(n, 1)
    i, j = i.astype(np.int64), j.astype(np.int64)
    i.flags.writeable = j.flags.writeable = False
    return i, j


def pair_names(items: Sequence[str]) -> list[tuple[str, str]]:
    """(item_a, item_b) of every pair, in RDM order."""
    i, j = pair_indices(len(items))
    return [(items[a], items[b]) for a, b in zip(i, j)]


def tie_exact(distances: np.ndarray, digits: int = TIE_DIGITS) -> np.ndarray:
    """Round an RDM [n_pairs] or per-feature RDMs [n_pairs, n_features] (each column on its own) to
    `digits` significant digits of its largest |value|; all-zero RDMs stay as they are. Float64.

    Two distances equal in exact arithmetic round to the same float unless their float error
    straddles a rounding boundary (a chance of about 1e-4 per distance at 12 digits)."""
    values = np.asarray(distances, dtype=np.float64)
    largest = np.abs(np.where(np.isnan(values), 0.0, values)).max(axis=0, initial=0.0)  # [] or [n_features]
    with np.errstate(divide="ignore"):
        exponent = np.where(largest > 0, np.floor(np.log10(np.where(largest > 0, largest, 1.0))), 0.0)
    scale = 10.0 ** (digits - 1 - exponent)  # [] or [n_features]
    return np.where(largest > 0, np.round(values * scale) / scale, values)


def absolute_difference(patterns: np.ndarray) -> np.ndarray:
    """|a_i - a_j| per feature (neuron or attribute): [n_items, n_features] -> [n_pairs, n_features]."""
    i, j = pair_indices(patterns.shape[0])
    return np.abs(patterns[i] - patterns[j])


METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "correlation": lambda patterns: pdist(patterns, "correlation"),  # 1 - Pearson r between rows
    "euclidean": lambda patterns: pdist(patterns, "euclidean"),
    "cosine": lambda patterns: pdist(patterns, "cosine"),  # 1 - cosine similarity
    "absolute": absolute_difference,
}


def rdm(patterns: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Condensed, tie-exact RDM of `patterns` [n_items, n_features].

    Returns [n_pairs] for the pattern metrics ('correlation' = 1 - Pearson, 'euclidean',
    'cosine'), or [n_pairs, n_features] for 'absolute' (one RDM per feature). Float64.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown RDM metric {metric!r} (expected one of {sorted(METRICS)})")
    patterns = np.asarray(patterns, dtype=np.float64)
    return tie_exact(METRICS[metric](patterns))


def feature_rdms(patterns: np.ndarray) -> np.ndarray:
    """Per-feature RDMs |a_i - a_j| averaged over runs: patterns [n_runs, n_items, n_features] or
    [n_items, n_features] -> [n_pairs, n_features] (float64).

    Not rounded by `tie_exact`: activations are float32, so their differences are exact in float64
    and so are the sums over runs (equal exact means are equal floats already), while rounding to
    digits of the largest distance would merge distinct small distances of near-zero activations."""
    patterns = np.asarray(patterns)
    if patterns.ndim == 2:
        patterns = patterns[None]
    total = absolute_difference(np.asarray(patterns[0], dtype=np.float64))
    for run in patterns[1:]:
        total += absolute_difference(np.asarray(run, dtype=np.float64))
    return total / len(patterns)


def model_rdm(profiles: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Model RDM of a run set: the RDM of each run's profiles [n_runs, n_items, n_neurons],
    averaged over runs -> [n_pairs] (the `model_rdm` view's definition), tie-exact."""
    profiles = np.asarray(profiles)
    if profiles.ndim == 2:
        profiles = profiles[None]
    return tie_exact(np.mean([METRICS[metric](np.asarray(run, dtype=np.float64)) for run in profiles], axis=0))


def square(condensed: np.ndarray, n: int) -> np.ndarray:
    """Condensed [n_pairs] -> symmetric [n, n] with a zero diagonal."""
    out = np.zeros((n, n), dtype=np.float64)
    i, j = pair_indices(n)
    out[i, j] = condensed
    out[j, i] = condensed
    return out


def condensed(matrix: np.ndarray) -> np.ndarray:
    """Symmetric [n, n] (or [..., n, n]) -> condensed [..., n_pairs] in RDM order."""
    i, j = pair_indices(matrix.shape[-1])
    return matrix[..., i, j]


def n_items(n_pairs: int) -> int:
    """Number of items of a condensed RDM with n_pairs entries."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not a number of pairs n(n-1)/2")
    return n


def subset(rdms: np.ndarray, items: Sequence[str], keep: Sequence[str]) -> np.ndarray:
    """The pairs of `keep` (in its order) from condensed RDMs over `items`: [..., n_pairs] or
    [n_pairs, k] (columns kept as columns) -> the same layout over len(keep) items."""
    index = np.array([list(items).index(k) for k in keep])
    i, j = pair_indices(len(items))
    position = np.full((len(items), len(items)), -1)
    position[i, j] = np.arange(len(i))
    position = np.maximum(position, position.T)  # symmetric lookup of a pair's position
    a, b = pair_indices(len(keep))
    take = position[index[a], index[b]]
    rdms = np.asarray(rdms)
    return rdms[take] if rdms.ndim == 2 and rdms.shape[0] == len(i) else rdms[..., take]
