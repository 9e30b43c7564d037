"""Appraisal components: varimax against a brute-force angle search, parallel analysis on data with
a known number of components, matching with shuffled and flipped columns, and on the real release."""

from __future__ import annotations

import numpy as np
import pytest

from emolake.analysis.appraisal import PUBLISHED_COMPONENTS, components, match_components, parallel_analysis, varimax


def _varimax_criterion(loadings: np.ndarray) -> float:
    h = np.sqrt((loadings ** 2).sum(axis=1, keepdims=True))
    x = loadings / h
    return float(((x ** 4).sum(axis=0) - ((x ** 2).sum(axis=0)) ** 2 / len(x)).sum())


def test_varimax_finds_the_best_angle_of_a_brute_force_search_in_two_dimensions() -> None:
    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(12, 2))
    rotated, rotation = varimax(loadings, tol=1e-12)
    assert np.allclose(rotation @ rotation.T, np.eye(2), atol=1e-10)
    assert np.allclose(rotated, loadings @ rotation, atol=1e-10)
    angles = np.linspace(0, np.pi / 2, 20001)
    best = max(_varimax_criterion(loadings @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]))
               for a in angles)
    assert _varimax_criterion(rotated) == pytest.approx(best, rel=1e-6)


def test_parallel_analysis_recovers_the_number_of_simulated_components() -> None:
    rng = np.random.default_rng(1)
    n, k, items_per = 400, 4, 6
    factors = rng.normal(size=(n, k))
    data = np.column_stack([factors[:, f] + rng.normal(0, 0.7, n) for f in range(k) for _ in range(items_per)])
    kept, observed, random = parallel_analysis(data, n_draws=30, seed=2)
    assert kept == k
    assert observed[k - 1] > random[k - 1] and observed[k] < random[k]
    result = components(data, n_draws=30, seed=2)
    # every simulated factor is carried by one rotated component
    r = np.abs(np.corrcoef(result.scores.T, factors.T)[:k, k:])
    assert np.all(r.max(axis=0) > 0.9)


def test_matching_undoes_shuffled_and_sign_flipped_columns() -> None:
    rng = np.random.default_rng(3)
    published = rng.normal(size=(27, 6))
    order = np.array([3, 0, 5, 1, 4, 2])
    signs = np.array([1, -1, 1, -1, -1, 1])
    ours = (published * signs)[:, np.argsort(order)] + rng.normal(0, 0.05, (27, 6))
    index, found_signs, r = match_components(ours, published)
    assert np.allclose(ours[:, index] * found_signs, published, atol=0.3)
    assert np.all(r > 0.95)


@pytest.mark.slow
def test_release_appraisal_components_reproduce_the_published_table(shared_data, tmp_path) -> None:
    from emolake.analysis.appraisal import run_appraisal
    from emolake.ingest.release import HUMAN_PARTS
    from emolake.warehouse.lake import Lake

    lake = Lake(tmp_path / "lake")
    lake.init()
    with lake.transaction("human data of the release") as txn:  # the activations are not needed here
        for part in HUMAN_PARTS:
            part(shared_data / "model_emotion", txn, {})
    summary = run_appraisal(lake, "li2024", n_draws=50, seed=0)
    assert summary["components_by_parallel_analysis"] == 6
    assert set(summary["r_with_published"]) >= set(PUBLISHED_COMPONENTS)
    assert all(r > 0.99 for r in summary["r_with_published"].values())
