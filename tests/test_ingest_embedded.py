"""The embedded default data: written situations (counts, split, no label leakage, not copied from
GoEmotions) and the study's published figures (equal to the release's files where present)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from emolake.ingest import embedded
from emolake.ingest.embedded import build_embedded
from emolake.ingest.emotions import GOEMOTIONS_27, normalise_emotion

# Word stems that name each emotion outright; a situation should evoke its emotion without them.
NAMING_STEMS = {
    "admiration": ["admir"], "amusement": ["amus"], "anger": ["anger", "angry"], "annoyance": ["annoy"],
    "approval": ["approv"], "caring": ["caring"], "confusion": ["confus"], "curiosity": ["curio"],
    "desire": ["desir"], "disappointment": ["disappoint"], "disapproval": ["disapprov"], "disgust": ["disgust"],
    "embarrassment": ["embarrass"], "excitement": ["excit"], "fear": ["fear", "afraid", "scared"],
    "gratitude": ["gratitude", "grateful", "thankful"], "grief": ["grief", "griev"], "joy": ["joy"],
    "love": ["love"], "nervousness": ["nervous"], "optimism": ["optimis"], "pride": ["pride", "proud"],
    "realization": ["realiz", "realis"], "relief": ["relie"], "remorse": ["remorse"], "sadness": ["sad"],
    "surprise": ["surpris"],
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def situations() -> list[dict[str, str]]:
    return read_csv(embedded.situations_path())


def test_situations_have_16_per_emotion_split_10_2_4(situations):
    assert list(situations[0]) == ["stimulus_id", "text", "emotion", "split"]
    assert Counter(r["emotion"] for r in situations) == {e: 16 for e in GOEMOTIONS_27}
    for emotion in GOEMOTIONS_27:
        splits = Counter(r["split"] for r in situations if r["emotion"] == emotion)
        assert splits == {"train": 10, "dev": 2, "test": 4}, emotion


def test_situations_are_unique_clean_single_sentences(situations):
    assert len({r["stimulus_id"] for r in situations}) == len(situations)
    assert len({r["text"].strip().lower() for r in situations}) == len(situations)
    for r in situations:
        text = r["text"]
        assert text == text.strip() and 20 <= len(text) <= 200, r
        assert normalise_emotion(r["emotion"]) == r["emotion"]
        assert "\n" not in text and text[-1] in ".!?", r


def test_situations_rarely_name_their_own_emotion(situations):
    leaks = [
        r["text"] for r in situations
        if any(re.search(r"\b" + stem, r["text"].lower()) for stem in NAMING_STEMS[r["emotion"]])
    ]
    assert len(leaks) <= len(situations) // 20, leaks  # at most 5%


def test_situations_are_not_goemotions_texts(situations, shared_data):
    folder = shared_data / "goemotions"
    if not folder.is_dir():
        pytest.skip(f"GoEmotions not found at {folder}")
    ours = {r["text"].strip().lower() for r in situations}
    copied = []
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        with open(folder / name, encoding="utf-8") as handle:
            for line in handle:
                text = line.split("\t", 1)[0].strip().lower()
                if text in ours:
                    copied.append(text)
    assert copied == []


def test_study_figures_have_the_published_shape():
    attributes = read_csv(embedded.attributes_path())
    assert len(attributes) == 27 * 14
    assert {r["emotion"] for r in attributes} == set(GOEMOTIONS_27)
    assert Counter(r["emotion"] for r in attributes) == {e: 14 for e in GOEMOTIONS_27}
    assert all(-1e-12 <= float(r["value"]) <= 1.0 + 1e-12 for r in attributes)  # rescaled to 0-1 (float noise)
    pairs = read_csv(embedded.similarity_path())
    assert len(pairs) == 351
    assert all(r["emotion_a"] < r["emotion_b"] for r in pairs)
    assert len({(r["emotion_a"], r["emotion_b"]) for r in pairs}) == 351
    assert all(1.0 <= float(r["distance"]) <= 9.0 for r in pairs)  # 10 - a 1-9 rating


def test_lower_tri_order_is_column_major():
    # R: which(lower.tri(matrix(0, 3, 3)), arr.ind = TRUE) gives (2,1), (3,1), (3,2).
    assert build_embedded.lower_tri_pairs(["x", "y", "z"]) == [("y", "x"), ("z", "x"), ("z", "y")]


def test_study_figures_equal_the_release(shared_data):
    release = shared_data / "model_emotion"
    if not (release / build_embedded.ATTRIBUTES_FILE).exists():
        pytest.skip(f"the study's release not found at {release}")
    order = build_embedded.emotion_order(release)
    header, *matrix = build_embedded._read_rows(release / build_embedded.ATTRIBUTES_FILE)
    embedded_attributes = {(r["emotion"], r["attribute"]): float(r["value"])
                           for r in read_csv(embedded.attributes_path())}
    for emotion, values in zip(order, matrix):
        for attribute, value in zip(header, values):
            assert embedded_attributes[(emotion, attribute)] == float(value)
    _, *distances = build_embedded._read_rows(release / build_embedded.DISTANCES_FILE)
    embedded_pairs = {(r["emotion_a"], r["emotion_b"]): float(r["distance"])
                      for r in read_csv(embedded.similarity_path())}
    for (first, second), (value,) in zip(build_embedded.lower_tri_pairs(order), distances):
        assert embedded_pairs[tuple(sorted((first, second)))] == float(value)


def test_wheel_ships_the_embedded_files(tmp_path):
    repo = Path(__file__).resolve().parent.parent
    source = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    top_level = {".git", ".venv", "lake", "build", "report", ".pytest_cache"}  # a clone's outputs, at its root only

    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder) == repo
        return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (at_root and n in top_level)}

    shutil.copytree(repo, source, ignore=ignore)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wheel = next(tmp_path.glob("emolake-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("situations.csv", "study_attributes.csv", "study_similarity.csv", "CITATION.md", "LICENSE-DATA"):
        assert f"emolake/ingest/embedded/{name}" in names


def ingest_embedded(lake) -> None:
    """The embedded files through the ingest readers, as the demo loads them."""
    from click.testing import CliRunner

    from emolake.cli import cli

    runner = CliRunner()
    for args in (
        ["stimuli", str(embedded.situations_path()), "--layout", "table", "--text-col", "text", "--label-col",
         "emotion", "--split-col", "split", "--id-col", "stimulus_id", "--dataset", embedded.DATASET],
        ["attributes", str(embedded.attributes_path()), "--study", embedded.STUDY],
        ["similarity", str(embedded.similarity_path()), "--study", embedded.STUDY],
    ):
        result = runner.invoke(cli, ["--lake", str(lake.root), "ingest", *args])
        assert result.exit_code == 0, result.output


def test_embedded_files_load_through_the_ingest_readers(lake):
    from emolake.warehouse.database import query

    ingest_embedded(lake)
    counts = query(lake, f"""
        SELECT (SELECT count(*) FROM stimuli WHERE dataset = '{embedded.DATASET}') AS stimuli,
               (SELECT count(*) FROM stimuli WHERE dataset = '{embedded.DATASET}' AND split = 'test') AS test,
               (SELECT count(*) FROM emotion_attributes WHERE study = '{embedded.STUDY}') AS attributes,
               (SELECT count(*) FROM human_rdm WHERE study = '{embedded.STUDY}') AS pairs""").to_pylist()[0]
    assert counts == {"stimuli": 432, "test": 108, "attributes": 378, "pairs": 351}
    rdm = {(r["emotion_a"], r["emotion_b"]): r["distance"]
           for r in query(lake, "SELECT emotion_a, emotion_b, distance FROM human_rdm").to_pylist()}
    for row in read_csv(embedded.similarity_path()):
        assert rdm[(row["emotion_a"], row["emotion_b"])] == float(row["distance"])
