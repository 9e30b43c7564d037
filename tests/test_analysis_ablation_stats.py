"""Ablation statistics against scipy on small random data, the views over them, and the study's release."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from emolake.analysis.ablation_stats import (
    accuracy_drops, attribute_tests, benjamini_hochberg, emotion_tests, fisher_mean_test, importance_correlations,
    importance_tests, refresh_ablation_statistics, render_masking_section,
)
from conftest import tree_hashes
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError

EMOTIONS, ATTRIBUTES, KS = ["anger", "fear", "joy", "love"], ["arousal", "valence", "control", "novelty"], [10, 20]


def results(replicates: list[int], draws: int, shared_controls: bool, seed: int = 0) -> pd.DataFrame:
    """Random accuracies in the ablation_results layout."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in EMOTIONS:
        for r in replicates:
            rows.append((e, None, 0, "unablated", 0, r, rng.uniform(0.8, 0.9)))
            for k in KS:
                for a in ATTRIBUTES:
                    rows.append((e, a, k, "attribute", 0, r, rng.uniform(0.5, 0.8)))
                for a in ([None] if shared_controls else ATTRIBUTES):
                    for d in range(draws):
                        rows.append((e, a, k, "random", d, r, rng.uniform(0.6, 0.85)))
    return pd.DataFrame(rows, columns=["emotion", "attribute", "k", "condition", "draw", "replicate", "accuracy"])


def test_bh_equals_the_brute_force_definition():
    p = np.random.default_rng(3).uniform(size=40) ** 2
    q = benjamini_hochberg(p)
    n = len(p)
    rank = stats.rankdata(p, method="ordinal")
    brute = [min(1.0, min(p[j] * n / rank[j] for j in range(n) if p[j] >= p[i])) for i in range(n)]
    assert np.allclose(q, brute)
    assert np.isnan(benjamini_hochberg(np.array([np.nan, 0.1])))[0]


def test_replicate_pairing_equals_scipy_ttest_rel():
    frame = results(replicates=[1, 2, 3, 4, 5], draws=1, shared_controls=False)
    tests = attribute_tests(frame).set_index(["emotion", "attribute", "k"])
    for e, a, k in [("fear", "valence", 10), ("love", "novelty", 20)]:
        cell = frame[(frame.emotion == e) & (frame.k == k) & (frame.attribute == a)]
        attr = cell[cell.condition == "attribute"].sort_values("replicate")["accuracy"]
        ctrl = cell[cell.condition == "random"].sort_values("replicate")["accuracy"]
        expected = stats.ttest_rel(attr, ctrl, alternative="less")
        row = tests.loc[(e, a, k)]
        assert row["unit"] == "replicate" and row["n"] == 5
        assert math.isclose(row["t"], expected.statistic) and math.isclose(row["p"], expected.pvalue)
    for (a, k), group in tests.reset_index().groupby(["attribute", "k"]):  # BH over emotions
        assert np.allclose(group["q"], benjamini_hochberg(group["p"].to_numpy()))


def test_draw_pairing_with_one_replicate_equals_scipy_ttest_1samp():
    frame = results(replicates=[0], draws=6, shared_controls=True, seed=1)
    tests = attribute_tests(frame, alternative="two-sided").set_index(["emotion", "attribute", "k"])
    a = frame[(frame.emotion == "joy") & (frame.attribute == "control") & (frame.k == 20)]["accuracy"].item()
    controls = frame[(frame.emotion == "joy") & (frame.condition == "random") & (frame.k == 20)]["accuracy"]
    expected = stats.ttest_1samp(a - controls, 0.0)
    row = tests.loc[("joy", "control", 20)]
    assert row["unit"] == "draw" and row["n"] == 6
    assert math.isclose(row["t"], expected.statistic) and math.isclose(row["p"], expected.pvalue)


def test_emotion_level_test_pairs_every_attribute_and_replicate():
    frame = results(replicates=[1, 2, 3], draws=2, shared_controls=False, seed=2)
    tests = emotion_tests(frame).set_index(["emotion", "k"])
    cell = frame[(frame.emotion == "anger") & (frame.k == 10)]
    attr = cell[cell.condition == "attribute"].groupby(["attribute", "replicate"])["accuracy"].mean()
    ctrl = cell[cell.condition == "random"].groupby(["attribute", "replicate"])["accuracy"].mean()
    expected = stats.ttest_rel(attr, ctrl[attr.index], alternative="less")
    assert tests.loc[("anger", 10), "n"] == len(ATTRIBUTES) * 3
    assert math.isclose(tests.loc[("anger", 10), "t"], expected.statistic)
    assert math.isclose(tests.loc[("anger", 10), "p"], expected.pvalue)


def test_importance_link_equals_pearsonr_and_a_fisher_z_ttest():
    frame = results(replicates=[1, 2], draws=1, shared_controls=True, seed=4)
    importance = pd.Series(np.random.default_rng(5).uniform(0, 0.5, len(ATTRIBUTES)), index=ATTRIBUTES)
    drops = accuracy_drops(frame)
    correlations = importance_correlations(drops, importance)
    for e in EMOTIONS:
        unablated = frame[(frame.emotion == e) & (frame.condition == "unablated")]["accuracy"].mean()
        ablated = frame[(frame.emotion == e) & (frame.k == 10) & (frame.condition == "attribute")] \
            .groupby("attribute")["accuracy"].mean()[ATTRIBUTES]
        expected = stats.pearsonr(unablated - ablated, importance[ATTRIBUTES]).statistic
        assert math.isclose(correlations.set_index(["emotion", "k"]).loc[(e, 10), "r"], expected)
    link = importance_tests(correlations).set_index("k").loc[10]
    z = np.arctanh(correlations[correlations.k == 10]["r"].to_numpy())
    t = stats.ttest_1samp(z, 0.0)
    half = stats.t.ppf(0.975, len(z) - 1) * z.std(ddof=1) / math.sqrt(len(z))
    assert math.isclose(link["mean_r"], math.tanh(z.mean()))
    assert math.isclose(link["t"], t.statistic) and math.isclose(link["p"], t.pvalue)
    assert math.isclose(link["ci_low"], math.tanh(z.mean() - half))
    assert math.isclose(link["ci_high"], math.tanh(z.mean() + half))
    assert link["n_emotions_positive"] == int((z > 0).sum())


def test_fisher_test_skips_undefined_correlations():
    out = fisher_mean_test(np.array([0.5, np.nan, -0.1]))
    assert out["n_emotions"] == 2 and out["n_emotions_positive"] == 1


def _write_results(lake, frame: pd.DataFrame, run_set="rs", study="st") -> None:
    frame = frame.assign(condition_id=[
        "unablated" if c == "unablated" else f"{c}:{a or '-'}:k{k}:d{d}"
        for c, a, k, d in zip(frame.condition, frame.attribute, frame.k, frame.draw)])
    with lake.transaction() as txn:
        for k, group in frame.groupby("k"):
            conditions = group.drop_duplicates("condition_id")
            n, m = len(conditions), len(group)
            txn.write("ablations", pa.table({
                "condition_id": conditions.condition_id, "kind": conditions.condition,
                "attribute": conditions.attribute, "draw": conditions.draw.astype("int32"),
                "seed": pa.nulls(n, pa.int64()), "layer_matched": [False] * n, "scope": ["global"] * n,
                "mode": ["zero"] * n, "mode_value": [0.0] * n, "neurons": pa.nulls(n, pa.list_(pa.int32())),
                "source": ["test"] * n}), {"run_set": run_set, "study": study, "k": int(k)})
            txn.write("ablation_accuracy", pa.table({
                "condition_id": group.condition_id, "emotion": group.emotion, "replicate": group.replicate,
                "inference_id": ["i"] * m, "model": ["m"] * m, "dataset": ["d"] * m, "split": ["test"] * m,
                "n_stimuli": [10] * m, "accuracy": group.accuracy}), {"run_set": run_set, "study": study, "k": int(k)})


def test_views_summarise_the_stored_results(lake, monkeypatch):
    import emolake.analysis.ablation_stats as module

    frame = results(replicates=[1, 2, 3], draws=2, shared_controls=True, seed=6)
    _write_results(lake, frame)
    # Fallback human importance until the analysis branch's attribute_importance lands in this lake.
    importance = pd.Series([0.3, 0.1, 0.2, 0.05], index=ATTRIBUTES)
    monkeypatch.setattr(module, "read_importance", lambda lake, study, method=None: (importance, "tau_b"))
    refresh_ablation_statistics(lake, "rs", "st")
    summary = query(lake, "SELECT * FROM ablation_summary WHERE emotion = 'fear' AND attribute = 'valence' "
                          "AND k = 20").to_pylist()[0]
    cell = frame[frame.emotion == "fear"]
    controls = cell[(cell.condition == "random") & (cell.k == 20)]["accuracy"]
    attribute = cell[(cell.attribute == "valence") & (cell.k == 20) & (cell.condition == "attribute")]["accuracy"]
    assert math.isclose(summary["acc_unablated"], cell[cell.condition == "unablated"]["accuracy"].mean())
    assert math.isclose(summary["acc_control_mean"], controls.mean())
    assert math.isclose(summary["acc_control_sd"], controls.std(ddof=1))
    assert math.isclose(summary["delta"], attribute.mean() - controls.mean())
    expected = attribute_tests(frame).set_index(["emotion", "attribute", "k"]).loc[("fear", "valence", 20)]
    assert math.isclose(summary["t"], expected["t"]) and math.isclose(summary["q"], expected["q"])
    link = query(lake, "SELECT * FROM importance_link ORDER BY k").to_pylist()
    assert [r["k"] for r in link] == KS and all(r["n_emotions"] == len(EMOTIONS) for r in link)
    section = render_masking_section(lake, "rs", "st", k=20)
    assert "| fear |" in section and "Accuracy drop vs human attribute importance" in section


# --- The study's released masking results --------------------------------------------------------

def test_released_masking_gives_the_study_statistics(lake, shared_data):
    from emolake.ingest.released_masking import load_released_masking

    summary: dict = {}
    with lake.transaction() as txn:
        load_released_masking(shared_data / "model_emotion", txn, summary)
    assert summary["masking files"] == 648
    counts = {r["condition"]: r["n"] for r in query(
        lake, "SELECT condition, count(*) AS n FROM ablation_results WHERE run_set = 'li2024-roberta' "
              "GROUP BY 1").to_pylist()}
    assert counts == {"unablated": 27 * 12, "attribute": 27 * 12 * 14 * 7, "random": 27 * 12 * 14 * 9}
    path = shared_data / "model_emotion/Result/masking/RoBERTa/RSA_tau_14property/Acc_perSeed_JSON/joy-42.json"
    value = json.loads(path.read_text())["happy_top4000"]
    stored = query(lake, "SELECT accuracy FROM ablation_results WHERE emotion = 'joy' AND replicate = 42 "
                         "AND attribute = 'happy-face' AND k = 4000 AND condition = 'attribute'").column(0)
    assert stored.to_pylist() == [value]
    rows = query(lake, "SELECT * FROM ablation_summary WHERE k = 4000").to_pylist()
    assert len(rows) == 27 * 14 and all(r["n_replicates"] == 12 and r["unit"] == "replicate" for r in rows)


def _release(tmp_path, record: dict, name: str = "joy-1.json"):
    for folder, key in (("RSA_tau_14property", "valence_top500"), ("random", "valence_random500")):
        directory = tmp_path / "rel/Result/masking/RoBERTa" / folder / "Acc_perSeed_JSON"
        directory.mkdir(parents=True, exist_ok=True)
        content = {"sentiment": "joy", "seed": 1, "best": 0.9, key: 0.8, **record.get(folder, {})}
        (directory / name).write_text(json.dumps(content))
    return tmp_path / "rel"


@pytest.mark.parametrize("record,message", [
    ({"RSA_tau_14property": {"valence_top500": 1.7}}, "accuracy out of range"),
    ({"RSA_tau_14property": {"glee_top500": 0.5}}, "unknown key"),
    ({"random": {"best": 0.5}}, "disagree on the unablated accuracy"),
    ({"random": {"seed": 2}}, "file name and contents disagree"),
    ({"RSA_tau_14property": {"valence_top500": "high"}}, "accuracy out of range"),
])
def test_bad_masking_files_are_refused_and_the_lake_is_unchanged(lake, tmp_path, record, message):
    from emolake.ingest.released_masking import load_released_masking

    release = _release(tmp_path, record)
    before = tree_hashes(lake.root)
    with pytest.raises(BadInputError, match=message):
        with lake.transaction() as txn:
            load_released_masking(release, txn, {})
    assert tree_hashes(lake.root) == before


def test_unknown_emotion_file_is_refused(lake, tmp_path):
    from emolake.ingest.released_masking import load_released_masking

    release = _release(tmp_path, {}, name="glee-1.json")
    with pytest.raises(BadInputError, match="unknown emotion"):
        with lake.transaction() as txn:
            load_released_masking(release, txn, {})


def test_drop_definitions_equal_hand_computation_and_differ_with_one_draw_per_attribute():
    frame = results(replicates=[1, 2], draws=1, shared_controls=False, seed=8)
    importance = pd.Series([0.3, 0.1, 0.2, 0.05], index=ATTRIBUTES)
    by_control = accuracy_drops(frame, "vs-control").set_index(["emotion", "attribute", "k"])["drop"]
    by_unablated = accuracy_drops(frame, "vs-unablated").set_index(["emotion", "attribute", "k"])["drop"]
    for e in EMOTIONS:
        cell = frame[frame.emotion == e]
        unablated = cell[cell.condition == "unablated"]["accuracy"].mean()
        for a in ATTRIBUTES:
            ablated = cell[(cell.attribute == a) & (cell.k == 20) & (cell.condition == "attribute")]["accuracy"].mean()
            control = cell[(cell.attribute == a) & (cell.k == 20) & (cell.condition == "random")]["accuracy"].mean()
            assert math.isclose(by_control[(e, a, 20)], control - ablated)  # the study: own random draw - attribute
            assert math.isclose(by_unablated[(e, a, 20)], unablated - ablated)
        r_control = importance_correlations(accuracy_drops(frame, "vs-control"), importance).set_index(["emotion", "k"])
        expected = stats.pearsonr([by_control[(e, a, 20)] for a in ATTRIBUTES], importance[ATTRIBUTES]).statistic
        assert math.isclose(r_control.loc[(e, 20), "r"], expected)
    r_unablated = importance_correlations(accuracy_drops(frame, "vs-unablated"), importance)
    assert not np.allclose(r_control["r"].to_numpy(), r_unablated["r"].to_numpy())
    with pytest.raises(BadInputError):
        accuracy_drops(frame, "vs-nothing")


def test_fisher_test_counts_perfect_and_undefined_correlations_instead_of_averaging_them():
    out = fisher_mean_test(np.array([0.3, 1.0, np.nan, 0.2, -1.0]))
    assert out["n_emotions"] == 2 and out["n_emotions_r_one"] == 2 and out["n_emotions_r_nan"] == 1
    assert math.isclose(out["mean_r"], math.tanh(np.arctanh([0.3, 0.2]).mean()))
    assert out["n_emotions_positive"] == 3  # 0.3, 1.0, 0.2


def test_a_studys_human_data_combines_with_another_studys_ablation_results(lake):
    frame = results(replicates=[1, 2], draws=1, shared_controls=False, seed=9)
    _write_results(lake, frame, study="st")
    m = len(ATTRIBUTES)
    with lake.transaction() as txn:
        txn.write("attribute_importance_results", pa.table({
            "attribute": ATTRIBUTES, "method": ["tau_b"] * m, "tau": [0.3, 0.1, 0.2, 0.05], "p": [0.01] * m,
            "p_perm": [None] * m, "n_perm": [0] * m, "ci_raters_low": [None] * m, "ci_raters_high": [None] * m,
            "n_boot": [0] * m, "n_pairs": [6] * m, "n_raters": [10] * m}), {"study": "other"})
    summary = refresh_ablation_statistics(lake, "rs", "other", drop="vs-unablated")
    assert summary["ablation_study"] == "st" and summary["drop"] == "vs-unablated"
    link = query(lake, "SELECT * FROM importance_link WHERE study = 'other' ORDER BY k").to_pylist()
    assert [r["k"] for r in link] == KS
    assert {(r["drop"], r["ablation_study"]) for r in link} == {("vs-unablated", "st")}
    expected = importance_tests(importance_correlations(
        accuracy_drops(frame, "vs-unablated"), pd.Series([0.3, 0.1, 0.2, 0.05], index=ATTRIBUTES)))
    assert np.allclose([r["mean_r"] for r in link], expected["mean_r"])
