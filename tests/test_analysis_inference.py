"""Permutation, bootstrap, noise ceiling and variance partitioning against brute force, scipy and sklearn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression

from emolake.analysis.inference import (
    bootstrap_items, bootstrap_raters, label_permutations, noise_ceiling, permutation_test, permuted_rdms,
    variance_partition,
)
from emolake.analysis.rdm import pair_indices, rdm, square


def _tiny(n: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 2))
    a = rdm(points, "euclidean")
    b = rdm(points + rng.normal(0, 0.5, size=(n, 2)), "euclidean")
    return a, b


def _relabel(b: np.ndarray, n: int, perm) -> np.ndarray:
    full = square(b, n)
    i, j = pair_indices(n)
    return np.array([full[perm[x], perm[y]] for x, y in zip(i, j)])


def test_exact_permutation_p_equals_brute_force_over_all_relabellings() -> None:
    a, b = _tiny(5)
    observed = stats.kendalltau(a, b).statistic
    null = [stats.kendalltau(a, _relabel(b, 5, perm)).statistic for perm in itertools.permutations(range(5))]
    expected = np.mean(np.array(null) >= observed - 1e-12)
    result = permutation_test(a, b, "tau_b", exact=True)
    assert result.observed == pytest.approx(observed, abs=1e-12)
    assert result.p == pytest.approx(expected)
    assert sorted(result.null) == pytest.approx(sorted(null), abs=1e-12)


def test_monte_carlo_null_is_scipy_on_the_seeded_relabellings() -> None:
    a, b = _tiny(6, seed=1)
    result = permutation_test(a, b, "spearman", n_perm=200, seed=42)
    perms = label_permutations(6, 200, 42)
    null = np.array([stats.spearmanr(a, _relabel(b, 6, p)).statistic for p in perms])
    assert np.allclose(result.null, null, atol=1e-12)
    assert result.p == pytest.approx((1 + np.sum(null >= result.observed - 1e-12)) / 201)
    assert result.seed == 42 and result.n_perm == 200
    again = permutation_test(a, b, "spearman", n_perm=200, seed=42)
    assert again.p == result.p
    assert permutation_test(a, b, "spearman", n_perm=200, seed=43).null.tolist() != result.null.tolist()


def test_permuted_rdms_move_rows_and_columns_together() -> None:
    b = np.arange(1.0, 11.0)  # 5 items
    perms = np.array([[1, 0, 2, 3, 4], [4, 3, 2, 1, 0]])
    out = permuted_rdms(b, perms)
    for k, perm in enumerate(perms):
        assert np.array_equal(out[:, k], _relabel(b, 5, perm))


def test_bootstrap_items_drops_self_pairs_and_matches_a_manual_resample() -> None:
    a, b = _tiny(8, seed=2)
    result = bootstrap_items(a, b, "pearson", n_boot=50, seed=9)
    rng = np.random.default_rng(9)
    draw = rng.integers(0, 8, 8)
    fa, fb = square(a, 8), square(b, 8)
    pairs = [(draw[x], draw[y]) for x, y in zip(*pair_indices(8)) if draw[x] != draw[y]]
    first = stats.pearsonr([fa[p] for p in pairs], [fb[p] for p in pairs]).statistic
    assert result.distribution[0] == pytest.approx(first, abs=1e-12)
    assert result.ci_low <= result.ci_high


def test_bootstrap_raters_resamples_raters_with_replacement() -> None:
    rng = np.random.default_rng(4)
    truth = rng.random(15)
    raters = truth + rng.normal(0, 0.3, size=(7, 15))
    target = truth + rng.normal(0, 0.1, 15)
    result = bootstrap_raters(raters, target, "tau_b", n_boot=30, seed=1)
    draws = np.random.default_rng(1).integers(0, 7, (30, 7))
    expected = [stats.kendalltau(raters[d].mean(axis=0), target).statistic for d in draws]
    assert np.allclose(result.distribution, expected, atol=1e-12)
    assert result.estimate == pytest.approx(stats.kendalltau(raters.mean(axis=0), target).statistic)


def test_noise_ceiling_is_brute_force_leave_one_rater_out() -> None:
    rng = np.random.default_rng(6)
    truth = rng.random(21)
    raters = np.round(truth + rng.normal(0, 0.4, size=(6, 21)), 1)
    raters[2, 3] = np.nan  # one missing judgment
    ceiling = noise_ceiling(raters, "tau_b")
    lower, upper = [], []
    for k in range(6):
        others = np.nanmean(np.delete(raters, k, axis=0), axis=0)
        everyone = np.nanmean(raters, axis=0)
        keep = ~np.isnan(raters[k])
        lower.append(stats.kendalltau(raters[k][keep], others[keep]).statistic)
        upper.append(stats.kendalltau(raters[k][keep], everyone[keep]).statistic)
    assert ceiling.lower == pytest.approx(np.mean(lower), abs=1e-12)
    assert ceiling.upper == pytest.approx(np.mean(upper), abs=1e-12)
    assert ceiling.lower < ceiling.upper


def test_variance_partition_equals_sklearn_regressions() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(100, 3))
    x[:, 2] = x[:, 0] * 0.7 + rng.normal(0, 0.5, 100)  # shared variance with the first
    y = x @ np.array([1.0, 0.5, 0.8]) + rng.normal(0, 1, 100)
    split = variance_partition(y, x, ["a", "b", "c"])
    full = LinearRegression().fit(x, y).score(x, y)
    assert split.r2 == pytest.approx(full, abs=1e-10)
    for k, name in enumerate("abc"):
        reduced = np.delete(x, k, axis=1)
        assert split.unique[name] == pytest.approx(full - LinearRegression().fit(reduced, y).score(reduced, y), abs=1e-10)
    assert split.shared == pytest.approx(full - sum(split.unique.values()), abs=1e-12)
    with pytest.raises(ValueError):
        variance_partition(y, x, ["a", "b"])


def test_bca_interval_corrects_the_raters_bootstrap_bias_like_scipy() -> None:
    rng = np.random.default_rng(11)
    truth = rng.random(28)
    raters = truth + rng.normal(0, 1.0, size=(12, 28))
    target = truth + rng.normal(0, 0.2, 28)
    n_boot = 3000
    ours = bootstrap_raters(raters, target, "pearson", n_boot=n_boot, seed=2, ci="bca")
    percentile = bootstrap_raters(raters, target, "pearson", n_boot=n_boot, seed=2, ci="percentile")
    basic = bootstrap_raters(raters, target, "pearson", n_boot=n_boot, seed=2, ci="basic")
    assert ours.ci == "bca" and percentile.ci == "percentile"
    assert np.mean(percentile.distribution) < percentile.estimate  # the bias the BCa interval corrects

    def statistic(index, axis=-1):
        index = np.asarray(index)
        means = raters[index.reshape(-1, index.shape[-1])].mean(axis=1)  # [batch, n_pairs]
        r = [stats.pearsonr(m, target).statistic for m in means]
        return np.reshape(r, index.shape[:-1])

    ref = stats.bootstrap((np.arange(len(raters)),), statistic, vectorized=True, n_resamples=n_boot,
                          method="BCa", rng=np.random.default_rng(3))
    # equal up to Monte Carlo error (different resamples; the correction reaches far into the tail)
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.035)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.035)
    q = np.quantile(percentile.distribution, [0.025, 0.975])
    assert (basic.ci_low, basic.ci_high) == pytest.approx((2 * basic.estimate - q[1], 2 * basic.estimate - q[0]))
    assert ours.ci_low > percentile.ci_low and ours.ci_high > percentile.ci_high
