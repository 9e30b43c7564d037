"""`ingest model-emotion`: a tiny release written by the tests, and the real release in ../shared/data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import pearsonr

from emolake.cli import cli
from emolake.ingest import release as release_module
from emolake.ingest.release import lower_tri_pairs
from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake

from conftest import tree_hashes
from ingest_samples import release_expectations, write_tiny_release


@pytest.fixture(autouse=True)
def human_parts_only(monkeypatch) -> None:
    """Only this package's release parts: parts other packages add (activations) have their own tests."""
    monkeypatch.setattr(release_module, "RELEASE_PARTS", list(release_module.HUMAN_PARTS))


def run(lake: Lake, *args: str):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), *args], catch_exceptions=False)


def rows(lake: Lake, sql: str) -> list[tuple]:
    table = query(lake, sql)
    return [tuple(r.values()) for r in table.to_pylist()]


@pytest.fixture
def tiny_release(tmp_path: Path) -> Path:
    return write_tiny_release(tmp_path / "model_emotion", seed=3)


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "csv.gz"])
def test_tiny_release_loads_with_the_study_exclusion_rules(lake: Lake, tmp_path: Path, gz: bool) -> None:
    tiny_release = write_tiny_release(tmp_path / "model_emotion", seed=3, gz=gz)
    result = run(lake, "ingest", "model-emotion", str(tiny_release), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for key, value in release_expectations().items():
        assert summary[key] == value, key
    excluded = dict(((i, r), why) for i, r, why in rows(lake, "SELECT instrument, rater, reason FROM rater_exclusions"))
    assert "catch item 28_Valence_1 = 4" in excluded[("affective", "aff-bad")]
    assert "language 'DE'" in excluded[("physical", "phy-nolang")]
    assert "42_Item_1 = 6" in excluded[("appraisal", "app-catch")]
    assert "n/a" in excluded[("appraisal", "app-noevent")]
    assert "no responses" in excluded[("similarity", "pnone")]
    assert rows(lake, "SELECT count(*) FROM emotion_attributes WHERE study = 'li2024'") == [(378,)]
    # -99 is stored as NULL, and the physical items are named like the published table.
    assert rows(lake, "SELECT count(*) FROM ratings WHERE instrument = 'appraisal' AND rating IS NULL") == [(4,)]
    attributes = {r[0] for r in rows(lake, "SELECT DISTINCT attribute FROM ratings WHERE instrument = 'physical'")}
    assert attributes == {"happy-face", "anger-face", "sad-face", "fear-face", "surprise-face", "disgust-face"}


def test_raw_logs_and_preprocessed_files_give_the_same_human_rdm(lake: Lake, tiny_release: Path) -> None:
    """The pair-index mapping (combinations over emotions.txt) agrees with the lower.tri files exactly."""
    assert run(lake, "ingest", "model-emotion", str(tiny_release)).exit_code == 0
    got = {}
    for study in ("li2024", "li2024-preprocessed", "li2024-preprocessed-avg"):
        got[study] = dict(((a, b), d) for a, b, d in rows(
            lake, f"SELECT emotion_a, emotion_b, distance FROM human_rdm WHERE study = '{study}'"))
        assert len(got[study]) == 351
        assert all(a < b and "neutral" not in (a, b) for a, b in got[study])
    keys = sorted(got["li2024"])
    for other in ("li2024-preprocessed", "li2024-preprocessed-avg"):
        np.testing.assert_allclose([got["li2024"][k] for k in keys], [got[other][k] for k in keys], atol=1e-9)


def test_neutral_pairs_are_kept_in_judgments_but_not_in_the_rdm(lake: Lake, tiny_release: Path) -> None:
    assert run(lake, "ingest", "model-emotion", str(tiny_release)).exit_code == 0
    neutral = rows(lake, "SELECT count(*) FROM similarity_judgments WHERE study = 'li2024' AND emotion_b = 'neutral'")
    assert neutral[0][0] > 0
    assert rows(lake, "SELECT count(*) FROM similarity_judgments WHERE emotion_a >= emotion_b") == [(0,)]


def test_reloading_the_release_replaces_its_partitions(lake: Lake, tiny_release: Path) -> None:
    assert run(lake, "ingest", "model-emotion", str(tiny_release)).exit_code == 0
    counts = rows(lake, "SELECT study, count(*) FROM similarity_judgments GROUP BY 1 ORDER BY 1")
    ratings = rows(lake, "SELECT count(*) FROM ratings")
    assert run(lake, "ingest", "model-emotion", str(tiny_release)).exit_code == 0
    assert rows(lake, "SELECT study, count(*) FROM similarity_judgments GROUP BY 1 ORDER BY 1") == counts
    assert rows(lake, "SELECT count(*) FROM ratings") == ratings
    reports = [json.loads(p.read_text()) for p in (lake.root / "validation").rglob("*.json")]
    assert reports and all(r["source_path"] for r in reports)
    assert all(r["great_expectations"]["success"] for r in reports if r["great_expectations"] is not None)


def test_release_parts_run_in_one_transaction(lake: Lake, tiny_release: Path, monkeypatch) -> None:
    """An added part that fails undoes every part before it."""
    def broken_part(release, txn, summary):
        raise release_module.BadInputError("broken part", file=str(release))

    monkeypatch.setattr(release_module, "RELEASE_PARTS", [*release_module.RELEASE_PARTS, broken_part])
    before = tree_hashes(lake.root)
    result = run(lake, "ingest", "model-emotion", str(tiny_release))
    assert result.exit_code == 2 and "broken part" in result.output
    assert tree_hashes(lake.root) == before


# --- the real release and GoEmotions (../shared/data) ---------------------------------------------------


@pytest.fixture(scope="module")
def real_lake(shared_data: Path, tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("real") / "lake")
    lake.init()
    with pytest.MonkeyPatch.context() as patch:  # module scope: the autouse fixture does not reach here
        patch.setattr(release_module, "RELEASE_PARTS", list(release_module.HUMAN_PARTS))
        for args in (["model-emotion", str(shared_data / "model_emotion")],
                     ["goemotions", str(shared_data / "goemotions")]):
            result = run(lake, "ingest", *args, "--json")
            assert result.exit_code == 0, result.output
    return lake


def test_real_release_done_when_counts(real_lake: Lake) -> None:
    assert rows(real_lake, "SELECT count(*) FROM emotion_attributes WHERE study = 'li2024'") == [(378,)]
    assert rows(real_lake, "SELECT count(*) FROM human_rdm WHERE study = 'li2024'") == [(351,)]
    assert rows(real_lake, "SELECT count(DISTINCT stimulus_id) FROM stimuli WHERE dataset = 'goemotions'") == [(54263,)]
    emotions = {a for a, in rows(real_lake, "SELECT emotion_a FROM human_rdm WHERE study = 'li2024'")}
    emotions |= {b for b, in rows(real_lake, "SELECT emotion_b FROM human_rdm WHERE study = 'li2024'")}
    assert len(emotions) == 27 and "neutral" not in emotions


def test_real_exclusions_follow_the_study_rules(real_lake: Lake) -> None:
    raters = dict(rows(real_lake, "SELECT instrument, count(DISTINCT rater) FROM ratings WHERE study = 'li2024' GROUP BY 1"))
    assert raters["affective"] == 30 and raters["physical"] == 30  # 35 and 36 minus catch failures
    assert 290 <= raters["appraisal"] <= 300
    excluded = dict(rows(real_lake, "SELECT instrument, count(*) FROM rater_exclusions GROUP BY 1"))
    assert excluded["affective"] == 5 and excluded["physical"] == 6


def test_real_raw_ratings_reproduce_the_published_table(real_lake: Lake) -> None:
    """Per-emotion means of the kept raters, min-max rescaled, equal the published 0-1 attributes."""
    means = rows(real_lake, """
        SELECT m.attribute, m.emotion, m.mean_rating, a.value FROM rating_means m
        JOIN emotion_attributes a ON a.study = m.study AND a.emotion = m.emotion AND a.attribute = m.attribute
        WHERE m.study = 'li2024' AND m.instrument IN ('affective', 'physical') ORDER BY 1, 2""")
    assert len(means) == 27 * 8
    for attribute in {m[0] for m in means}:
        raw = np.array([m[2] for m in means if m[0] == attribute])
        published = np.array([m[3] for m in means if m[0] == attribute])
        np.testing.assert_allclose((raw - raw.min()) / (raw.max() - raw.min()), published, atol=1e-9)


def test_real_raw_judgments_match_the_authors_average(real_lake: Lake, shared_data: Path) -> None:
    """Raw PsychoPy logs via the combination-order pair index vs the authors' avg_dist file."""
    release = shared_data / "model_emotion"
    order = [line.strip() for line in (release / release_module.REORDERED).read_text().split() if line.strip()]
    authors = np.loadtxt(release / release_module.AVG_DIST, skiprows=1)
    raw = dict(((a, b), d) for a, b, d in rows(
        real_lake, "SELECT emotion_a, emotion_b, distance FROM human_rdm WHERE study = 'li2024'"))
    ours = np.array([raw[tuple(sorted(pair))] for pair in lower_tri_pairs(order)])
    r, _ = pearsonr(ours, authors)
    assert r > 0.995
    # The authors' per-person file averages to their avg file.
    pre = dict(((a, b), d) for a, b, d in rows(
        real_lake, "SELECT emotion_a, emotion_b, distance FROM human_rdm WHERE study = 'li2024-preprocessed'"))
    np.testing.assert_allclose([pre[tuple(sorted(p))] for p in lower_tri_pairs(order)], authors, atol=1e-9)


def test_real_release_as_gzip_loads_the_same(real_lake: Lake, shared_data: Path, tmp_path: Path) -> None:
    """A checkout whose CSVs are gzipped (`.csv.gz`) gives the same published table."""
    import gzip

    release = tmp_path / "model_emotion"
    source = shared_data / "model_emotion"
    for rel in (release_module.EMOTIONS_TXT, release_module.REORDERED, release_module.SCORES):
        target = release / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".csv"):
            target.with_name(target.name + ".gz").write_bytes(gzip.compress((source / rel).read_bytes()))
        else:
            shutil.copy(source / rel, target)
    lake = Lake(tmp_path / "lake")
    lake.init()
    summary: dict = {}
    with lake.transaction("test") as txn:
        release_module.published_attributes(release, txn, summary)
    assert summary["attributes"] == 378
    got = rows(lake, "SELECT emotion, attribute, value FROM emotion_attributes WHERE study = 'li2024' ORDER BY 1, 2")
    want = rows(real_lake, "SELECT emotion, attribute, value FROM emotion_attributes WHERE study = 'li2024' ORDER BY 1, 2")
    assert got == want
    for study in ("li2024-preprocessed", "li2024-preprocessed-avg"):  # the same study's attribute table
        assert rows(lake, f"SELECT emotion, attribute, value FROM emotion_attributes WHERE study = '{study}' "
                          "ORDER BY 1, 2") == want
