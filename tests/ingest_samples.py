"""Small input files the ingest tests write themselves, including a tiny release in the study's layout.

`write_tiny_release` writes a model_emotion checkout with random (seeded) ratings: raters who pass
and fail the catch items, PsychoPy logs (one empty, one without responses), and the authors'
preprocessed per-person/average distances computed here, independently of `ingest/`, from the logs
(R lower.tri column-major over a shuffled emotion order), so the ingested raw and preprocessed RDMs
must agree exactly.
"""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from emolake.cli import cli
from emolake.ingest.emotions import GOEMOTIONS_27
from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake

WORDS = list(GOEMOTIONS_27) + ["neutral"]
PHYSICAL_HEADERS = ["Happy", "Anger ", "Sad ", "Fear", "Surprise", "Disgust"]
ATTRIBUTES_14 = ["arousal", "valence", "happy-face", "anger-face", "sad-face", "fear-face", "surprise-face",
                 "disgust-face", "control", "fairness", "self-relativity", "other-relativity", "expectedness",
                 "novelty"]
LOG_HEADER = ["Rating.response", "Rating.rt", "trials.thisIndex", "participant", "expName"]


def write_csv(path: Path, rows: list[list], gz: bool = False, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        handle = gzip.open(path, "wt", newline="", encoding="utf-8")
    else:
        handle = open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8")
    with handle:
        csv.writer(handle).writerows(rows)
    return path


def write_tiny_release(root: Path, seed: int = 0, gz: bool = False) -> Path:
    """A model_emotion checkout at `root`: 3 good + 1 failing rater per grid instrument, 3 logs + 2 bad ones."""
    rng = np.random.default_rng(seed)
    data = root / "Data"
    comparison = data / "raw_data" / "subjective_comparison"
    comparison.mkdir(parents=True, exist_ok=True)
    (comparison / "emotions.txt").write_text("\n".join(WORDS))
    features = data / "raw_data" / "emotional_featuers"

    # Affective: catch item 28 must be 9 for both items; rater 'aff-bad' fails it.
    header = ["Finished", "UserLanguage", "Consent", "Prolific ID "]
    header += [f"{n}_{item}_1" for n in range(1, 29) for item in ("Arousal", "Valence")]
    rows = [header]
    for rater, catch in (("aff1", 9), ("aff2", 9), ("aff3", 9), ("aff-bad", 4)):
        values = [int(v) for v in rng.integers(1, 10, size=54)] + [9, catch]
        rows.append(["True", "EN", "I agree", rater, *values])
    write_csv(features / "affective_features" / "rawdata.csv", rows, gz)

    # Physical: six items, column names with the release's inner spaces; 'phy-nolang' is not EN.
    header = ["Finished", "UserLanguage", "Consent", "Prolific ID "]
    header += [f"{n}_{item}_1" for n in range(1, 29) for item in PHYSICAL_HEADERS]
    rows = [header]
    for rater, language in (("phy1", "EN"), ("phy2", "EN"), ("phy3", "EN"), ("phy-nolang", "DE")):
        values = [int(v) for v in rng.integers(1, 10, size=27 * 6)] + [9] * 6
        rows.append(["True", language, "I agree", rater, *values])
    write_csv(features / "physical_features" / "rawdata.csv", rows, gz)

    # Appraisal: two extra header rows; one emotion per rater; 38 items + catch items 42 (=4), 43 (=-99).
    items = [f"{i}_Item_1" for i in range(4, 42)]
    header = ["Finished", "UserLanguage", "PROLIFIC_PID", "Consent", "EMOTION", "Specific Event", *items,
              "42_Item_1", "43_Item_1"]
    rows = [header, ["question text"] * len(header), ['{"ImportId":"x"}'] * len(header)]
    for k, emotion in enumerate(["JOY", "ANGER", "JOY", "FEAR"]):
        values = [int(v) for v in rng.integers(1, 10, size=len(items))]
        values[k] = -99  # one not-applicable answer each
        rows.append(["True", "EN", f"app{k}", "I agree", emotion, "an event", *values, 4, -99])
    rows.append(["True", "EN", "app-catch", "I agree", "JOY", "an event", *[5] * len(items), 6, -99])
    rows.append(["True", "EN", "app-noevent", "I agree", "JOY", "n/a", *[5] * len(items), 4, -99])
    write_csv(features / "appraisal_features" / "rawdata.csv", rows, gz)

    # Similarity logs: all 378 pairs in random order, a few unanswered; one empty log; one without answers.
    pairs = list(itertools.combinations(range(28), 2))
    ratings: dict[str, dict[tuple[str, str], int]] = {}
    for person in ("p1", "p2", "p3"):
        order = rng.permutation(len(pairs))
        rows = [LOG_HEADER]
        ratings[person] = {}
        for trial, index in enumerate(order):
            answered = trial % 50 != 7
            value = int(rng.integers(1, 10))
            rows.append([value if answered else "", "1.0", int(index), person, "PRaM"])
            if answered:
                a, b = pairs[index]
                ratings[person][(WORDS[a], WORDS[b])] = value
        write_csv(comparison / f"{person}_PRaM_2023-01-01_10h00.00.000.csv", rows, gz)
    (comparison / "pempty_PRaM_2023-01-01_10h00.00.000.csv").write_bytes(b"\xef\xbb\xbf\n")
    write_csv(comparison / "pnone_PRaM_2023-01-01_10h00.00.000.csv",
              [LOG_HEADER, ["", "", 5, "pnone", "PRaM"]], gz)

    # Preprocessed: emotion order, published 27 x 14 table, per-person and mean distances (lower.tri order).
    pre = data / "preprocessed"
    order = [GOEMOTIONS_27[i] for i in rng.permutation(27)]
    write_csv(pre / "reordered_emotions.csv", [[e] for e in order], gz)
    scores = rng.random((27, 14))
    write_csv(pre / "emotional_features" / "score_emotional_PCs.csv",
              [ATTRIBUTES_14, *[[float(v) for v in row] for row in scores]], gz)
    lower_tri = [(order[i], order[j]) for j in range(27) for i in range(j + 1, 27)]
    per_person = []
    for person in ("p1", "p2", "p3"):
        row = []
        for a, b in lower_tri:
            key = (a, b) if WORDS.index(a) < WORDS.index(b) else (b, a)  # logs key pairs in emotions.txt order
            row.append(10 - ratings[person][key] if key in ratings[person] else None)
        per_person.append(row)
    # Impute like the authors: a missing pair gets the pair's mean over the people who answered it.
    matrix = np.array([[np.nan if v is None else v for v in row] for row in per_person], dtype=float)
    pair_means = np.nanmean(matrix, axis=0)
    matrix = np.where(np.isnan(matrix), pair_means, matrix)
    sub = pre / "subjective_comparison"
    write_csv(sub / "ind_dist_subjective_comparison.csv",
              [[f"V{k}" for k in range(1, 352)], *[[float(v) for v in row] for row in matrix]], gz)
    write_csv(sub / "avg_dist_subjective_comparison.csv",
              [["Subjective Comparison"], *[[float(v)] for v in matrix.mean(axis=0)]], gz)
    return root


def release_expectations() -> dict:
    """Counts the tiny release must give (see `write_tiny_release`)."""
    return {"affective_raters": 3, "affective_excluded": 1, "physical_raters": 3, "physical_excluded": 1,
            "appraisal_raters": 4, "appraisal_excluded": 2, "appraisal_not_applicable": 4,
            "similarity_raters": 3, "similarity_logs_empty": 1, "similarity_excluded": 2, "attributes": 378}


def run(lake: Lake, *args: str):
    """`emolake ingest ARGS` on `lake` through the CLI; asserts it succeeded."""
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", *args])
    assert result.exit_code == 0, result.output
    return result


def rows(lake: Lake, sql: str) -> list[dict]:
    return query(lake, sql).to_pylist()
