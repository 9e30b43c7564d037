"""Ratings, attribute tables and similarity judgments written by the user, loaded through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from emolake.cli import cli
from ingest_samples import rows, run
from emolake.warehouse.lake import Lake


def test_ratings_with_row_bounds_and_raters_rating_different_emotions(lake: Lake, tmp_path: Path) -> None:
    """Raters may rate different emotions; each rater's own emotions x attributes is complete."""
    path = tmp_path / "r.csv"
    path.write_text("rater,emotion,attribute,rating,scale_min,scale_max\n"
                    "a, Joy ,valence,7,1,7\na,joy,arousal,2,1,7\n"
                    "b,anger,valence,1,1,7\nb,anger,arousal,6,1,7\nb,joy,valence,5,1,7\nb,joy,arousal,4,1,7\n")
    summary = json.loads(run(lake, "ratings", str(path), "--study", "mine", "--instrument", "survey", "--json").output)
    assert summary == {**summary, "rows": 6, "raters": 2, "emotions": 2, "attributes": 2}
    means = rows(lake, "SELECT emotion, attribute, mean_rating, n_raters FROM rating_means "
                       "WHERE study = 'mine' AND instrument = 'survey' ORDER BY 1, 2")
    assert means[2:] == [{"emotion": "joy", "attribute": "arousal", "mean_rating": 3.0, "n_raters": 2},
                         {"emotion": "joy", "attribute": "valence", "mean_rating": 6.0, "n_raters": 2}]
    assert rows(lake, "SELECT DISTINCT scale_max FROM ratings") == [{"scale_max": 7.0}]


def test_ratings_from_parquet(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"rater": ["a", "a"], "emotion": ["fear", "fear"], "attribute": ["x", "y"],
                             "rating": [1.5, 9.0]}), path)
    run(lake, "ratings", str(path), "--study", "pq")
    assert rows(lake, "SELECT sum(rating) AS s FROM ratings WHERE study = 'pq'") == [{"s": 10.5}]


def test_custom_emotion_set(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("rater,emotion,attribute,rating\na,Schadenfreude,valence,5\n")
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(path), "--study", "x"])
    assert result.exit_code == 2 and "unknown emotion" in result.output
    names = tmp_path / "names.txt"
    names.write_text("schadenfreude\nsaudade\n")
    run(lake, "ratings", str(path), "--study", "x", "--emotions", str(names))
    assert rows(lake, "SELECT emotion FROM ratings") == [{"emotion": "schadenfreude"}]


def test_long_and_wide_attribute_tables_load_the_same(lake: Lake, tmp_path: Path) -> None:
    long = tmp_path / "long.csv"
    long.write_text("emotion,attribute,value\njoy,valence,0.9\njoy,arousal,0.6\nanger,valence,0.1\nanger,arousal,0.8\n")
    wide = tmp_path / "wide.csv"
    wide.write_text("emotion,valence,arousal\njoy,0.9,0.6\nanger,0.1,0.8\n")
    run(lake, "attributes", str(long), "--study", "long")
    run(lake, "attributes", str(wide), "--study", "wide")
    got = {s: rows(lake, f"SELECT emotion, attribute, value FROM emotion_attributes WHERE study = '{s}' ORDER BY 1, 2")
           for s in ("long", "wide")}
    assert got["long"] == got["wide"] and len(got["long"]) == 4


def test_similarity_is_converted_to_distance_and_pairs_ordered(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("rater,emotion_a,emotion_b,similarity\nr1,Joy,anger,9\nr2,anger,joy,1\nr1,fear,anger,4\n")
    run(lake, "similarity", str(path), "--study", "sim", "--scale-min", "1", "--scale-max", "9")
    got = rows(lake, "SELECT rater, emotion_a, emotion_b, distance FROM similarity_judgments ORDER BY 1, 2, 3")
    assert got == [{"rater": "r1", "emotion_a": "anger", "emotion_b": "fear", "distance": 6.0},
                   {"rater": "r1", "emotion_a": "anger", "emotion_b": "joy", "distance": 1.0},
                   {"rater": "r2", "emotion_a": "anger", "emotion_b": "joy", "distance": 9.0}]


def test_human_rdm_is_the_mean_over_raters_without_neutral(lake: Lake, tmp_path: Path) -> None:
    """Checked against a brute-force mean over random judgments (some pairs missing for some raters)."""
    rng = np.random.default_rng(7)
    emotions = ["anger", "fear", "joy", "love", "neutral"]
    lines, expected = ["rater,emotion_a,emotion_b,distance"], {}
    for rater in range(6):
        for i in range(len(emotions)):
            for j in range(i + 1, len(emotions)):
                if rng.random() < 0.2:
                    continue
                d = float(rng.integers(0, 9))
                a, b = (emotions[j], emotions[i]) if rng.random() < 0.5 else (emotions[i], emotions[j])
                lines.append(f"r{rater},{a},{b},{d}")
                expected.setdefault((emotions[i], emotions[j]), []).append(d)
    path = tmp_path / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    run(lake, "similarity", str(path), "--study", "rdm")
    got = {(r["emotion_a"], r["emotion_b"]): r for r in rows(lake, "SELECT * FROM human_rdm WHERE study = 'rdm'")}
    want = {k: v for k, v in expected.items() if "neutral" not in k}
    assert set(got) == set(want)
    for key, values in want.items():
        assert got[key]["n_raters"] == len(values)
        np.testing.assert_allclose(got[key]["distance"], np.mean(values))


def test_the_embedded_published_figures_load_with_the_generic_readers(lake: Lake) -> None:
    """The package's embedded data (published means, no rater column) goes through the same readers."""
    from emolake.ingest import embedded

    run(lake, "attributes", str(embedded.attributes_path()), "--study", "li2024")
    run(lake, "similarity", str(embedded.similarity_path()), "--study", "li2024")
    run(lake, "stimuli", str(embedded.situations_path()), "--label-col", "emotion", "--split-col", "split",
        "--id-col", "stimulus_id", "--dataset", embedded.DATASET)
    assert rows(lake, "SELECT count(*) AS n FROM emotion_attributes WHERE study = 'li2024'") == [{"n": 378}]
    assert rows(lake, "SELECT count(*) AS n, max(n_raters) AS r FROM human_rdm WHERE study = 'li2024'") == [
        {"n": 351, "r": 1}]
    assert rows(lake, "SELECT count(DISTINCT stimulus_id) AS n FROM stimuli") == [{"n": 432}]
