"""The vectorised Kendall kernel equals scipy.stats.kendalltau (tau-b, asymptotic p) and brute force (tau-a)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from emolake.analysis.kendall import kendall_tau, tie_counts


def _columns_with_ties(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    x = rng.random((n, m)).astype(np.float32)
    x[:, : m // 3] = np.round(x[:, : m // 3] * 6).astype(np.float32)  # heavy ties
    x[:, m // 3] = np.float32(2.0)  # constant column
    x[::7, m // 2] = x[0, m // 2]  # a few ties
    return x


@pytest.mark.parametrize("alternative", ["greater", "two-sided", "less"])
def test_tau_b_and_p_equal_scipy_on_random_neurons_with_ties(alternative: str) -> None:
    rng = np.random.default_rng(7)
    x = _columns_with_ties(rng, 351, 40)  # [pairs, neurons]
    y = np.column_stack([rng.random(351), np.round(rng.random(351) * 9) / 9])  # [pairs, attributes]
    result = kendall_tau(x, y, variant="b", alternative=alternative)
    for i in range(x.shape[1]):
        for j in range(y.shape[1]):
            ref = stats.kendalltau(x[:, i].astype(np.float64), y[:, j], method="asymptotic", alternative=alternative)
            if np.isnan(ref.statistic):
                assert np.isnan(result.tau[i, j]) and np.isnan(result.p[i, j])
                continue
            assert abs(result.tau[i, j] - ref.statistic) <= 1e-10
            assert result.p[i, j] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_float64_columns_are_compared_in_float64() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((60, 5))
    x[1, 0] = x[0, 0] + 1e-12  # distinct in float64, equal in float32
    y = rng.random(60)
    result = kendall_tau(x, y)
    for i in range(5):
        ref = stats.kendalltau(x[:, i], y, method="asymptotic")
        assert abs(result.tau[i, 0] - ref.statistic) <= 1e-12
        assert result.p[i, 0] == pytest.approx(ref.pvalue, rel=1e-9)


def test_tau_a_equals_brute_force_pair_enumeration() -> None:
    rng = np.random.default_rng(11)
    x = np.round(rng.random((25, 6)) * 4)
    y = np.round(rng.random((25, 2)) * 3)
    result = kendall_tau(x, y, variant="a")
    n = len(x)
    for i in range(x.shape[1]):
        for j in range(y.shape[1]):
            s = sum(np.sign(x[k, i] - x[l, i]) * np.sign(y[k, j] - y[l, j]) for k, l in combinations(range(n), 2))
            assert result.tau[i, j] == pytest.approx(s / (n * (n - 1) / 2), abs=1e-12)


def test_tie_counts_equal_bincount_of_tie_groups() -> None:
    rng = np.random.default_rng(5)
    x = np.round(rng.random((50, 9)) * 5)
    counts = tie_counts(x)
    for c in range(x.shape[1]):
        _, t = np.unique(x[:, c], return_counts=True)
        assert counts.pairs[c] == pytest.approx((t * (t - 1) / 2).sum())
        assert counts.v0[c] == pytest.approx((t * (t - 1) * (t - 2)).sum())
        assert counts.v1[c] == pytest.approx((t * (t - 1) * (2 * t + 5)).sum())


def test_kernel_can_fail_on_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        kendall_tau(np.zeros((5, 2)), np.zeros(4))
