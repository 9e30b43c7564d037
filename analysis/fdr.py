"""False discovery rate: monotone Benjamini-Hochberg and the study's non-monotone variant."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

FDR_MODES = ("monotone", "study")


def _over_present(p: np.ndarray, q_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply `q_of` (1-D p -> q) to the non-NaN entries of `p`, any shape; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = q_of(p[ok])
    return q


def _bh_study_1d(values: np.ndarray) -> np.ndarray:
    # Hand-written because it is the study's definition, not BH: R's p * N / rank(p) with rank()'s
    # default ties = "average", and no step-up minimum (scipy has no such variant).
    rank = stats.rankdata(values, method="average")
    return np.minimum(values * values.size / rank, 1.0)


def bh_monotone(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (step-up, monotone, capped at 1; `scipy.stats.false_discovery_control`),
    any shape; NaN stays NaN."""
    return _over_present(p, lambda values: stats.false_discovery_control(values, method="bh"))


def bh_study(p: np.ndarray) -> np.ndarray:
    """The study's q = p * N / rank(p): no step-up minimum, so not monotone in p (capped at 1).

    rank is R's `rank(p)`: 1-based in ascending order, tied p share their average rank (as in the
    study's R scripts), so equal p always get equal q.
    """
    return _over_present(p, _bh_study_1d)


def fdr(p: np.ndarray, mode: str = "monotone") -> np.ndarray:
    """q-values of `p` in FDR mode 'monotone' (Benjamini-Hochberg) or 'study' (p*N/rank)."""
    if mode == "monotone":
        return bh_monotone(p)
    if mode == "study":
        return bh_study(p)
    raise ValueError(f"unknown FDR mode {mode!r} (expected one of {FDR_MODES})")
