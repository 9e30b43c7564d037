"""FDR: monotone Benjamini-Hochberg equals scipy; the study's p*N/rank(p) by brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from emolake.analysis.fdr import bh_monotone, bh_study, fdr


def test_monotone_bh_equals_scipy_false_discovery_control() -> None:
    p = np.random.default_rng(0).random((300, 4)) ** 3
    assert np.allclose(bh_monotone(p), stats.false_discovery_control(p.ravel(), method="bh").reshape(p.shape))


def test_study_q_is_p_times_n_over_rank_and_can_be_non_monotone() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.5, 0.041])
    n = len(p)
    ranks = np.array([1, 3, 2, 5, 4])
    assert np.allclose(bh_study(p), np.minimum(p * n / ranks, 1))
    q = bh_study(p)
    order = np.argsort(p)
    assert np.any(np.diff(q[order]) < 0)  # p = 0.04 (rank 3) gets a larger q than p = 0.041 (rank 4)
    assert np.all(np.diff(bh_monotone(p)[order]) >= 0)


def test_missing_p_stays_missing_and_does_not_count_as_a_test() -> None:
    p = np.array([0.01, np.nan, 0.02])
    assert np.isnan(bh_monotone(p)[1]) and np.isnan(bh_study(p)[1])
    assert bh_monotone(p)[[0, 2]] == pytest.approx([0.02, 0.02])


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError):
        fdr(np.array([0.1]), "holm")


def test_study_q_gives_tied_p_r_average_ranks() -> None:
    # R: p <- c(0.01, 0.02, 0.02, 0.02, 0.5); p * 5 / rank(p) -> ranks 1, 3, 3, 3, 5
    p = np.array([0.02, 0.01, 0.02, 0.5, 0.02])
    ranks = np.array([3.0, 1.0, 3.0, 5.0, 3.0])
    assert np.allclose(bh_study(p), np.minimum(p * 5 / ranks, 1))
    q = bh_study(p)
    assert q[0] == q[2] == q[4]  # equal p, equal q (position-based ranks gave 0.05, 0.0333, 0.025)


def test_study_q_ties_in_many_dimensions_equal_a_brute_force_average_rank() -> None:
    p = np.round(np.random.default_rng(2).random((40, 3)), 2)  # many ties
    flat = p.ravel()
    ranks = np.array([(flat < v).sum() + ((flat == v).sum() + 1) / 2 for v in flat])
    assert np.allclose(bh_study(p).ravel(), np.minimum(flat * flat.size / ranks, 1))
