"""The RDM views (emotion_profile, model_rdm, attribute_rdm) equal the Python definitions on a synthetic lake."""

from __future__ import annotations

import numpy as np
import pytest

from emolake.analysis.lake_inputs import attribute_values, emotion_profiles, human_rdm, rater_rdms
from emolake.analysis.rdm import model_rdm, pair_indices, rdm
from emolake.warehouse.database import query

from analysis_lake import write_synthetic


@pytest.fixture
def toy(lake):
    return lake, write_synthetic(lake)


def test_emotion_profile_averages_single_label_stimuli_only(toy) -> None:
    lake, s = toy
    rows = query(lake, "SELECT run_id, emotion, neuron, value, n_stimuli FROM emotion_profile").to_pylist()
    assert {r["n_stimuli"] for r in rows if r["emotion"] != "neutral"} == {2}  # the multi-label stimulus is left out
    assert any(r["emotion"] == "neutral" for r in rows)
    profiles = emotion_profiles(lake, s.run_set)
    assert profiles.emotions == s.emotions and profiles.run_ids == s.run_ids
    assert np.allclose(profiles.values, s.profiles, atol=1e-12)
    assert profiles.neurons.tolist() == list(range(s.n_layers * s.d_ff))
    assert profiles.layers.tolist() == [n // s.d_ff for n in range(s.n_layers * s.d_ff)]


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "cosine"])
def test_model_rdm_view_equals_python_rdm_averaged_over_runs(toy, metric: str) -> None:
    lake, s = toy
    rows = query(lake, f"""SELECT emotion_a, emotion_b, distance, n_runs FROM model_rdm
                          WHERE run_set = '{s.run_set}' AND metric = '{metric}' ORDER BY emotion_a, emotion_b""").to_pylist()
    assert len(rows) == len(s.emotions) * (len(s.emotions) - 1) // 2
    assert {r["n_runs"] for r in rows} == {len(s.run_ids)}
    expected = model_rdm(s.profiles, metric)
    assert np.allclose([r["distance"] for r in rows], expected, atol=1e-9)


def test_attribute_rdm_view_equals_python_absolute_differences(toy) -> None:
    lake, s = toy
    attributes = attribute_values(lake, s.study)
    expected = rdm(attributes.values, "absolute")  # [pairs, attributes]
    for k, attribute in enumerate(attributes.attributes):
        rows = query(lake, f"""SELECT distance FROM attribute_rdm WHERE study = '{s.study}'
                              AND attribute = '{attribute}' ORDER BY emotion_a, emotion_b""").column(0).to_pylist()
        assert np.allclose(rows, expected[:, k])


def test_human_rdm_and_rater_rdms_exclude_neutral_and_agree(toy) -> None:
    lake, s = toy
    mean = human_rdm(lake, s.study, s.emotions)
    raters, per_rater = rater_rdms(lake, s.study, s.emotions)
    assert len(raters) == 5 and per_rater.shape == (5, len(mean))
    assert np.allclose(per_rater.mean(axis=0), mean)
    i, j = pair_indices(len(s.emotions))
    assert all(s.emotions[a] < s.emotions[b] for a, b in zip(i, j))
