"""Nothing escapes the lake: names that would become paths are refused, and the write path stays inside.

Every flag whose value becomes a hive partition or file name is tried with the values an attacker
would use (`..`, `/`, `=`, the seed value `_empty`, NUL, empty, 300 characters); each must exit 2
naming the flag, leave the lake byte for byte as it was and write nothing beside it. Then the
library: `partition_path`, `LakeTransaction.write/write_json`, and partition folders or the
staging folder replaced by symlinks that lead out of the lake.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from emolake.cli import cli
from conftest import tree_hashes
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import Lake, partition_path
from emolake.warehouse.names import BadNameError, check_name, name_from_text, name_problem
from emolake.warehouse.tables import TABLES

RATINGS = "rater,emotion,attribute,rating\nr1,joy,valence,7\nr1,joy,arousal,3\n"
BAD_NAMES = {
    "dot-dot path": "x/../../../elsewhere",
    "parent": "..",
    "slash": "a/b",
    "absolute": "/tmp/x",
    "equals": "a=b",
    "seed partition": "_empty",
    "seed integer": "-1",
    "nul": "ok\0x",
    "empty": "",
    "300 characters": "a" * 300,
    "backslash": "a\\b",
    "space": "my study",
    "newline": "a\nb",
    "hidden": ".staging",
}


def _make_world(folder: Path) -> tuple[Path, Lake]:
    lake = Lake(folder / "lake")
    (folder / "r.csv").write_text(RATINGS)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(folder / "r.csv"),
                                      "--study", "s"])
    assert result.exit_code == 0, result.output
    return folder, lake


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Lake]:
    """A folder holding a lake with ratings in it and an input file beside it."""
    return _make_world(tmp_path)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory) -> tuple[Path, Lake]:
    """The same, shared by the refusal cases: each asserts the whole folder unchanged, so they cannot leak."""
    return _make_world(tmp_path_factory.mktemp("world"))


def flag_commands(folder: Path) -> dict[str, list[str]]:
    """One command line per (command, flag) that takes a name; '{}' is the bad value."""
    r = str(folder / "r.csv")
    return {
        "ingest ratings --study": ["ingest", "ratings", r, "--study", "{}"],
        "ingest ratings --instrument": ["ingest", "ratings", r, "--study", "s2", "--instrument", "{}"],
        "ingest attributes --study": ["ingest", "attributes", r, "--study", "{}"],
        "ingest similarity --study": ["ingest", "similarity", r, "--study", "{}"],
        "ingest goemotions --dataset": ["ingest", "goemotions", str(folder), "--dataset", "{}"],
        "ingest stimuli --dataset": ["ingest", "stimuli", r, "--dataset", "{}"],
        "extract --run-id": ["extract", "--run-id", "{}"],
        "extract --run-set": ["extract", "--run-set", "{}"],
        "extract --dataset": ["extract", "--dataset", "{}"],
        "rsa --study": ["rsa", "--study", "{}"],
        "rsa --run-set": ["rsa", "--study", "s", "--run-set", "{}"],
        "rsa --attributes-study": ["rsa", "--study", "s", "--attributes-study", "{}"],
        "searchlight --run-set": ["searchlight", "--study", "s", "--run-set", "{}"],
        "neurons --study": ["neurons", "--run-set", "r", "--study", "{}"],
        "ablate --run-set": ["ablate", "--run-set", "{}"],
        "ablate --study": ["ablate", "--run-set", "r", "--study", "{}"],
        "infer --dataset": ["infer", "--dataset", "{}"],
        "report --study": ["report", "--study", "{}"],
    }


FLAGS = list(flag_commands(Path("x")))


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("label", list(BAD_NAMES))
def test_a_bad_name_in_any_flag_is_refused_naming_the_flag(flag: str, label: str, shared_world) -> None:
    folder, lake = shared_world
    value = BAD_NAMES[label]
    args = [value if a == "{}" else a for a in flag_commands(folder)[flag]]
    before = tree_hashes(folder)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *args])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"Invalid value for '{flag.split()[-1]}'" in message
    assert "expected a name of 1-128 characters" in message
    assert len(message) < 1000  # the 300-character value is quoted, cut short
    assert tree_hashes(folder) == before  # the lake and everything beside it


def test_every_name_flag_of_the_cli_is_guarded() -> None:
    """A new command taking --study/--dataset/--run-set/--run-id gets the check without extra code."""
    from emolake.warehouse.names import NAME_OPTIONS, NameParam

    unguarded = []

    def walk(command, path):
        for param in command.params:
            if param.name in NAME_OPTIONS and not isinstance(param.type, NameParam):
                unguarded.append(f"{path} --{param.name}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(cli, "emolake")
    assert unguarded == []


@pytest.mark.parametrize("value", ["goemotions", "li2024-roberta-seed1", "a.b_c-d", "A" * 128, "0"])
def test_valid_names_pass(value: str) -> None:
    assert name_problem(value) is None and check_name(value) == value


@pytest.mark.parametrize("label", list(BAD_NAMES))
def test_partition_path_refuses_every_bad_value(label: str) -> None:
    with pytest.raises(BadNameError, match="bad study"):
        partition_path(TABLES["ratings"], {"study": BAD_NAMES[label]})


@pytest.mark.parametrize("value", [-1, "-1", "x", "1/2", True, 1.5])
def test_integer_partitions_take_integers_from_zero(value) -> None:
    with pytest.raises(BadNameError, match="bad k"):
        partition_path(TABLES["ablations"], {"run_set": "r", "study": "s", "k": value})
    assert partition_path(TABLES["ablations"], {"run_set": "r", "study": "s", "k": 500}) == "run_set=r/study=s/k=500"


def _ratings_rows() -> pa.Table:
    return pa.table({"rater": ["r"], "emotion": ["joy"], "attribute": ["a"], "rating": [1.0],
                     "scale_min": [1.0], "scale_max": [9.0], "instrument": ["i"]})


@pytest.mark.parametrize("label", ["dot-dot path", "seed partition", "nul", "empty"])
def test_a_transaction_refuses_a_bad_partition_and_changes_nothing(label: str, world) -> None:
    folder, lake = world
    before = tree_hashes(folder)
    with pytest.raises(BadNameError):
        with lake.transaction("test") as txn:
            txn.write("ratings", _ratings_rows(), {"study": BAD_NAMES[label]})
    assert tree_hashes(folder) == before


@pytest.mark.parametrize("relpath", ["../outside.json", "/tmp/abs.json", "validation/../../x.json",
                                     "validation/a\0b.json", "validation/_empty/x.json"])
def test_write_json_refuses_paths_that_leave_the_lake(relpath: str, world) -> None:
    folder, lake = world
    before = tree_hashes(folder)
    with pytest.raises(BadInputError):
        with lake.transaction("test") as txn:
            txn.write_json(relpath, {"x": 1})
    assert tree_hashes(folder) == before


def test_a_symlinked_partition_folder_leading_out_is_refused(world) -> None:
    folder, lake = world
    outside = folder / "outside"
    outside.mkdir()
    (outside / "precious.parquet").write_bytes(b"not yours")
    os.symlink(outside, lake.table_dir("ratings") / "study=evil")
    before = tree_hashes(folder)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(folder / "r.csv"),
                                      "--study", "evil"])
    assert result.exit_code == 2, result.output
    assert "outside the lake" in result.output
    assert tree_hashes(folder) == before
    assert (outside / "precious.parquet").read_bytes() == b"not yours"


def test_a_symlinked_table_folder_leading_out_is_refused(world) -> None:
    folder, lake = world
    table = lake.table_dir("emotion_attributes")
    moved = folder / "elsewhere"
    table.rename(moved)
    os.symlink(moved, table)
    before = tree_hashes(folder)
    attrs = folder / "a.csv"
    attrs.write_text("emotion,valence\njoy,1\nanger,2\n")
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "attributes", str(attrs), "--study", "s"])
    assert result.exit_code == 2, result.output
    assert "outside the lake" in result.output
    before.pop("a.csv", None)
    after = tree_hashes(folder)
    after.pop("a.csv", None)
    assert after == before


def test_a_symlinked_staging_folder_is_refused(world) -> None:
    folder, lake = world
    outside = folder / "staging-outside"
    outside.mkdir()
    os.symlink(outside, lake.root / ".staging")
    before = tree_hashes(folder)
    with pytest.raises(BadInputError, match="outside the lake"):
        with lake.transaction("test") as txn:
            txn.write("ratings", _ratings_rows(), {"study": "s3"})
    assert tree_hashes(folder) == before
    assert list(outside.iterdir()) == []


def test_a_symlink_inside_the_lake_is_fine(world) -> None:
    """Confinement is about where a path resolves, not about symlinks as such."""
    folder, lake = world
    real = lake.root / "ratings-real"
    (lake.table_dir("ratings")).rename(real)
    os.symlink(real, lake.table_dir("ratings"))
    with lake.transaction("test") as txn:
        txn.write("ratings", _ratings_rows(), {"study": "s4"})
    assert list((real / "study=s4").glob("*.parquet"))


def test_a_generic_file_name_that_is_not_a_name_asks_for_dataset(world) -> None:
    folder, lake = world
    odd = folder / "my stimuli (1).csv"
    odd.write_text("text,label\nI am glad,joy\n")
    before = tree_hashes(lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "stimuli", str(odd)])
    assert result.exit_code == 2, result.output
    assert "--dataset" in result.output and "contains ' '" in result.output
    assert tree_hashes(lake.root) == before
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "stimuli", str(odd), "--dataset", "mine"])
    assert result.exit_code == 0, result.output


def test_name_from_text_always_gives_a_valid_name() -> None:
    for text in ["my file (1)", "..", "", "_empty", "a/../b", "x" * 500, "é"]:
        assert name_problem(name_from_text(text)) is None


def test_the_command_line_refuses_a_path_as_a_study_in_a_real_process(world) -> None:
    """The issue's own example, `--study "x/../../../elsewhere"`, as a user would type it."""
    import subprocess
    import sys

    from conftest import REPO

    folder, lake = world
    before = tree_hashes(folder)  # the path would land in this folder, beside the lake
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "--lake", str(lake.root), "ingest", "ratings",
                           str(folder / "r.csv"), "--study", "x/../../../elsewhere"],
                          capture_output=True, text=True, cwd=folder, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--study': contains a '/'" in done.stderr and "Traceback" not in done.stderr
    assert tree_hashes(folder) == before
