"""Cross-model comparison (`emolake compare`, views model_comparison and model_comparison_tests),
checked by hand with scipy on a lake holding two run sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from scipy.spatial.distance import pdist

from emolake.cli import cli
from conftest import tree_hashes
from emolake.warehouse.database import query

from analysis_lake import write_synthetic

N_BOOT, SEED = 60, 7


def _run(lake, *args: str):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), *args], catch_exceptions=False)


@pytest.fixture
def two(lake):
    """Run set 'wide' covers the study's 9 emotions; 'narrow' (another model, 8 units) covers 8 of them."""
    wide = write_synthetic(lake, units=10, n_emotions=9, seed=0, run_set="wide", dataset="wide-stimuli")
    narrow = write_synthetic(lake, units=8, n_emotions=8, seed=1, run_set="narrow", dataset="narrow-stimuli",
                             study="narrow-own-study")
    for s in (wide, narrow):
        result = _run(lake, "rsa", "--study", wide.study, "--run-set", s.run_set, "--permutations", "19",
                      "--bootstrap", "30", "--seed", "1")
        assert result.exit_code == 0, result.output
    return lake, wide, narrow


def _human(lake, study: str, emotions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rows = query(lake, f"SELECT rater, emotion_a, emotion_b, distance FROM similarity_judgments WHERE study = '{study}' "
                       "ORDER BY rater, emotion_a, emotion_b").to_pylist()
    keep = set(emotions)
    rows = [r for r in rows if r["emotion_a"] in keep and r["emotion_b"] in keep]
    raters = sorted({r["rater"] for r in rows})
    per_rater = np.array([[r["distance"] for r in rows if r["rater"] == rater] for rater in raters])
    return per_rater.mean(axis=0), per_rater


def _rdm(profiles: np.ndarray, columns=slice(None)) -> np.ndarray:
    return np.mean([pdist(run[:, columns], "correlation") for run in profiles], axis=0)


def test_compare_rows_and_paired_test_equal_a_hand_computation(two) -> None:
    lake, wide, narrow = two
    result = _run(lake, "compare", "--run-sets", "wide,narrow", "--study", wide.study, "--bootstrap", str(N_BOOT),
                  "--seed", str(SEED), "--json")
    assert result.exit_code == 0, result.output
    rows = {r["run_set"]: r for r in query(lake, "SELECT * FROM model_comparison").to_pylist()}
    assert set(rows) == {"wide", "narrow"}

    # ceiling (upper bound) of the study over all its 9 emotions, by hand
    human9, raters9 = _human(lake, wide.study, wide.emotions)
    upper = np.mean([stats.kendalltau(r, raters9.mean(axis=0)).statistic for r in raters9])
    for s in (wide, narrow):
        row = rows[s.run_set]
        human, raters = _human(lake, wide.study, s.emotions)
        assert row["n_emotions"] == len(s.emotions) and row["n_layers"] == 2 and row["n_runs"] == 2
        assert row["model"] == "toy" and row["position"] == "mask" and row["neuron"] is None  # no `neuron` column yet
        assert row["tau"] == pytest.approx(stats.kendalltau(human, _rdm(s.profiles)).statistic, abs=1e-12)
        per_layer = [stats.kendalltau(human, _rdm(s.profiles, slice(l * s.d_ff, (l + 1) * s.d_ff))).statistic
                     for l in range(2)]
        assert row["best_layer"] == int(np.argmax(per_layer))
        assert row["best_tau"] == pytest.approx(max(per_layer), abs=1e-12)
        single = np.mean([stats.kendalltau(r, _rdm(s.profiles)).statistic for r in raters])
        assert row["ceiling_upper"] == pytest.approx(upper, abs=1e-12)
        assert row["tau_normalised"] == pytest.approx(single / upper, abs=1e-12)
        assert row["ci_low"] < row["ci_high"] and row["n_boot"] == 30
    assert sorted(r["rank"] for r in rows.values()) == [1, 2]

    # the paired bootstrap over the 8 shared emotions, by hand
    test = query(lake, "SELECT * FROM model_comparison_tests").to_pylist()
    assert len(test) == 1
    test = test[0]
    assert (test["run_set_a"], test["run_set_b"], test["n_emotions"], test["n_boot"], test["seed"]) == \
        ("wide", "narrow", 8, N_BOOT, SEED)
    shared = narrow.emotions
    index = [wide.emotions.index(e) for e in shared]
    human, _ = _human(lake, wide.study, shared)
    a, b = _rdm(wide.profiles[:, index]), _rdm(narrow.profiles)
    n = len(shared)
    i, j = np.triu_indices(n, 1)
    squares = []
    for vector in (human, a, b):
        m = np.zeros((n, n))
        m[i, j] = m[j, i] = vector
        squares.append(m)
    rng = np.random.default_rng(SEED)
    differences = []
    for _ in range(N_BOOT):
        draw = rng.integers(0, n, n)
        keep = draw[i] != draw[j]
        r, c = draw[i][keep], draw[j][keep]
        t, x, y = (m[r, c] for m in squares)
        differences.append(stats.kendalltau(t, x).statistic - stats.kendalltau(t, y).statistic)
    differences = np.array(differences)
    tau_a, tau_b = stats.kendalltau(human, a).statistic, stats.kendalltau(human, b).statistic
    assert test["difference"] == pytest.approx(tau_a - tau_b, abs=1e-12)
    assert (test["ci_low"], test["ci_high"]) == pytest.approx(tuple(np.quantile(differences, [0.025, 0.975])))
    far = min((differences <= 0).sum(), (differences >= 0).sum())
    assert test["p"] == pytest.approx(min(1.0, 2 * (1 + far) / (1 + N_BOOT)))
    printed = json.loads(result.output)
    assert printed["tests"][0]["p"] == pytest.approx(test["p"]) and printed["seed"] == SEED


def test_compare_prints_a_table_and_a_rerun_replaces_its_rows(two) -> None:
    lake, wide, narrow = two
    for _ in range(2):
        result = _run(lake, "compare", "--run-sets", "wide,narrow", "--study", wide.study, "--bootstrap", "20")
        assert result.exit_code == 0, result.output
    assert "wide" in result.output and "narrow" in result.output and "paired bootstrap" in result.output
    assert query(lake, "SELECT count(*) FROM model_comparison").column(0)[0].as_py() == 2
    assert query(lake, "SELECT count(*) FROM model_comparison_tests").column(0)[0].as_py() == 1
    seed = query(lake, "SELECT seed, params FROM analyses WHERE analysis = 'compare'").to_pylist()[0]
    assert seed["seed"] == 0 and json.loads(seed["params"])["run_sets"] == ["wide", "narrow"]


def test_compare_without_stored_rsa_or_with_bad_names_fails_cleanly(two) -> None:
    lake, wide, _ = two
    before = tree_hashes(lake.root)
    missing = _run(lake, "compare", "--run-sets", "wide,narrow", "--study", wide.study, "--metric", "cosine")
    assert missing.exit_code == 2 and "emolake rsa --study" in missing.output and "cosine" in missing.output
    assert _run(lake, "compare", "--run-sets", "wide,nope", "--study", wide.study).exit_code == 2
    assert _run(lake, "compare", "--run-sets", "wide,wide", "--study", wide.study).exit_code == 2
    assert _run(lake, "compare", "--run-sets", "wide,", "--study", wide.study).exit_code == 2
    assert _run(lake, "compare", "--run-sets", "wide", "--study", "x'; DROP VIEW runs; --").exit_code == 2
    assert tree_hashes(lake.root) == before
