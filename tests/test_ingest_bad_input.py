"""Malformed inputs: each gives exit code 2, a message naming file, row and column, and an unchanged lake.

Every case writes its own bad file into a lake that already holds data, runs the CLI, and compares
the sha256 of every file in the lake before and after.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolake.cli import cli
from emolake.ingest import release as release_module
from conftest import REPO, tree_hashes
from emolake.warehouse.lake import Lake

from ingest_samples import write_tiny_release

RATINGS_HEADER = "rater,emotion,attribute,rating\n"
GOOD_RATINGS = RATINGS_HEADER + "r1,joy,valence,7\nr1,joy,arousal,3\nr2,anger,valence,2\nr2,anger,arousal,8\n"


@pytest.fixture(autouse=True)
def human_parts_only(monkeypatch) -> None:
    """Only this package's release parts: parts other packages add (activations) have their own tests."""
    monkeypatch.setattr(release_module, "RELEASE_PARTS", list(release_module.HUMAN_PARTS))


@dataclass
class Case:
    name: str
    write: Callable[[Path], list[str]]  # writes the bad input under a folder, returns the CLI arguments
    expect: list[str]  # substrings of the error message (file, row, column, found ...)


def text_file(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return write


def ratings_case(name: str, content: str | bytes, expect: list[str], *extra: str) -> Case:
    return Case(name, lambda d: ["ratings", str(text_file("ratings.csv", content)(d)), "--study", "s", *extra],
                ["ratings.csv", *expect])


def goemotions_dir(lines: str, dev: str | None = None) -> Callable[[Path], list[str]]:
    def write(folder: Path) -> list[str]:
        go = folder / "go"
        go.mkdir()
        (go / "labels.txt").write_text("\n".join(["admiration", "amusement", "anger", "joy", "neutral"]))
        (go / "train.tsv").write_text(lines)
        if dev is not None:
            (go / "dev.tsv").write_text(dev)
        return ["goemotions", str(go)]
    return write


def release_with(change: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def write(folder: Path) -> list[str]:
        release = write_tiny_release(folder / "model_emotion", seed=1)
        change(release)
        return ["model-emotion", str(release)]
    return write


LOGS = "Data/raw_data/subjective_comparison"


def break_log(release: Path) -> None:
    log = release / LOGS / "p2_PRaM_2023-01-01_10h00.00.000.csv"
    lines = log.read_text().splitlines()
    fields = lines[5].split(",")
    fields[2] = "400"  # trials.thisIndex past the 378 pairs
    lines[5] = ",".join(fields)
    log.write_text("\n".join(lines) + "\n")


def appraisal_out_of_range(release: Path) -> None:
    path = release / "Data/raw_data/emotional_featuers/appraisal_features/rawdata.csv"
    lines = path.read_text().splitlines()
    fields = lines[4].split(",")  # data row 2 (after header + two Qualtrics header rows)
    fields[8] = "12"  # 6_Item_1
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


CASES = [
    ratings_case("out-of-range rating", RATINGS_HEADER + "r1,joy,valence,7\nr1,joy,arousal,12\n",
                 ["rating out of range", "row 2", "column 'rating'", "between 1 and 9", "'12'"]),
    ratings_case("non-numeric rating", RATINGS_HEADER + "r1,joy,valence,high\n",
                 ["not a number", "row 1", "column 'rating'", "'high'"]),
    ratings_case("unknown emotion", RATINGS_HEADER + "r1,joy,valence,7\nr1,happyness,valence,4\n",
                 ["unknown emotion", "row 2", "column 'emotion'", "'happyness'"]),
    ratings_case("duplicate rater-emotion-attribute", RATINGS_HEADER + "r1,joy,valence,7\nr2,joy,valence,3\nr1,Joy,valence,5\n",
                 ["duplicate rater-emotion-attribute", "row 3", "also at row 1"]),
    ratings_case("missing column", "rater,emotion,attribute,score\nr1,joy,valence,7\n",
                 ["missing column", "column 'rating'", "score"]),
    ratings_case("empty file", "", ["the file is empty"]),
    ratings_case("header only", RATINGS_HEADER, ["no data rows"]),
    ratings_case("wrong delimiter", "rater;emotion;attribute;rating\nr1;joy;valence;7\n",
                 ["semicolon-separated", "comma-separated"]),
    ratings_case("truncated file", RATINGS_HEADER + "r1,joy,valence,7\nr1,joy,aro",
                 ["truncated", "row 2", "4 fields", "3 fields"]),
    ratings_case("row with extra field", RATINGS_HEADER + "r1,joy,valence,7,9\n",
                 ["row 1", "5 fields", "the header has 4"]),
    ratings_case("emotion missing an attribute", RATINGS_HEADER + "r1,joy,valence,7\nr1,joy,arousal,3\nr1,anger,valence,2\n",
                 ["rated 'anger' but not on attribute 'arousal'", "row 3", "column 'attribute'"]),
    ratings_case("not UTF-8", RATINGS_HEADER.encode() + "r1,joy,val\xe9nce,7\n".encode("latin-1"),
                 ["not UTF-8", "line 2"]),
    ratings_case("rating below a custom scale", RATINGS_HEADER + "r1,joy,valence,0\n",
                 ["rating out of range", "row 1", "between 1 and 7"], "--scale-max", "7"),
    ratings_case("empty rating cell", RATINGS_HEADER + "r1,joy,valence,\n",
                 ["not a number", "row 1", "column 'rating'", "empty cell"]),
    Case("bad label id in GoEmotions TSV",
         goemotions_dir("good text\t3\tc1\nsecond text\t3,17\tc2\n"),
         ["train.tsv", "bad label id", "row 2", "column 'label_ids'", "'3,17'", "0-4"]),
    Case("GoEmotions TSV with a missing field",
         goemotions_dir("good text\t3\tc1\nno id here\t3\n"),
         ["train.tsv", "row 2", "2 fields", "3"]),
    Case("unknown label name in generic CSV",
         lambda d: ["stimuli", str(text_file("mine.csv", "text,label\nI am glad,joy\nhooray,happy\n")(d)),
                    "--dataset", "mine"],
         ["mine.csv", "unknown emotion label", "row 2", "column 'label'", "'happy'"]),
    Case("empty text in generic CSV",
         lambda d: ["stimuli", str(text_file("mine.csv", "text,label\nI am glad,joy\n  ,anger\n")(d))],
         ["mine.csv", "empty text", "row 2", "column 'text'"]),
    Case("one-hot classes disagree with columns",
         lambda d: ["stimuli", str(text_file("dev.csv",
                                             "text,classes,ids,admiration,amusement,anger\nhi,0,a1,1,0,0\nho,1,a2,0,0,1\n")(d))],
         ["dev.csv", "classes disagree", "row 2", "column 'classes'"]),
    Case("attribute table missing a value",
         lambda d: ["attributes", str(text_file("attrs.csv",
                                                "emotion,attribute,value\njoy,valence,0.9\njoy,arousal,0.5\nanger,valence,0.1\n")(d)),
                    "--study", "s"],
         ["attrs.csv", "'anger' has no value for attribute 'arousal'", "column 'attribute'"]),
    Case("wide attribute table with a non-number",
         lambda d: ["attributes", str(text_file("wide.csv", "emotion,valence,arousal\njoy,0.9,0.5\nanger,low,0.8\n")(d)),
                    "--study", "s"],
         ["wide.csv", "not a number", "row 2", "column 'valence'", "'low'"]),
    Case("similarity of an emotion with itself",
         lambda d: ["similarity", str(text_file("sim.csv", "rater,emotion_a,emotion_b,distance\nr1,joy,anger,3\nr1,fear,Fear,1\n")(d)),
                    "--study", "s"],
         ["sim.csv", "compared with itself", "row 2", "column 'emotion_b'"]),
    Case("similarity pair judged twice in reversed order",
         lambda d: ["similarity", str(text_file("sim.csv", "rater,emotion_a,emotion_b,distance\nr1,joy,anger,3\nr1,anger,joy,4\n")(d)),
                    "--study", "s"],
         ["sim.csv", "duplicate rater-emotion_a-emotion_b", "row 2", "also at row 1"]),
    Case("similarity out of its scale",
         lambda d: ["similarity", str(text_file("sim.csv", "rater,emotion_a,emotion_b,similarity\nr1,joy,anger,10\n")(d)),
                    "--study", "s", "--scale-min", "1", "--scale-max", "9"],
         ["sim.csv", "similarity out of range", "row 1", "column 'similarity'", "'10'"]),
    Case("malformed PsychoPy log", release_with(break_log),
         ["p2_PRaM", "pair index out of range", "row 5", "column 'trials.thisIndex'", "'400'", "0-377"]),
    Case("out-of-range appraisal item", release_with(appraisal_out_of_range),
         ["appraisal_features/rawdata.csv", "rating out of range", "row 2", "line 5", "column '6_Item_1'", "'12'"]),
    Case("missing release file",
         release_with(lambda r: (r / "Data/preprocessed/emotional_features/score_emotional_PCs.csv").unlink()),
         ["missing release file", "score_emotional_PCs.csv", ".csv.gz"]),
    Case("log without the pair index column",
         release_with(lambda r: (r / LOGS / "p1_PRaM_2023-01-01_10h00.00.000.csv").write_text(
             "Rating.response,participant\n5,p1\n")),
         ["p1_PRaM", "missing column", "column 'trials.thisIndex'"]),
    Case("release not a directory", lambda d: ["model-emotion", str(d / "nowhere")],
         ["release checkout not found", "nowhere"]),
]


def gz_file(name: str, content: str, damage: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    return text_file(name, damage(gzip.compress(content.encode())))


def onehot(rows: str) -> str:
    return "text,classes,ids,admiration,amusement,anger\n" + rows


def stimuli_case(name: str, files: dict[str, str | bytes], expect: list[str], *extra: str,
                 repeat: int = 1) -> Case:
    """`ingest stimuli` over `files` (each given `repeat` times) into dataset 'mine'."""
    def write(folder: Path) -> list[str]:
        paths = [str(text_file(n, c)(folder)) for n, c in files.items()]
        return ["stimuli", *(paths * repeat), "--dataset", "mine", *extra]
    return Case(name, write, expect)


def labels_case(name: str, labels: bytes, expect: list[str]) -> Case:
    def write(folder: Path) -> list[str]:
        go = folder / "go"
        go.mkdir()
        (go / "labels.txt").write_bytes(labels)
        (go / "train.tsv").write_text("good text\t0\tc1\n")
        return ["goemotions", str(go)]
    return Case(name, write, ["labels.txt", *expect])


def special_file(kind: str) -> Callable[[Path], list[str]]:
    """A ratings 'file' that is a directory, a symlink loop or a dangling symlink."""
    def write(folder: Path) -> list[str]:
        path = folder / "ratings.csv"
        if kind == "directory":
            path.mkdir()
        elif kind == "loop":
            path.symlink_to(folder / "ratings.csv")
        else:
            path.symlink_to(folder / "gone.csv")
        return ["ratings", str(path), "--study", "s"]
    return write


BOUNDS = "rater,emotion,attribute,rating,scale_min,scale_max\n"
SIM = "rater,emotion_a,emotion_b,distance\n"
GOOD_ONEHOT = onehot("hi,0,a1,1,0,0\nho,2,a2,0,0,1\n")

# Non-finite numbers (issue 9, item 6): NaN, inf, -inf anywhere numeric.
NON_FINITE = [
    ratings_case("inf rating within infinite bounds", BOUNDS + "r1,joy,valence,inf,-inf,inf\n",
                 ["not a finite number", "row 1", "column 'rating'", "'inf'"]),
    ratings_case("inf rating, default scale", RATINGS_HEADER + "r1,joy,valence,inf\n",
                 ["not a finite number", "row 1", "column 'rating'", "'inf'"]),
    ratings_case("-Infinity rating", RATINGS_HEADER + "r1,joy,valence,7\nr1,joy,arousal,-Infinity\n",
                 ["not a finite number", "row 2", "column 'rating'", "'-Infinity'"]),
    ratings_case("overflowing rating 1e999", RATINGS_HEADER + "r1,joy,valence,1e999\n",
                 ["not a finite number", "row 1", "column 'rating'", "'1e999'"]),
    ratings_case("NaN rating", RATINGS_HEADER + "r1,joy,valence,NaN\n", ["not a number", "row 1", "'NaN'"]),
    ratings_case("infinite --scale-max", RATINGS_HEADER + "r1,joy,valence,5\n",
                 ["not a finite number", "column '--scale-max'", "inf"], "--scale-max", "inf"),
    ratings_case("infinite --scale-min", RATINGS_HEADER + "r1,joy,valence,5\n",
                 ["not a finite number", "column '--scale-min'", "-inf"], "--scale-min", "-inf"),
    ratings_case("inf scale_max column", BOUNDS + "r1,joy,valence,5,1,9\nr1,joy,arousal,5,1,inf\n",
                 ["not a finite number", "row 2", "column 'scale_max'"]),
    Case("inf attribute value (long)",
         lambda d: ["attributes", str(text_file("attrs.csv", "emotion,attribute,value\njoy,valence,inf\n")(d)),
                    "--study", "s"], ["attrs.csv", "not a finite number", "row 1", "column 'value'", "'inf'"]),
    Case("-inf attribute value (wide)",
         lambda d: ["attributes", str(text_file("wide.csv", "emotion,valence,arousal\njoy,0.9,0.5\nanger,0.1,-inf\n")(d)),
                    "--study", "s"], ["wide.csv", "not a finite number", "row 2", "column 'arousal'", "'-inf'"]),
    Case("nan attribute value",
         lambda d: ["attributes", str(text_file("attrs.csv", "emotion,attribute,value\njoy,valence,nan\n")(d)),
                    "--study", "s"], ["attrs.csv", "not a number", "row 1", "column 'value'"]),
    Case("inf distance",
         lambda d: ["similarity", str(text_file("sim.csv", SIM + "r1,joy,anger,3\nr1,joy,fear,inf\n")(d)),
                    "--study", "s"], ["sim.csv", "not a finite number", "row 2", "column 'distance'", "'inf'"]),
    Case("inf similarity",
         lambda d: ["similarity", str(text_file("sim.csv", "rater,emotion_a,emotion_b,similarity\nr1,joy,anger,inf\n")(d)),
                    "--study", "s", "--scale-min", "1", "--scale-max", "9"],
         ["sim.csv", "not a finite number", "row 1", "column 'similarity'"]),
    Case("infinite similarity scale",
         lambda d: ["similarity", str(text_file("sim.csv", "rater,emotion_a,emotion_b,similarity\nr1,joy,anger,3\n")(d)),
                    "--study", "s", "--scale-min", "-inf", "--scale-max", "inf"],
         ["sim.csv", "scale bounds must be finite"]),
]

# Repeated stimulus ids and broken label lists (item 7).
REPEATS = [
    stimuli_case("same generic file given twice", {"mine.csv": "text,label\nI am glad,joy\n"},
                 ["the same file is given twice", "mine.csv"], repeat=2),
    stimuli_case("same one-hot file given twice", {"dev.csv": GOOD_ONEHOT}, ["the same file is given twice"],
                 repeat=2),
    stimuli_case("one-hot file with a repeated id", {"dev.csv": onehot("hi,0,a1,1,0,0\nho,2,a1,0,0,1\n")},
                 ["dev.csv", "repeated stimulus id", "row 2", "a1 (also at row 1)"]),
    stimuli_case("one-hot ids repeated across two files",
                 {"dev.csv": GOOD_ONEHOT, "test.csv": onehot("other,1,a2,0,1,0\n")},
                 ["test.csv", "repeated stimulus id", "row 1", "a2 (also at row 2 of", "dev.csv"]),
    stimuli_case("generic id column repeated", {"mine.csv": "id,text,label\nx,glad,joy\nx,mad,anger\n"},
                 ["mine.csv", "repeated stimulus id", "row 2", "x (also at row 1)"], "--id-col", "id"),
    Case("GoEmotions comment id twice with different text",
         goemotions_dir("good text\t3\tc1\nother text\t2\tc1\n"),
         ["train.tsv", "repeated stimulus id", "row 2", "c1 (also at row 1)"]),
    Case("GoEmotions comment id in two splits", goemotions_dir("good text\t3\tc1\n", dev="again\t2\tc1\n"),
         ["repeated stimulus id", "c1 (also at row 1 of", "train.tsv"]),
    stimuli_case("one-hot classes = -1", {"dev.csv": onehot("hi,-1,a1,0,0,1\n")},
                 ["dev.csv", "bad label id", "row 1", "column 'classes'", "'-1'", "0-2"]),
    stimuli_case("one-hot classes past the columns", {"dev.csv": onehot("hi,3,a1,0,0,1\n")},
                 ["dev.csv", "bad label id", "row 1", "'3'"]),
    labels_case("labels.txt repeats a name", b"admiration\namusement\nAdmiration\n",
                ["line 3", "repeated name (also on line 1)", "'Admiration'"]),
    labels_case("labels.txt with an unknown name", b"admiration\nhappyness\n", ["line 2", "unknown emotion", "'happyness'"]),
    labels_case("labels.txt with an empty line inside", b"admiration\n\namusement\n", ["line 2", "empty line"]),
    labels_case("labels.txt with a NUL byte", b"admiration\nanger\x00\n", ["line 2", "NUL"]),
    labels_case("labels.txt not UTF-8", b"admiration\namusement\xe9\n", ["not UTF-8", "line 2"]),
    labels_case("labels.txt empty", b"\n\n", ["the file is empty"]),
    ratings_case("NUL byte in a rater name", RATINGS_HEADER + "r\x001,joy,valence,7\n",
                 ["NUL byte in the rater", "row 1", "column 'rater'"]),
    ratings_case("NUL byte in an attribute name", RATINGS_HEADER + "r1,joy,val\x00ence,7\n",
                 ["NUL byte in the attribute", "row 1", "column 'attribute'"]),
    stimuli_case("NUL byte in a stimulus text", {"mine.csv": "text,label\nI am\x00 glad,joy\n"},
                 ["mine.csv", "NUL byte in the text", "row 1", "column 'text'"]),
]

# Files that are not readable files, and named ones that do not exist (item 10).
UNREADABLE = [
    Case("truncated .csv.gz", lambda d: ["ratings", str(gz_file("ratings.csv.gz", GOOD_RATINGS * 50,
                                                                  lambda b: b[: len(b) // 2])(d)), "--study", "s"],
         ["ratings.csv.gz", "truncated gzip file", "row", "expected a complete gzip stream"]),
    Case("trailing garbage after .csv.gz", lambda d: ["ratings", str(gz_file("ratings.csv.gz", GOOD_RATINGS,
                                                                              lambda b: b + b"garbage!")(d)), "--study", "s"],
         ["ratings.csv.gz", "not a valid gzip file", "bytes after the end of the gzip stream", "8 bytes"]),
    Case(".csv.gz that is not gzip", lambda d: ["ratings", str(text_file("ratings.csv.gz", GOOD_RATINGS)(d)),
                                                "--study", "s"],
         ["ratings.csv.gz", "not a valid gzip file", "corrupt gzip stream"]),
    Case("a directory as the file", special_file("directory"),
         ["ratings.csv", "expected a file, found a directory"]),
    Case("a symlink loop as the file", special_file("loop"), ["ratings.csv", "symlink loop"]),
    Case("a dangling symlink as the file", special_file("dangling"), ["ratings.csv", "symlink to nothing", "gone.csv"]),
    Case("--emotions file that does not exist",
         lambda d: ["ratings", str(text_file("ratings.csv", GOOD_RATINGS)(d)), "--study", "s",
                    "--emotions", str(d / "my_emotions.txt")],
         ["--emotions file does not exist", "my_emotions.txt"]),
    Case("--emotions names.txt (relative) that does not exist",
         lambda d: ["ratings", str(text_file("ratings.csv", GOOD_RATINGS)(d)), "--study", "s",
                    "--emotions", "names.txt"], ["--emotions file does not exist", "names.txt"]),
    Case("--emotions file not UTF-8",
         lambda d: ["ratings", str(text_file("ratings.csv", GOOD_RATINGS)(d)), "--study", "s",
                    "--emotions", str(text_file("em.txt", b"joy\nang\xe9r\n")(d))], ["em.txt", "not UTF-8", "line 2"]),
    ratings_case("a 100 kB field is quoted short", RATINGS_HEADER + "r1,joy,valence," + "9" * 100_000 + "x\n",
                 ["not a number", "row 1", "100,001 characters in all"]),
    ratings_case("a field past the CSV field limit", RATINGS_HEADER + "r1,joy,valence," + "9" * 200_000 + "\n",
                 ["field larger than field limit", "row 1"]),
    Case("release with a directory for a file",
         release_with(lambda r: _replace_with_dir(r / "Data/raw_data/subjective_comparison/emotions.txt")),
         ["emotions.txt", "expected a file, found a directory"]),
    Case("release with a symlink loop for a file",
         release_with(lambda r: _replace_with_loop(r / "Data/raw_data/subjective_comparison/emotions.txt")),
         ["emotions.txt", "symlink loop"]),
]


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _replace_with_loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path)


CASES += NON_FINITE + REPEATS + UNREADABLE


@pytest.fixture
def filled_lake(lake: Lake, tmp_path: Path) -> Lake:
    """A lake that already holds ratings, so 'unchanged' means more than 'still empty'."""
    good = tmp_path / "good.csv"
    good.write_text(GOOD_RATINGS)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(good), "--study", "s"])
    assert result.exit_code == 0, result.output
    return lake


@pytest.fixture(scope="module")
def shared_filled_lake(tmp_path_factory) -> Lake:
    """One filled lake for all the refusal cases: each asserts it unchanged, so none can leak into the next."""
    lake = Lake(tmp_path_factory.mktemp("filled") / "lake")
    lake.init()
    good = lake.root.parent / "good.csv"
    good.write_text(GOOD_RATINGS)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(good), "--study", "s"])
    assert result.exit_code == 0, result.output
    return lake


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_and_the_lake_unchanged(case: Case, shared_filled_lake: Lake, tmp_path: Path) -> None:
    filled_lake = shared_filled_lake
    folder = tmp_path / "input"
    folder.mkdir()
    args = case.write(folder)
    before = tree_hashes(filled_lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(filled_lake.root), "ingest", *args])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # messages may be wrapped
    for expected in case.expect:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert tree_hashes(filled_lake.root) == before


def test_there_are_at_least_seventy_distinct_bad_inputs() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 70


def test_a_utf8_bom_in_the_header_is_accepted(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_RATINGS.encode())
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(path), "--study", "bom"])
    assert result.exit_code == 0, result.output
    from emolake.warehouse.database import query

    assert query(lake, "SELECT count(*) AS n FROM ratings WHERE study = 'bom'").to_pylist() == [{"n": 4}]


def test_a_gzipped_ratings_file_is_accepted(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv.gz"
    path.write_bytes(gzip.compress(GOOD_RATINGS.encode()))
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(path), "--study", "gz", "--json"])
    assert result.exit_code == 0, result.output
    assert '"rows": 4' in result.output
    shutil.rmtree(lake.root / "validation")  # nothing else depends on the JSON files


def test_an_empty_affective_rating_of_a_kept_rater_names_its_column(filled_lake: Lake, tmp_path: Path) -> None:
    release = write_tiny_release(tmp_path / "model_emotion", seed=1)
    path = release / "Data/raw_data/emotional_featuers/affective_features/rawdata.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[4 + 4] = ""  # 3_Arousal_1 of the first rater
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    before = tree_hashes(filled_lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(filled_lake.root), "ingest", "model-emotion", str(release)])
    assert result.exit_code == 2
    assert "empty rating" in result.output and "row 1" in result.output and "3_Arousal_1" in result.output
    assert tree_hashes(filled_lake.root) == before


def test_a_full_disk_gives_one_line_naming_the_path_and_leaves_the_lake_intact(
        filled_lake: Lake, tmp_path: Path, monkeypatch) -> None:
    """ENOSPC injected where the lake writes a staged file (pyarrow's error carries no file name)."""
    import errno

    import emolake.warehouse.lake as lake_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(lake_module.pq, "write_table", full)
    good = tmp_path / "more.csv"
    good.write_text(GOOD_RATINGS)
    before = tree_hashes(filled_lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(filled_lake.root), "ingest", "ratings", str(good), "--study", "t"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no space left on the device while writing ")
    assert str(filled_lake.root / "ratings" / "study=t") in lines[0]
    assert tree_hashes(filled_lake.root) == before


def test_a_full_disk_elsewhere_is_one_line_too(filled_lake: Lake, tmp_path: Path, monkeypatch) -> None:
    """An ENOSPC the library did not wrap still reaches the user as one line, exit 1."""
    import errno

    import emolake.ingest.load as load_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(filled_lake.root / ".staging" / "x"))

    monkeypatch.setattr(load_module, "sha256_file", full)
    good = tmp_path / "more.csv"
    good.write_text(GOOD_RATINGS)
    before = tree_hashes(filled_lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(filled_lake.root), "ingest", "ratings", str(good), "--study", "t"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "no space left" in result.output and ".staging" in result.output
    assert tree_hashes(filled_lake.root) == before


@pytest.mark.parametrize("existing", [False, True], ids=["no folder", "empty folder"])
def test_a_failed_ingest_into_a_new_lake_leaves_no_lake(tmp_path: Path, existing: bool) -> None:
    target = tmp_path / "new-lake"
    if existing:
        target.mkdir()
        (target / "notes.txt").write_text("the user's own file")
    release = write_tiny_release(tmp_path / "model_emotion", seed=1)
    break_log(release)
    for args in (["model-emotion", str(release)],
                 ["ratings", str(text_file("r.csv", RATINGS_HEADER + "r1,joy,valence,inf\n")(tmp_path)), "--study", "s"]):
        result = CliRunner().invoke(cli, ["--lake", str(target), "ingest", *args])
        assert result.exit_code == 2, result.output
        if existing:
            assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
        else:
            assert not target.exists()


def test_release_accuracy_for_seeds_without_activations_is_refused(lake: Lake, tmp_path: Path) -> None:
    from test_extract_released_activations import fake_release

    from emolake.ingest.model_emotion_activations import RELEASE_MODEL_DIR, load_released_activations
    from emolake.warehouse.errors import BadInputError

    release = tmp_path / "release"
    fake_release(release, emotions=("anger", "joy"), seeds=(1,), gz=())
    path = release / RELEASE_MODEL_DIR / "accuracy.csv"
    before = tree_hashes(lake.root)
    for rows, match in [
        ("anger,1,0.8\njoy,1,0.7\njoy,5,0.9\n", r"seed without released activations.*row 3.*random_seed.*found 5"),
        ("anger,1,0.8\nfear,1,0.7\n", r"emotion without released activations.*row 2.*sentiment.*'fear'"),
        ("anger,1,0.8\nanger,1,0.7\n", r"repeated accuracy row.*row 2.*also at row 1"),
        ("anger,1,nan\n", r"accuracy out of range.*row 1.*accuracy"),
    ]:
        path.write_text("sentiment,random_seed,accuracy\n" + rows)
        with pytest.raises(BadInputError, match=match):
            load_released_activations(release, lake, {})
        assert tree_hashes(lake.root) == before


def test_bad_input_figures_for_reliability_md() -> None:
    """The counts quoted in docs/RELIABILITY.md ('Bad input'), recomputed from the suites."""
    import test_warehouse_confinement as confinement
    import test_warehouse_query_sandbox as sandbox

    counts = {
        "ingest bad files": len(CASES),
        "name flags x bad names": len(confinement.FLAGS) * len(confinement.BAD_NAMES),
        "query and export attacks": len(sandbox.ATTACKS) + len(sandbox.WHERE_ATTACKS),
    }
    assert counts == {"ingest bad files": 74, "name flags x bad names": 252, "query and export attacks": 46}
    assert sum(counts.values()) == 372


def test_validation_neither_imports_pyspark_nor_blocks_it_later():
    """great-expectations imports pyspark when installed (seconds, and a FutureWarning under pandas 3);
    emolake validates pandas frames only, so it is hidden while validating and importable after."""
    script = textwrap.dedent("""
        import sys, warnings
        warnings.simplefilter("error", FutureWarning)
        import pandas as pd
        from emolake.ingest.validation import columns_exist, run_suite
        result = run_suite(pd.DataFrame({"a": [1, 2]}), [columns_exist(["a"])], name="probe")
        assert result["success"], result
        assert "pyspark" not in sys.modules, "great-expectations imported pyspark"
        try:
            import pyspark
        except ImportError as exc:
            assert "halted" not in str(exc), exc  # our marker must not outlive the validation
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
