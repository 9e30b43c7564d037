"""Searchlight, counts, top-k neuron sets and RSA on a synthetic lake, through the library and the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from emolake.analysis.fdr import bh_monotone, bh_study
from emolake.analysis.rdm import feature_rdms, rdm, square
from emolake.analysis.searchlight import permutation_null_moments, searchlight_tau
from emolake.cli import cli
from emolake.warehouse.database import query

from analysis_lake import ATTRIBUTES, write_synthetic
from conftest import tree_hashes


@pytest.fixture
def toy(lake):
    return lake, write_synthetic(lake, units=10, n_emotions=9)


def _run(lake, *args: str):
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *args], catch_exceptions=False)
    return result


def test_searchlight_equals_scipy_per_neuron_and_bh_over_all_tests(toy) -> None:
    lake, s = toy
    result = _run(lake, "searchlight", "--run-set", s.run_set, "--study", s.study, "--inference", "asymptotic",
                  "--fdr", "study", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["tests"] == s.n_layers * s.d_ff * len(ATTRIBUTES)

    neuron_rdms = feature_rdms(s.profiles)
    attribute_rdms = rdm(s.attributes, "absolute")
    rows = query(lake, "SELECT neuron, attribute, tau, p, q, q_monotone, q_study FROM searchlight ORDER BY neuron, attribute").to_pylist()
    assert len(rows) == summary["tests"]
    p_all = []
    for row in rows:
        ref = stats.kendalltau(neuron_rdms[:, row["neuron"]],
                               attribute_rdms[:, ATTRIBUTES.index(row["attribute"])],
                               method="asymptotic", alternative="greater")
        assert abs(row["tau"] - ref.statistic) <= 1e-10
        assert row["p"] == pytest.approx(ref.pvalue, rel=1e-9)
        p_all.append(ref.pvalue)
    assert np.allclose([r["q_monotone"] for r in rows], bh_monotone(np.array(p_all)))
    assert np.allclose([r["q_study"] for r in rows], bh_study(np.array(p_all)))
    assert [r["q"] for r in rows] == [r["q_study"] for r in rows]  # --fdr study
    assert query(lake, "SELECT DISTINCT inference FROM searchlight").to_pylist() == [{"inference": "asymptotic"}]
    # the neurons built to track an attribute are found
    best = query(lake, "SELECT attribute, arg_max(neuron, tau) AS neuron FROM searchlight GROUP BY 1 ORDER BY 1").to_pylist()
    assert {r["attribute"]: r["neuron"] for r in best} == {"arousal": 0, "control": 1, "valence": s.d_ff}


def test_searchlight_counts_match_python_counting(toy) -> None:
    lake, s = toy
    assert _run(lake, "searchlight", "--run-set", s.run_set, "--study", s.study, "--alpha", "0.05").exit_code == 0
    rows = query(lake, "SELECT neuron, layer, attribute, q_monotone, q_study FROM searchlight").to_pylist()
    for fdr in ("monotone", "study"):
        sig = {(r["neuron"], r["attribute"]) for r in rows if r[f"q_{fdr}"] < 0.05}
        per_neuron = {}
        for neuron, _ in sig:
            per_neuron[neuron] = per_neuron.get(neuron, 0) + 1
        counts = query(lake, f"""SELECT attribute, n_significant, n_selective FROM searchlight_counts
                                WHERE fdr = '{fdr}' AND alpha = 0.05 AND layer IS NULL AND attribute IS NOT NULL""").to_pylist()
        for c in counts:
            neurons = {n for n, a in sig if a == c["attribute"]}
            assert c["n_significant"] == len(neurons)
            assert c["n_selective"] == sum(per_neuron[n] == 1 for n in neurons)
        total = query(lake, f"""SELECT n_significant, n_selective FROM searchlight_counts
                               WHERE fdr = '{fdr}' AND alpha = 0.05 AND layer IS NULL AND attribute IS NULL""").to_pylist()[0]
        assert total == {"n_significant": len(per_neuron), "n_selective": sum(v == 1 for v in per_neuron.values())}
    answer = query(lake, "SELECT attribute, count(*) AS n FROM searchlight WHERE q < 0.05 GROUP BY attribute")
    assert answer.num_rows >= 1


@pytest.mark.parametrize("scope", ["global", "per_layer"])
def test_attribute_neurons_are_the_top_k_by_tau(toy, scope: str) -> None:
    lake, s = toy
    assert _run(lake, "searchlight", "--run-set", s.run_set, "--study", s.study).exit_code == 0
    result = _run(lake, "neurons", "--run-set", s.run_set, "--study", s.study, "--k", "3,5", "--scope", scope, "--json")
    assert result.exit_code == 0, result.output
    rows = query(lake, "SELECT neuron, layer, attribute, tau FROM searchlight").to_pylist()
    for attribute in ATTRIBUTES:
        for k in (3, 5):
            mine = [r for r in rows if r["attribute"] == attribute]
            groups = [mine] if scope == "global" else [[r for r in mine if r["layer"] == L] for L in range(s.n_layers)]
            expected = set()
            for group in groups:
                ordered = sorted(group, key=lambda r: (-r["tau"], r["neuron"]))
                expected |= {r["neuron"] for r in ordered[:k]}
            got = query(lake, f"""SELECT neuron FROM attribute_neurons WHERE attribute = '{attribute}'
                                 AND k = {k} AND scope = '{scope}'""").column(0).to_pylist()
            assert set(got) == expected and len(got) == len(expected)
    overlap = query(lake, f"SELECT * FROM attribute_neuron_overlap WHERE k = 3 AND scope = '{scope}'")
    assert overlap.num_rows == 3  # every attribute pair, including those that share nothing


def test_rsa_writes_importance_ceiling_and_model_rsa(toy) -> None:
    lake, s = toy
    result = _run(lake, "rsa", "--study", s.study, "--run-set", s.run_set, "--permutations", "99",
                  "--bootstrap", "20", "--seed", "3", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    importance = query(lake, "SELECT attribute, tau, p, p_perm, n_perm FROM attribute_importance ORDER BY 1").to_pylist()
    assert [r["attribute"] for r in importance] == list(ATTRIBUTES)
    assert all(r["n_perm"] == 99 and 0 < r["p_perm"] <= 1 for r in importance)
    targets = query(lake, "SELECT target FROM model_rsa WHERE layer IS NULL ORDER BY 1").column(0).to_pylist()
    assert targets == sorted(["human", "human_raters", *ATTRIBUTES])
    ceiling = query(lake, "SELECT lower, upper, n_raters FROM noise_ceiling").to_pylist()[0]
    assert ceiling["n_raters"] == 5 and ceiling["lower"] < ceiling["upper"]
    seed = query(lake, "SELECT seed FROM analyses WHERE analysis = 'rsa'").column(0).to_pylist()
    assert seed == [3] and summary["seed"] == 3
    terms = query(lake, "SELECT term FROM model_variance_partition ORDER BY 1").column(0).to_pylist()
    assert terms == sorted(["all", "shared", *ATTRIBUTES])
    # another metric and method add their rows; a rerun of the same ones replaces them
    for _ in range(2):
        assert _run(lake, "rsa", "--study", s.study, "--run-set", s.run_set, "--metric", "euclidean", "--method",
                    "spearman", "--permutations", "9", "--bootstrap", "0").exit_code == 0
    kinds = query(lake, "SELECT metric, method, count(*) AS n FROM model_rsa WHERE layer IS NULL "
                        "GROUP BY ALL ORDER BY ALL").to_pylist()
    assert kinds == [{"metric": "correlation", "method": "tau_b", "n": 5}, {"metric": "euclidean", "method": "spearman", "n": 5}]
    methods = query(lake, "SELECT method, count(*) AS n FROM attribute_importance GROUP BY 1 ORDER BY 1").to_pylist()
    assert methods == [{"method": "spearman", "n": 3}, {"method": "tau_b", "n": 3}]


def test_bad_options_fail_cleanly_and_leave_the_lake_unchanged(toy) -> None:
    lake, s = toy
    query(lake, "SELECT 1")  # build the warehouse views first
    before = tree_hashes(lake.root)
    assert _run(lake, "searchlight", "--run-set", "nope", "--study", s.study).exit_code == 2
    assert _run(lake, "searchlight", "--run-set", s.run_set, "--study", s.study, "--alpha", "2").exit_code == 2
    assert _run(lake, "neurons", "--run-set", s.run_set, "--study", s.study).exit_code == 2  # no searchlight yet
    assert _run(lake, "rsa", "--study", "nobody").exit_code == 2
    assert tree_hashes(lake.root) == before
    assert _run(lake, "searchlight", "--run-set", s.run_set, "--study", s.study).exit_code == 0
    result = _run(lake, "neurons", "--run-set", s.run_set, "--study", s.study, "--k", "1,x")
    assert result.exit_code == 2 and "comma-separated" in result.output


def test_rsa_on_a_run_set_covering_part_of_the_study_uses_the_shared_emotions(toy) -> None:
    import pyarrow as pa

    from emolake.analysis.rdm import model_rdm, subset
    from emolake.ingest.emotions import GOEMOTIONS_27

    lake, s = toy
    extra = [e for e in GOEMOTIONS_27 if e not in s.emotions][:2]
    wide = sorted(s.emotions + extra)
    rng = np.random.default_rng(5)
    values = {e: rng.random(len(ATTRIBUTES)) for e in wide}
    with lake.transaction("a wider study") as txn:
        txn.write("emotion_attributes", pa.Table.from_pylist([
            {"emotion": e, "attribute": a, "value": float(values[e][k]), "source": "test"}
            for e in wide for k, a in enumerate(ATTRIBUTES)]), {"study": "wide"})
        txn.write("similarity_judgments", pa.Table.from_pylist([
            {"rater": f"r{r}", "emotion_a": a, "emotion_b": b, "distance": float(rng.integers(1, 10)), "source": "test"}
            for r in range(3) for i, a in enumerate(wide) for b in wide[i + 1:]]), {"study": "wide"})
    result = _run(lake, "rsa", "--study", "wide", "--run-set", s.run_set, "--permutations", "0", "--bootstrap", "0",
                  "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["emotions"] == len(wide)  # the human part uses all of the study's emotions
    human = query(lake, "SELECT emotion_a, emotion_b, distance FROM human_rdm WHERE study = 'wide' ORDER BY 1, 2").to_pylist()
    full = np.array([r["distance"] for r in human])
    expected = stats.kendalltau(subset(full, wide, s.emotions), model_rdm(s.profiles, "correlation")).statistic
    got = query(lake, "SELECT tau FROM model_rsa WHERE study = 'wide' AND target = 'human' AND layer IS NULL"
                ).column(0)[0].as_py()
    assert got == pytest.approx(expected, abs=1e-12)


# --- permutation inference ----------------------------------------------------------------------

def _brute_force_numerator(x: np.ndarray, y: np.ndarray) -> float:
    """Concordant minus discordant pairs of two condensed RDMs, pair of pairs by pair of pairs."""
    return float(sum(np.sign(x[a] - x[b]) * np.sign(y[a] - y[b]) for a, b in itertools.combinations(range(len(x)), 2)))


def test_permutation_null_mean_is_zero_and_moments_equal_full_enumeration() -> None:
    rng = np.random.default_rng(4)
    n = 6  # 720 relabellings, all enumerated
    x = rdm(rng.normal(size=(n, 3)), "absolute")  # [15, 3] neuron RDMs
    y = rdm(np.round(rng.normal(size=(n, 2)), 1), "absolute")  # [15, 2] attribute RDMs, with ties
    perms = np.array(list(itertools.permutations(range(n))))
    variance, third = permutation_null_moments(x, y, perms)
    i, j = np.triu_indices(n, 1)
    for a in range(y.shape[1]):
        full = square(y[:, a], n)
        null = np.array([[_brute_force_numerator(x[:, k], full[p[i], p[j]]) for k in range(x.shape[1])] for p in perms])
        assert null.mean(axis=0) == pytest.approx(0, abs=1e-12)  # the null mean of S is exactly 0
        assert variance[:, a] == pytest.approx((null ** 2).mean(axis=0), rel=1e-12)
        assert third[:, a] == pytest.approx((null ** 3).mean(axis=0), rel=1e-12, abs=1e-9)


def test_permutation_p_agrees_with_a_per_test_permutation_loop() -> None:
    rng = np.random.default_rng(5)
    n, n_perm = 12, 1000
    attributes = rng.normal(size=(n, 2))
    profiles = rng.normal(size=(n, 4))
    profiles[:, 0] = attributes[:, 0] + rng.normal(scale=0.3, size=n)  # one neuron tracks attribute 0
    x, y = rdm(profiles, "absolute"), rdm(attributes, "absolute")
    ours = searchlight_tau(x, y, "permutation", n_perm=n_perm, seed=1)
    i, j = np.triu_indices(n, 1)
    loop_rng = np.random.default_rng(99)  # independent permutations, one test at a time, scipy's tau
    for k in range(x.shape[1]):
        for a in range(y.shape[1]):
            full = square(y[:, a], n)
            observed = stats.kendalltau(x[:, k], y[:, a]).statistic
            null = [stats.kendalltau(x[:, k], full[p[i], p[j]]).statistic
                    for p in (loop_rng.permutation(n) for _ in range(n_perm))]
            brute = (1 + np.sum(np.array(null) >= observed - 1e-12)) / (1 + n_perm)
            assert ours.p[k, a] == pytest.approx(brute, abs=0.02 + 0.1 * brute)
    assert ours.p[0, 0] < 0.05 and ours.inference == "permutation" and ours.n_perm == n_perm and ours.seed == 1


def test_permutation_p_is_calibrated_on_null_data_where_the_asymptotic_p_is_not() -> None:
    rng = np.random.default_rng(6)
    n = 12  # emotions; neurons and attributes independent: every null hypothesis is true
    x = rdm(rng.normal(size=(n, 150)), "absolute")
    y = rdm(rng.normal(size=(n, 40)), "absolute")
    result = searchlight_tau(x, y, "permutation", n_perm=500, seed=0)  # 6,000 tests
    assert 0.035 < np.mean(result.p < 0.05) < 0.065
    assert np.sum(result.q_monotone < 0.01) <= 3
    assert np.mean(result.p_asymptotic < 0.05) > 0.08  # the study's p: pairs treated as independent
    assert np.sum(bh_monotone(result.p_asymptotic) < 0.01) > 20


def test_searchlight_default_is_permutation_recorded_and_reproducible_with_its_seed(toy) -> None:
    lake, s = toy
    args = ["searchlight", "--run-set", s.run_set, "--study", s.study, "--permutations", "50", "--seed", "3"]
    assert _run(lake, *args).exit_code == 0
    first = query(lake, "SELECT neuron, attribute, p, p_asymptotic, inference FROM searchlight ORDER BY 1, 2").to_pylist()
    assert {r["inference"] for r in first} == {"permutation"}
    assert any(r["p"] != r["p_asymptotic"] for r in first)
    record = query(lake, "SELECT params, seed FROM analyses WHERE analysis = 'searchlight'").to_pylist()[0]
    params = json.loads(record["params"])
    assert (params["inference"], params["n_perm"], record["seed"]) == ("permutation", 50, 3)
    assert _run(lake, *args).exit_code == 0
    assert query(lake, "SELECT neuron, attribute, p, p_asymptotic, inference FROM searchlight ORDER BY 1, 2").to_pylist() == first
    assert _run(lake, *args[:-1], "4").exit_code == 0
    assert query(lake, "SELECT neuron, attribute, p, p_asymptotic, inference FROM searchlight ORDER BY 1, 2").to_pylist() != first
