"""RDMs: tie-exact distances (equal in exact arithmetic -> equal floats), pdist metrics by brute force."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from emolake.analysis.kendall import kendall_tau
from emolake.analysis.rdm import model_rdm, pair_indices, rdm, tie_exact


def _rescaled_means(rng: np.random.Generator, n_items: int = 27, n_raters: int = 30) -> tuple[np.ndarray, list]:
    """Per-item means of 1-9 ratings rescaled to 0-1, as floats and as exact fractions."""
    sums = rng.integers(n_raters, 9 * n_raters + 1, n_items)
    exact = [Fraction(int(s), n_raters) for s in sums]
    low, high = min(exact), max(exact)
    exact = [(v - low) / (high - low) for v in exact]
    floats = (sums / n_raters - sums.min() / n_raters) / (sums.max() / n_raters - sums.min() / n_raters)
    return floats, exact


def test_distances_equal_in_exact_arithmetic_are_equal_floats() -> None:
    floats, exact = _rescaled_means(np.random.default_rng(0))
    i, j = pair_indices(len(exact))
    exact_rdm = [abs(exact[a] - exact[b]) for a, b in zip(i, j)]
    ours = rdm(floats[:, None], "absolute")[:, 0]
    naive = np.abs(floats[i] - floats[j])
    assert len(set(exact_rdm)) == len(np.unique(ours))  # same ties as the exact values
    assert len(np.unique(naive)) > len(set(exact_rdm))  # plain floating point splits ties apart
    # and tau-b sees them as ties: equal to scipy on the exact values' ranks
    ranks = {v: r for r, v in enumerate(sorted(set(exact_rdm)))}
    exact_ranks = np.array([ranks[v] for v in exact_rdm], dtype=float)
    other = np.random.default_rng(1).integers(0, 5, len(i)).astype(float)
    ref = stats.kendalltau(exact_ranks, other)
    result = kendall_tau(ours, other, alternative="two-sided")
    assert result.tau[0, 0] == pytest.approx(ref.statistic, abs=1e-12)
    assert result.p[0, 0] == pytest.approx(ref.pvalue, rel=1e-9)
    assert kendall_tau(naive, other).tau[0, 0] != pytest.approx(ref.statistic, abs=1e-12)


def test_tie_exact_rounds_each_column_to_its_own_scale_and_keeps_zeros_and_nan() -> None:
    values = np.array([[0.1 + 0.2, 3e5, 0.0], [0.3, 3e5 + 1e-10, 0.0], [np.nan, 1.0, 0.0]])
    out = tie_exact(values)
    assert out[0, 0] == out[1, 0]  # 0.30000000000000004 == 0.3
    assert out[0, 1] == out[1, 1]  # differs beyond 12 significant digits of 3e5
    assert np.isnan(out[2, 0]) and np.all(out[:, 2] == 0)
    assert out[2, 1] == 1.0


def test_pattern_metrics_equal_brute_force_pair_by_pair() -> None:
    patterns = np.random.default_rng(2).normal(size=(7, 20))
    i, j = pair_indices(7)
    brute = {
        "correlation": [1 - np.corrcoef(patterns[a], patterns[b])[0, 1] for a, b in zip(i, j)],
        "euclidean": [np.linalg.norm(patterns[a] - patterns[b]) for a, b in zip(i, j)],
        "cosine": [1 - patterns[a] @ patterns[b] / np.linalg.norm(patterns[a]) / np.linalg.norm(patterns[b])
                   for a, b in zip(i, j)],
    }
    for metric, expected in brute.items():
        assert rdm(patterns, metric) == pytest.approx(expected, rel=1e-10)
        assert model_rdm(np.stack([patterns, patterns + 1.0]), metric) == pytest.approx(
            (np.array(expected) + rdm(patterns + 1.0, metric)) / 2, rel=1e-10)
