"""Per-layer model RSA (`model_rsa.layer`): each layer's RDM against the human RDM, checked by hand with scipy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from scipy.spatial.distance import pdist

from emolake.cli import cli
from emolake.warehouse.database import query

from analysis_lake import write_synthetic

N_PERM, N_BOOT, SEED = 199, 50, 4


@pytest.fixture
def toy(lake):
    return lake, write_synthetic(lake, units=10, n_emotions=9)


def _rsa(lake, *args: str):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), "rsa", *args], catch_exceptions=False)


def _human(lake, study: str) -> tuple[np.ndarray, np.ndarray]:
    """Group-mean human RDM [n_pairs] and per-rater RDMs [n_raters, n_pairs], emotions sorted, neutral out."""
    rows = query(lake, f"""SELECT rater, emotion_a, emotion_b, distance FROM similarity_judgments
                           WHERE study = '{study}' AND emotion_a <> 'neutral' AND emotion_b <> 'neutral'
                           ORDER BY rater, emotion_a, emotion_b""").to_pylist()
    raters = sorted({r["rater"] for r in rows})
    per_rater = np.array([[r["distance"] for r in rows if r["rater"] == rater] for rater in raters])
    return per_rater.mean(axis=0), per_rater


def _layer_rdm(profiles: np.ndarray, layer: int, d_ff: int) -> np.ndarray:
    """1 - Pearson over the layer's neurons per run (scipy pdist), averaged over runs: [n_pairs]."""
    return np.mean([pdist(run[:, layer * d_ff:(layer + 1) * d_ff], "correlation") for run in profiles], axis=0)


def test_each_layer_rdm_against_the_human_rdm_equals_a_hand_computation(toy) -> None:
    lake, s = toy
    result = _rsa(lake, "--study", s.study, "--run-set", s.run_set, "--permutations", str(N_PERM),
                  "--bootstrap", str(N_BOOT), "--seed", str(SEED), "--json")
    assert result.exit_code == 0, result.output
    human, per_rater = _human(lake, s.study)
    n = len(s.emotions)
    rows = query(lake, f"""SELECT * FROM model_rsa WHERE run_set = '{s.run_set}' AND layer IS NOT NULL
                           ORDER BY layer, target""").to_pylist()
    assert [(r["layer"], r["target"]) for r in rows] == [(l, t) for l in range(s.n_layers)
                                                         for t in ("human", "human_raters")]
    ceiling = query(lake, "SELECT lower, upper FROM noise_ceiling WHERE method = 'tau_b'").to_pylist()[0]
    for layer in range(s.n_layers):
        model = _layer_rdm(s.profiles, layer, s.d_ff)
        tau = stats.kendalltau(human, model).statistic
        got = {r["target"]: r for r in rows if r["layer"] == layer}
        assert got["human"]["tau"] == pytest.approx(tau, abs=1e-12)
        assert json.loads(result.output)["model_vs_human_by_layer"][str(layer)] == pytest.approx(tau, abs=1e-4)

        # permutation p: relabel the emotions of the model RDM, (1 + #null >= observed) / (1 + P)
        rng = np.random.default_rng(SEED)
        perms = np.argsort(rng.random((N_PERM, n)), axis=1)
        square = np.zeros((n, n))
        i, j = np.triu_indices(n, 1)
        square[i, j] = square[j, i] = model
        null = [stats.kendalltau(human, square[p][:, p][i, j]).statistic for p in perms]
        assert got["human"]["p_perm"] == pytest.approx((1 + sum(v >= tau - 1e-12 for v in null)) / (1 + N_PERM))

        # bootstrap over emotions: pairs of a resample, those of an emotion with itself dropped
        rng = np.random.default_rng(SEED)
        human_square = np.zeros((n, n))
        human_square[i, j] = human_square[j, i] = human
        values = []
        for _ in range(N_BOOT):
            draw = rng.integers(0, n, n)
            keep = draw[i] != draw[j]
            a, b = draw[i][keep], draw[j][keep]
            values.append(stats.kendalltau(human_square[a, b], square[a, b]).statistic)
        # the interval is BCa (Efron 1987): bias from the share below tau, acceleration from the
        # leave-one-emotion-out jackknife
        values = np.array(values)
        below = (np.sum(values < tau) + 0.5 * np.sum(values == tau)) / N_BOOT
        z0 = stats.norm.ppf(np.clip(below, 1 / (N_BOOT + 1), N_BOOT / (N_BOOT + 1)))
        jack = []
        for k in range(n):
            rest = np.delete(np.arange(n), k)
            ri, rj = np.triu_indices(len(rest), 1)
            jack.append(stats.kendalltau(human_square[np.ix_(rest, rest)][ri, rj],
                                         square[np.ix_(rest, rest)][ri, rj]).statistic)
        spread = np.mean(jack) - np.array(jack)
        accel = np.sum(spread ** 3) / (6 * np.sum(spread ** 2) ** 1.5)
        z = stats.norm.ppf([0.025, 0.975])
        low, high = np.quantile(values, stats.norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))))
        assert (got["human"]["ci_emotions_low"], got["human"]["ci_emotions_high"]) == pytest.approx((low, high))
        assert got["human"]["n_pairs"] == n * (n - 1) // 2 and got["human"]["n_perm"] == N_PERM

        # the noise ceiling's quantity: mean over single raters, beside the ceiling itself
        single = np.mean([stats.kendalltau(r, model).statistic for r in per_rater])
        assert got["human_raters"]["tau"] == pytest.approx(single, abs=1e-12)
        assert (got["human_raters"]["ceiling_lower"], got["human_raters"]["ceiling_upper"]) == \
            pytest.approx((ceiling["lower"], ceiling["upper"]))
    # the all-neuron rows are still there, with layer NULL
    assert query(lake, "SELECT count(*) FROM model_rsa WHERE layer IS NULL AND target = 'human'").column(0)[0].as_py() == 1


def test_no_layers_drops_the_stale_layer_rows_of_that_metric_and_keeps_others(toy) -> None:
    lake, s = toy
    base = ["--study", s.study, "--run-set", s.run_set, "--permutations", "9", "--bootstrap", "0"]
    assert _rsa(lake, *base).exit_code == 0
    assert _rsa(lake, *base, "--metric", "euclidean").exit_code == 0
    assert _rsa(lake, *base, "--no-layers").exit_code == 0
    layered = query(lake, "SELECT DISTINCT metric FROM model_rsa WHERE layer IS NOT NULL").column(0).to_pylist()
    assert layered == ["euclidean"]
    human, _ = _human(lake, s.study)
    model = np.mean([pdist(run[:, s.d_ff:], "euclidean") for run in s.profiles], axis=0)
    got = query(lake, "SELECT tau FROM model_rsa WHERE layer = 1 AND target = 'human' AND metric = 'euclidean'")
    assert got.column(0)[0].as_py() == pytest.approx(stats.kendalltau(human, model).statistic, abs=1e-12)


def test_a_lake_made_before_the_per_layer_tables_still_builds_its_views(lake) -> None:
    import shutil

    for table in ("layer_rsa_results", "model_comparison_results", "model_comparison_test_results"):
        shutil.rmtree(lake.root / table)  # as a lake created by an emolake without these tables
    (lake.root / "warehouse.duckdb").unlink(missing_ok=True)  # the views are rebuilt on the next query
    assert query(lake, "SELECT count(*) FROM model_rsa").column(0)[0].as_py() == 0
    assert query(lake, "SELECT count(*) FROM model_comparison").column(0)[0].as_py() == 0
