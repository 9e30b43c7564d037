"""RDM comparison methods against scipy, and the RDM metrics against scipy.spatial."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from emolake.analysis.compare import compare, compare_test
from emolake.analysis.rdm import condensed, feature_rdms, model_rdm, n_items, pair_names, rdm, square

REFERENCE = {
    "tau_b": lambda a, b: stats.kendalltau(a, b).statistic,
    "spearman": lambda a, b: stats.spearmanr(a, b).statistic,
    "pearson": lambda a, b: stats.pearsonr(a, b).statistic,
}


@pytest.fixture
def rdms() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    a = np.round(rng.random(351) * 20)  # ties, like a mean of 1-9 ratings
    b = a + rng.normal(0, 8, 351)
    return a, b


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_compare_equals_scipy(method: str, rdms) -> None:
    a, b = rdms
    assert compare(a, b, method) == pytest.approx(REFERENCE[method](a, b), abs=1e-10)


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_compare_many_columns_equals_one_at_a_time(method: str, rdms) -> None:
    a, b = rdms
    many = np.column_stack([b, -b, b ** 2, np.roll(b, 3)])
    values = compare(a, many, method)
    assert values.shape == (4,)
    for k in range(4):
        assert values[k] == pytest.approx(REFERENCE[method](a, many[:, k]), abs=1e-10)


@pytest.mark.parametrize("method", ["tau_b", "spearman", "pearson"])
@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_compare_test_p_equals_scipy(method: str, alternative: str, rdms) -> None:
    a, b = rdms
    value, p = compare_test(a, b, method, alternative)
    if method == "tau_b":
        ref = stats.kendalltau(a, b, method="asymptotic", alternative=alternative)
    elif method == "spearman":
        ref = stats.spearmanr(a, b, alternative=alternative)
    else:
        ref = stats.pearsonr(a, b, alternative=alternative)
    assert value == pytest.approx(ref.statistic, abs=1e-10)
    assert p == pytest.approx(ref.pvalue, rel=1e-7)


def test_tau_a_counts_ties_as_neither(rdms) -> None:
    a, b = rdms
    n0 = len(a) * (len(a) - 1) / 2
    tau_b = compare(a, b, "tau_b")
    ties_a = sum(t * (t - 1) / 2 for t in np.unique(a, return_counts=True)[1])
    expected = tau_b * np.sqrt(n0 - ties_a) * np.sqrt(n0) / n0  # b has no ties
    assert compare(a, b, "tau_a") == pytest.approx(expected, abs=1e-10)


def test_missing_pairs_are_dropped(rdms) -> None:
    a, b = rdms
    a = a.copy()
    a[:10] = np.nan
    assert compare(a, b, "spearman") == pytest.approx(stats.spearmanr(a[10:], b[10:]).statistic, abs=1e-10)


def test_unknown_method_is_an_error(rdms) -> None:
    with pytest.raises(ValueError, match="unknown comparison method"):
        compare(*rdms, method="kendall")


@pytest.mark.parametrize("metric, scipy_metric", [("correlation", "correlation"), ("euclidean", "euclidean"),
                                                  ("cosine", "cosine")])
def test_rdm_metrics_equal_scipy_pdist(metric: str, scipy_metric: str) -> None:
    patterns = np.random.default_rng(0).normal(size=(27, 50))
    assert np.allclose(rdm(patterns, metric), pdist(patterns, scipy_metric), atol=1e-12)


def test_feature_rdms_average_absolute_differences_over_runs() -> None:
    runs = np.random.default_rng(1).normal(size=(3, 6, 4))
    expected = np.mean([[pdist(run[:, [f]], "cityblock") for f in range(4)] for run in runs], axis=0).T
    assert np.allclose(feature_rdms(runs), expected)
    assert np.allclose(model_rdm(runs, "euclidean"), np.mean([pdist(r) for r in runs], axis=0))


def test_pair_order_square_and_condensed_round_trip() -> None:
    items = ["a", "b", "c", "d"]
    assert pair_names(items) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    vector = np.arange(1.0, 7.0)
    assert np.array_equal(condensed(square(vector, 4)), vector)
    assert n_items(351) == 27
    with pytest.raises(ValueError):
        n_items(350)


def test_subset_keeps_the_pairs_of_the_kept_items_in_rdm_order() -> None:
    from emolake.analysis.rdm import subset

    patterns = np.random.default_rng(4).normal(size=(6, 3))
    items = list("abcdef")
    keep = ["b", "d", "e"]
    full = rdm(patterns, "euclidean")
    assert np.allclose(subset(full, items, keep), rdm(patterns[[1, 3, 4]], "euclidean"))
    per_feature = rdm(patterns, "absolute")  # [pairs, features]
    assert np.allclose(subset(per_feature, items, keep), rdm(patterns[[1, 3, 4]], "absolute"))
    raters = np.stack([full, 2 * full])  # [raters, pairs]
    assert np.allclose(subset(raters, items, keep), np.stack([subset(full, items, keep), 2 * subset(full, items, keep)]))
