"""Kendall's tau between many columns at once: sign matrices of pair differences and a matmul.

For two samples x, y of length n, tau's numerator (concordant - discordant) is
sum_{k<l} sign(x_k - x_l) * sign(y_k - y_l): a dot product of two 'sign vectors' over the
n(n-1)/2 pairs of observations. Stacking the sign vectors of many columns turns a searchlight
(36,864 neurons x 14 attributes over the 351 emotion pairs, 61,425 pairs of pairs) into one
blocked matrix product; ties give sign 0, so tau-b's denominators and scipy's tie-corrected
variance (method 'asymptotic') come from per-column tie counts. Values equal
`scipy.stats.kendalltau` (tests/test_analysis_kendall.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtr

from .rdm import pair_indices

COLUMN_BLOCK = 64  # columns of X per block: a [ROW_BLOCK, COLUMN_BLOCK] float32 tile stays in cache
WIDE_COLUMN_BLOCK = 512  # columns of X per block when y has many columns: one large matmul per tile
WIDE_Y_COLUMNS = 256  # y columns from which the wide tiles pay off
ROW_BLOCK = 2048  # pairs of observations per block
SMALL_PRODUCT, SMALL_N = 64, 2048  # at most this many column pairs over this many observations: plain numpy


@dataclass(frozen=True)
class KendallResult:
    tau: np.ndarray  # [n_x_columns, n_y_columns]
    p: np.ndarray  # [n_x_columns, n_y_columns]; nan where a column is constant
    numerator: np.ndarray  # concordant - discordant, [n_x_columns, n_y_columns]


@dataclass(frozen=True)
class TieCounts:
    """Per-column tie statistics, as scipy's `count_rank_tie`: sums over tie groups of size t."""

    pairs: np.ndarray  # sum t(t-1)/2: tied pairs, [n_columns]
    v0: np.ndarray  # sum t(t-1)(t-2)
    v1: np.ndarray  # sum t(t-1)(2t+5)


def tie_counts(values: np.ndarray) -> TieCounts:
    """Tie statistics of every column of `values` [n, m], without a loop over columns.

    Each element of a tie group of size t contributes f(t)/t to the group's sum f(t), so the
    per-element group size (from run boundaries of the sorted column) is all that is needed.
    """
    values = np.asarray(values)
    n, m = values.shape
    ordered = np.sort(values, axis=0)  # [n, m]
    new_run = np.ones((n, m), dtype=bool)
    new_run[1:] = ordered[1:] != ordered[:-1]
    rows = np.arange(n)[:, None]
    start = np.maximum.accumulate(np.where(new_run, rows, 0), axis=0)  # first row of each element's run
    run_ends = np.ones((n, m), dtype=bool)
    run_ends[:-1] = new_run[1:]
    end = np.flip(np.minimum.accumulate(np.flip(np.where(run_ends, rows, n), axis=0), axis=0), axis=0)
    t = (end - start + 1).astype(np.float64)  # size of each element's tie group, [n, m]
    return TieCounts(
        pairs=((t - 1) / 2).sum(axis=0),
        v0=((t - 1) * (t - 2)).sum(axis=0),
        v1=((t - 1) * (2 * t + 5)).sum(axis=0),
    )


def sign_matrix(values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """sign(v_k - v_l) for every pair k < l of rows: [n(n-1)/2, m] in `dtype` (few columns only)."""
    k, l = pair_indices(len(values))
    values = np.asarray(values)
    return np.sign(values[k] - values[l]).astype(dtype, copy=False)


def concordance(x: np.ndarray, y: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
    """Concordant minus discordant pairs for every column of x [n, mx] against every column of y [n, my].

    Returns [mx, my] float64; `advance(c)` is called after each block of c columns of x.
    See `concordance_signs`.
    """
    if x.shape[1] * np.shape(y)[1] <= SMALL_PRODUCT and len(x) <= SMALL_N:  # one comparison (a bootstrap's)
        result = sign_matrix(x).T @ sign_matrix(y)  # float64: integer sums, exact
        if advance is not None:
            advance(x.shape[1])
        return result
    return concordance_signs(x, sign_matrix(y, np.float32), advance)


def concordance_signs(x: np.ndarray, y_signs: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
    """Concordant minus discordant pairs of every column of x [n, mx] against every column of a
    precomputed sign matrix y_signs [n(n-1)/2, my] (`sign_matrix(y, np.float32)`): [mx, my] float64.

    Blocked so that one [ROW_BLOCK, columns] tile of x's sign matrix is built at a time. The signs
    are taken in x's own precision (float32 x: faster, but it ties values that differ beyond 7
    digits), then multiplied in float32: signs are -1, 0, 1 and every partial sum is an integer
    below 2**24, so the float32 product is exact. Few y columns (a searchlight pass): narrow tiles,
    one thread each; many (permutation nulls): wide tiles and torch's threads, one large matmul each.
    """
    n, mx = x.shape
    my = y_signs.shape[1]
    k, l = (torch.tensor(i) for i in pair_indices(n))  # a copy: the cached indices are read-only
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    y_t = torch.from_numpy(np.ascontiguousarray(y_signs, dtype=np.float32).T)  # [my, n_pairs]
    out = torch.zeros((my, mx), dtype=torch.float32)
    x = np.asarray(x, dtype=dtype)
    wide = my > WIDE_Y_COLUMNS
    columns = WIDE_COLUMN_BLOCK if wide else COLUMN_BLOCK
    threads = torch.get_num_threads()
    if not wide:
        torch.set_num_threads(1)  # the tiles are small; one thread per tile is fastest
    try:
        for c0 in range(0, mx, columns):
            tile = torch.from_numpy(np.ascontiguousarray(x[:, c0:c0 + columns]))  # [n, c]
            for r0 in range(0, len(k), ROW_BLOCK):
                d = tile.index_select(0, k[r0:r0 + ROW_BLOCK])  # [rows, c]
                d = d.sub_(tile.index_select(0, l[r0:r0 + ROW_BLOCK])).sign_().to(torch.float32)
                out[:, c0:c0 + columns] += y_t[:, r0:r0 + ROW_BLOCK] @ d
            if advance is not None:
                advance(tile.shape[1])
    finally:
        torch.set_num_threads(threads)
    return out.T.numpy().astype(np.float64)


def kendall_tau(
    x: np.ndarray, y: np.ndarray, variant: str = "b", alternative: str = "two-sided",
) -> KendallResult:
    """Kendall's tau (variant 'b' or 'a') of every column of x [n, mx] with every column of y [n, my].

    p: the normal approximation with scipy's tie-corrected variance (kendalltau 'asymptotic'), for
    both variants (the variance is that of the numerator, which the variants share).
    `alternative`: 'two-sided', 'greater' (positive association) or 'less'.
    x keeps float32 if given (the searchlight's neuron RDMs), else float64; y is float64.
    """
    x = np.asarray(x)
    x = x if x.dtype == np.float32 else x.astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows, y has {y.shape[0]}")
    n = x.shape[0]
    numerator = concordance(x, y)  # [mx, my]
    tx, ty = tie_counts(x), tie_counts(y)
    total = n * (n - 1) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "b":
            tau = numerator / np.sqrt(total - tx.pairs)[:, None] / np.sqrt(total - ty.pairs)[None, :]
        elif variant == "a":
            tau = numerator / total
        else:
            raise ValueError(f"unknown Kendall variant {variant!r} (expected 'a' or 'b')")
        tau = np.clip(tau, -1.0, 1.0)
        m = n * (n - 1.0)
        var = ((m * (2 * n + 5) - tx.v1[:, None] - ty.v1[None, :]) / 18
               + 2 * tx.pairs[:, None] * ty.pairs[None, :] / m
               + tx.v0[:, None] * ty.v0[None, :] / (9 * m * (n - 2)))
        z = numerator / np.sqrt(var)
    p = normal_p(z, alternative)
    constant = (tx.pairs[:, None] == total) | (ty.pairs[None, :] == total)
    tau = np.where(constant, np.nan, tau)
    p = np.where(constant, np.nan, p)
    return KendallResult(tau=tau, p=p, numerator=numerator)


def normal_p(z: np.ndarray, alternative: str) -> np.ndarray:
    """p of a standard-normal statistic z for the given alternative."""
    if alternative == "greater":
        return ndtr(-z)
    if alternative == "less":
        return ndtr(z)
    if alternative == "two-sided":
        return np.minimum(1.0, 2 * ndtr(-np.abs(z)))
    raise ValueError(f"unknown alternative {alternative!r} (expected two-sided, greater or less)")
