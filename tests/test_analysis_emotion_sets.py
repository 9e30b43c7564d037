"""Any emotion set, any attribute set: names with spaces and case (Cowen & Keltner's 34 categories),
and RSA on a study with attribute values but no similarity judgments."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from emolake.analysis.rdm import model_rdm, rdm
from emolake.cli import cli
from emolake.ingest.emotions import emotion_set, normalise_emotion
from emolake.warehouse.database import query

from analysis_lake import write_synthetic

CK_DIMENSIONS = ("approach", "arousal", "attention", "certainty", "commitment", "control", "dominance", "effort",
                 "fairness", "identity", "obstruction", "safety", "upswing", "valence")


def test_names_with_spaces_case_and_hyphens_have_one_normal_form(tmp_path) -> None:
    assert emotion_set("Empathic Pain, aesthetic  appreciation,joy") == ("empathic_pain", "aesthetic_appreciation", "joy")
    names = tmp_path / "names.txt"
    names.write_text("Empathic Pain\n  Sexual Desire \n\nself-conscious emotion\n")
    assert emotion_set(str(names)) == ("empathic_pain", "sexual_desire", "self_conscious_emotion")
    assert normalise_emotion("empathic-pain") == normalise_emotion(" EMPATHIC PAIN") == "empathic_pain"


def _cowen_keltner_attributes(shared_data, tmp_path) -> tuple[pd.DataFrame, list[str]]:
    """Per-category attribute table: the mean of each dimension over videos, weighted by the share
    of raters who chose the category; written as a wide CSV with the categories' own names."""
    videos = pd.read_csv(shared_data / "cowen_keltner" / "CowenKeltnerEmotionalVideos.csv")
    categories = list(videos.columns[1:35])
    weights = videos[categories].to_numpy()  # [n_videos, 34]
    dims = videos[list(CK_DIMENSIONS)].to_numpy()  # [n_videos, 14]
    table = pd.DataFrame(weights.T @ dims / weights.sum(axis=0)[:, None], columns=CK_DIMENSIONS)
    table.insert(0, "emotion", categories)
    return table, categories


@pytest.mark.slow
def test_rsa_on_cowen_keltner_attributes_without_similarity_judgments(lake, shared_data, tmp_path) -> None:
    table, categories = _cowen_keltner_attributes(shared_data, tmp_path)
    assert "Aesthetic Appreciation" in categories and "Empathic Pain" in categories and len(categories) == 34
    path = tmp_path / "ck_attributes.csv"
    table.to_csv(path, index=False)
    names = tmp_path / "ck_emotions.txt"
    names.write_text("\n".join(categories) + "\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["--lake", str(lake.root), "ingest", "attributes", str(path), "--study", "ck",
                                 "--emotions", str(names)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    stored = query(lake, "SELECT DISTINCT emotion FROM emotion_attributes WHERE study = 'ck' ORDER BY 1").column(0)
    normal = sorted(normalise_emotion(c) for c in categories)
    assert stored.to_pylist() == normal and "aesthetic_appreciation" in normal

    s = write_synthetic(lake, units=4, emotions=normal, run_set="ck-model")  # a model run over the 34 categories
    result = runner.invoke(cli, ["--lake", str(lake.root), "rsa", "--study", "ck", "--run-set", s.run_set,
                                 "--permutations", "0", "--bootstrap", "0", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["emotions"] == 34
    assert set(summary["skipped"]) == {"attribute_importance", "noise_ceiling", "model_vs_human"}
    assert all("no similarity judgments" in reason for reason in summary["skipped"].values())
    rows = query(lake, "SELECT target, tau FROM model_rsa WHERE study = 'ck' ORDER BY target").to_pylist()
    assert [r["target"] for r in rows] == sorted(CK_DIMENSIONS)
    values = table.assign(emotion=table["emotion"].map(normalise_emotion)).sort_values("emotion")
    model = model_rdm(s.profiles, "correlation")
    for row in rows:
        expected = stats.kendalltau(model, rdm(values[[row["target"]]].to_numpy(), "absolute")[:, 0]).statistic
        assert row["tau"] == pytest.approx(expected, abs=1e-12)
    assert query(lake, "SELECT count(*) FROM attribute_importance WHERE study = 'ck'").column(0)[0].as_py() == 0


def test_rsa_without_attributes_computes_the_human_parts_and_says_what_it_skipped(lake) -> None:
    s = write_synthetic(lake, units=3)
    with lake.transaction() as txn:  # the same judgments under a study without an attribute table
        judgments = query(lake, "SELECT rater, emotion_a, emotion_b, distance, source FROM similarity_judgments")
        txn.write("similarity_judgments", judgments, {"study": "judged-only"})
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "rsa", "--study", "judged-only", "--run-set",
                                      s.run_set, "--permutations", "0", "--bootstrap", "0", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary["skipped"]) == {"attribute_importance", "model_vs_attributes"}
    assert summary["noise_ceiling"] is not None and "model_vs_human" in summary
    assert query(lake, "SELECT DISTINCT target FROM model_rsa WHERE study = 'judged-only' ORDER BY 1").column(0).to_pylist() \
        == ["human", "human_raters"]
