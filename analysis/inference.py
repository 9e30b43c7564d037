"""Inference on RDM comparisons: permutation over item labels, bootstrap over items and raters,
the noise ceiling of a human RDM, and variance partitioning of a model RDM over attribute RDMs.

Every random procedure takes a seed and returns it with its result.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .compare import compare
from .rdm import condensed, n_items, pair_indices, square


@dataclass(frozen=True)
class PermutationResult:
    observed: float
    p: float  # (1 + #{null >= observed}) / (1 + n_perm); exact enumeration: #{null >= observed} / n!
    null: np.ndarray  # [n_perm]
    n_perm: int
    seed: int | None
    exact: bool = False


@dataclass(frozen=True)
class BootstrapResult:
    estimate: float
    ci_low: float
    ci_high: float
    distribution: np.ndarray  # [n_boot]
    n_boot: int
    seed: int
    level: float = 0.95
    ci: str = "percentile"  # how ci_low / ci_high were computed (`CI_METHODS`)


@dataclass(frozen=True)
class NoiseCeiling:
    lower: float  # mean over raters of compare(rater, mean of the other raters)
    upper: float  # mean over raters of compare(rater, mean of all raters)
    n_raters: int
    method: str


@dataclass(frozen=True)
class VariancePartition:
    r2: float  # R^2 of the full model (all predictors)
    unique: dict[str, float]  # R^2(full) - R^2(full without the predictor)
    shared: float  # R^2(full) - sum(unique)
    beta: dict[str, float] = field(default_factory=dict)  # standardised coefficients of the full model
    n: int = 0


def label_permutations(n: int, n_perm: int, seed: int) -> np.ndarray:
    """n_perm random permutations of n labels [n_perm, n], from numpy's PCG64 seeded with `seed`."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_perm, n)), axis=1)


def permuted_rdms(rdm: np.ndarray, permutations: np.ndarray) -> np.ndarray:
    """`rdm` [n_pairs] with rows and columns relabelled together by each permutation -> [n_pairs, n_perm]."""
    n = n_items(len(rdm))
    full = square(rdm, n)  # [n, n]
    i, j = pair_indices(n)
    return full[permutations[:, i], permutations[:, j]].T


def permutation_test(
    a: np.ndarray, b: np.ndarray, method: str = "tau_b", n_perm: int = 10_000, seed: int = 0,
    exact: bool = False,
) -> PermutationResult:
    """One-sided test that RDMs a and b [n_pairs] are more similar than under shuffled labels.

    The item labels of `b` are permuted (its rows and columns together); p = (1 + #{null >=
    observed}) / (1 + n_perm). With `exact`, all n! permutations are enumerated (small n only)
    and p = #{null >= observed} / n! (the identity is one of them).
    """
    observed = compare(a, b, method)
    n = n_items(len(b))
    if exact:
        if n > 8:
            raise ValueError(f"exact enumeration of {n}! permutations is too many (n <= 8)")
        perms = np.array(list(itertools.permutations(range(n))))
    else:
        perms = label_permutations(n, n_perm, seed)
    null = np.asarray(compare(a, permuted_rdms(np.asarray(b, float), perms), method))
    hits = int(np.sum(null >= observed - 1e-12))
    if exact:
        return PermutationResult(observed, hits / math.factorial(n), null, len(perms), None, exact=True)
    return PermutationResult(observed, (1 + hits) / (1 + n_perm), null, n_perm, seed)


CI_METHODS = ("bca", "percentile", "basic")


def _interval(estimate: float, distribution: np.ndarray, n_boot: int, seed: int, level: float,
              ci: str = "percentile", jackknife: np.ndarray | None = None) -> BootstrapResult:
    """CI from a bootstrap distribution [n_boot]. 'percentile': its quantiles (biased when the
    resamples' mean is off the estimate, as for tau of a mean RDM over resampled raters, which
    duplicates raters and so looks noisier); 'basic': reflected about the estimate (2 x estimate -
    quantiles); 'bca': bias-corrected and accelerated (Efron 1987), bias from the share of resamples
    below the estimate, acceleration from the `jackknife` values (leave one unit out)."""
    if ci not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci!r} (expected one of {CI_METHODS})")
    finite = distribution[np.isfinite(distribution)]
    tail = (1 - level) / 2
    if not finite.size:
        return BootstrapResult(estimate, np.nan, np.nan, distribution, n_boot, seed, level, ci)
    quantiles = [tail, 1 - tail]
    if ci == "bca":
        from scipy.special import ndtr, ndtri

        if jackknife is None:
            raise ValueError("the BCa interval needs the jackknife values")
        below = (np.sum(finite < estimate) + 0.5 * np.sum(finite == estimate)) / finite.size
        z0 = ndtri(np.clip(below, 1 / (finite.size + 1), finite.size / (finite.size + 1)))
        spread = jackknife.mean() - jackknife
        denominator = 6 * np.sum(spread ** 2) ** 1.5
        accel = np.sum(spread ** 3) / denominator if denominator > 0 else 0.0
        z = ndtri(np.array(quantiles))
        quantiles = list(ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z))))
    low, high = np.quantile(finite, quantiles)
    if ci == "basic":
        low, high = 2 * estimate - high, 2 * estimate - low
    return BootstrapResult(estimate, float(low), float(high), distribution, n_boot, seed, level, ci)


def bootstrap_items(
    a: np.ndarray, b: np.ndarray, method: str = "tau_b", n_boot: int = 1000, seed: int = 0, level: float = 0.95,
    ci: str = "bca",
) -> BootstrapResult:
    """CI of compare(a, b) by resampling items (emotions) with replacement (`ci`: see `_interval`;
    BCa's jackknife leaves one item out).

    A resample of n items gives the pairs of its n positions; pairs of an item with itself
    (drawn twice) are dropped, the rest are read from both RDMs.
    """
    n = n_items(len(a))
    full_a, full_b = square(np.asarray(a, float), n), square(np.asarray(b, float), n)
    i, j = pair_indices(n)
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for r in range(n_boot):  # one resample per iteration; each comparison is vectorised
        draw = rng.integers(0, n, n)
        rows, cols = draw[i], draw[j]
        keep = rows != cols
        values[r] = compare(full_a[rows[keep], cols[keep]], full_b[rows[keep], cols[keep]], method)
    jackknife = None
    if ci == "bca":
        kept = [np.delete(np.arange(n), k) for k in range(n)]
        jackknife = np.array([compare(condensed(full_a[np.ix_(rest, rest)]), condensed(full_b[np.ix_(rest, rest)]), method)
                              for rest in kept])
    return _interval(compare(a, b, method), values, n_boot, seed, level, ci, jackknife)


def bootstrap_raters(
    rater_rdms: np.ndarray, target: np.ndarray, method: str = "tau_b", n_boot: int = 1000, seed: int = 0,
    level: float = 0.95, ci: str = "bca",
) -> BootstrapResult:
    """CI of compare(mean rater RDM, target) by resampling raters with replacement (`ci`: see
    `_interval`; BCa's jackknife leaves one rater out). The resamples' mean is below the estimate
    (duplicated raters make the mean RDM noisier), so the percentile interval is shifted low; the
    default BCa interval corrects that bias.

    rater_rdms [n_raters, n_pairs] (NaN where a rater has no judgment of a pair); target [n_pairs].
    """
    rater_rdms = np.asarray(rater_rdms, float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(rater_rdms), (n_boot, len(rater_rdms)))
    with _quiet_nanmean():
        means = np.nanmean(rater_rdms[draws], axis=1).T  # [n_pairs, n_boot]
    # pairs that a resample leaves without any judgment are dropped from that resample only
    values = np.array(compare(target, means, method)) if not np.isnan(means).any() else \
        np.array([compare(target, means[:, r], method) for r in range(n_boot)])
    with _quiet_nanmean():
        estimate = compare(np.nanmean(rater_rdms, axis=0), target, method)
        jackknife = np.array([compare(np.nanmean(np.delete(rater_rdms, k, axis=0), axis=0), target, method)
                              for k in range(len(rater_rdms))]) if ci == "bca" else None
    return _interval(estimate, values, n_boot, seed, level, ci, jackknife)


def noise_ceiling(rater_rdms: np.ndarray, method: str = "tau_b") -> NoiseCeiling:
    """Noise ceiling of the group RDM (Nili et al. 2014), in the comparison `method`.

    upper: mean over raters of compare(rater, mean of all raters); lower: the same with the
    mean of the other raters (leave-one-rater-out). rater_rdms [n_raters, n_pairs], NaN allowed.
    """
    rater_rdms = np.asarray(rater_rdms, float)
    n = len(rater_rdms)
    if n < 2:
        raise ValueError("the noise ceiling needs at least two raters")
    with _quiet_nanmean():
        everyone = np.nanmean(rater_rdms, axis=0)
        upper = [compare(r, everyone, method) for r in rater_rdms]
        lower = [compare(r, np.nanmean(np.delete(rater_rdms, k, axis=0), axis=0), method)
                 for k, r in enumerate(rater_rdms)]
    return NoiseCeiling(float(np.mean(lower)), float(np.mean(upper)), n, method)


def _r2(y: np.ndarray, x: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(1 - residual @ residual / ((y - y.mean()) @ (y - y.mean())))


def variance_partition(target: np.ndarray, predictors: np.ndarray, names: list[str]) -> VariancePartition:
    """Multiple regression (OLS with intercept) of `target` [n_pairs] on `predictors` [n_pairs, k].

    unique[name] = R^2(all) - R^2(all but name); shared = R^2(all) - sum of unique.
    """
    y = np.asarray(target, float)
    x = np.asarray(predictors, float)
    if x.shape != (len(y), len(names)):
        raise ValueError(f"predictors have shape {x.shape}, expected ({len(y)}, {len(names)})")
    full = _r2(y, x)
    unique = {name: full - _r2(y, np.delete(x, k, axis=1)) for k, name in enumerate(names)}
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    beta, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), z]), (y - y.mean()) / y.std(), rcond=None)
    return VariancePartition(full, unique, full - sum(unique.values()), dict(zip(names, beta[1:].tolist())), len(y))


class _quiet_nanmean:
    """Silence numpy's 'Mean of empty slice' for pairs no rater judged (they stay NaN)."""

    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
