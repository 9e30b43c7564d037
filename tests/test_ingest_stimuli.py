"""Stimulus readers: GoEmotions TSV, the one-hot CSV layout, generic CSV/Parquet, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emolake.cli import cli
from ingest_samples import rows, run
from emolake.warehouse.lake import Lake

LABELS = ["admiration", "amusement", "anger", "joy", "neutral"]


def write_goemotions(folder: Path, train: str, dev: str = "dev text\t4\td1\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (folder / "train.tsv").write_text(train)
    (folder / "dev.tsv").write_text(dev)
    return folder


def test_goemotions_tsv_keeps_every_label_and_the_split(lake: Lake, tmp_path: Path) -> None:
    go = write_goemotions(tmp_path / "go", 'He said "wow"\t0,3\tc1\nmeh\t4\tc2\n')
    summary = json.loads(run(lake, "goemotions", str(go), "--json").output)
    assert summary["stimuli"] == 3 and summary["rows"] == 4
    assert summary["stimuli_per_split"] == {"train": 2, "dev": 1}
    got = rows(lake, "SELECT split, stimulus_id, text, emotion, n_labels, source_row FROM stimuli ORDER BY 2, 4")
    assert got[0] == {"split": "train", "stimulus_id": "c1", "text": 'He said "wow"', "emotion": "admiration",
                      "n_labels": 2, "source_row": 1}
    assert [r["emotion"] for r in got] == ["admiration", "joy", "neutral", "neutral"]


def test_goemotions_repeated_comment_ids_are_refused(lake: Lake, tmp_path: Path) -> None:
    """A comment id twice (here with different texts) would leave `extract` to pick one text arbitrarily."""
    go = write_goemotions(tmp_path / "go", "one\t0\tc1\ntwo\t1\tc2\n", dev="three\t2\tc1\n")
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "goemotions", str(go)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "repeated stimulus id" in message and "row 1" in message and "c1" in message and "train.tsv" in message


def test_reloading_a_dataset_replaces_it(lake: Lake, tmp_path: Path) -> None:
    go = write_goemotions(tmp_path / "go", "one\t0\ta\ntwo\t1\tb\n")
    run(lake, "goemotions", str(go))
    run(lake, "goemotions", str(go))
    assert rows(lake, "SELECT count(*) AS n FROM stimuli") == [{"n": 3}]
    (go / "train.tsv").write_text("one\t0\ta\n")
    run(lake, "goemotions", str(go))
    assert rows(lake, "SELECT count(*) AS n FROM stimuli") == [{"n": 2}]
    loads = rows(lake, "SELECT count(DISTINCT load_id) AS n FROM loads WHERE table_name = 'stimuli'")
    assert loads == [{"n": 3}]


def test_validation_results_are_kept_beside_the_data(lake: Lake, tmp_path: Path) -> None:
    go = write_goemotions(tmp_path / "go", "one\t0\ta\n")
    summary = json.loads(run(lake, "goemotions", str(go), "--json").output)
    reports = sorted((lake.root / "validation" / "stimuli" / "dataset=goemotions").glob(f"{summary['load_id']}*.json"))
    assert [p.name for p in reports] == [f"{summary['load_id']}-dev.json", f"{summary['load_id']}-train.json"]
    report = json.loads(reports[1].read_text())
    assert report["great_expectations"]["success"] is True
    kinds = {r["expectation_config"]["type"] for r in report["great_expectations"]["results"]}
    assert "expect_column_values_to_be_in_set" in kinds
    assert report["rows"] == 1 and len(report["source_sha256"]) == 64


def test_onehot_layout_reads_labels_from_the_columns(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("text,classes,ids,admiration,amusement,anger,neutral\n"
                    '"hi, there",\"0,2\",x1,1,0,1,0\nok,3,x2,0,0,0,1\n')
    run(lake, "stimuli", str(path))
    got = rows(lake, "SELECT dataset, split, stimulus_id, emotion, n_labels FROM stimuli ORDER BY 3, 4")
    assert got == [
        {"dataset": "goemotions", "split": "test", "stimulus_id": "x1", "emotion": "admiration", "n_labels": 2},
        {"dataset": "goemotions", "split": "test", "stimulus_id": "x1", "emotion": "anger", "n_labels": 2},
        {"dataset": "goemotions", "split": "test", "stimulus_id": "x2", "emotion": "neutral", "n_labels": 1},
    ]


def test_generic_csv_with_several_label_columns_and_a_split_column(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("sid,sentence,first,second,part\n"
                    "s1,I won!,Joy,  Pride ,train\ns2,Oh no,sadness;fear,,test\ns3,fine,neutral,,train\n")
    run(lake, "stimuli", str(path), "--text-col", "sentence", "--label-col", "first,second", "--split-col", "part",
        "--id-col", "sid", "--dataset", "mine")
    got = rows(lake, "SELECT split, stimulus_id, emotion, n_labels, source_row FROM stimuli ORDER BY 2, 3")
    assert [(r["stimulus_id"], r["emotion"], r["n_labels"]) for r in got] == [
        ("s1", "joy", 2), ("s1", "pride", 2), ("s2", "fear", 2), ("s2", "sadness", 2), ("s3", "neutral", 1)]
    assert {r["split"] for r in got} == {"train", "test"} and got[2]["source_row"] == 2


def test_generic_parquet_reads_onehot_columns(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "calm": [1, 0], "alarm": [1, 1]}), path)
    run(lake, "stimuli", str(path), "--label-col", "calm,alarm", "--emotions", "calm,alarm")
    got = rows(lake, "SELECT dataset, stimulus_id, emotion, n_labels FROM stimuli ORDER BY 2, 3")
    assert got == [
        {"dataset": "mine", "stimulus_id": "all-1", "emotion": "alarm", "n_labels": 2},
        {"dataset": "mine", "stimulus_id": "all-1", "emotion": "calm", "n_labels": 2},
        {"dataset": "mine", "stimulus_id": "all-2", "emotion": "alarm", "n_labels": 1},
    ]


def test_status_lists_datasets_and_studies(lake: Lake, tmp_path: Path) -> None:
    run(lake, "goemotions", str(write_goemotions(tmp_path / "go", "one\t0\ta\n")))
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "status", "--json"])
    assert json.loads(result.output)["datasets"] == ["goemotions"]


@pytest.mark.parametrize("command", ["goemotions", "stimuli", "ratings", "attributes", "similarity", "model-emotion"])
def test_every_ingest_command_documents_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, ["ingest", command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_the_cli_does_not_import_great_expectations_until_a_load_runs() -> None:
    code = "import sys, cli; sys.exit('great_expectations' in sys.modules)"
    repo = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", code], cwd=repo).returncode == 0


def test_real_onehot_dev_file_matches_the_original_dev_split(shared_data: Path, tmp_path: Path) -> None:
    from emolake.ingest.stimuli import goemotions_pieces, read_onehot_csv

    onehot = read_onehot_csv(shared_data / "model_emotion" / "Data" / "goemotions" / "dev.csv")
    original = [p for p in goemotions_pieces(shared_data / "goemotions") if p.part == "dev"][0]

    def pairs(piece) -> set[tuple[str, str]]:
        return set(zip(piece.rows.column("stimulus_id").to_pylist(), piece.rows.column("emotion").to_pylist()))

    assert len(pairs(onehot)) == onehot.rows.num_rows
    assert pairs(onehot) == pairs(original)


def test_several_files_load_into_one_dataset_each_with_its_validation(lake: Lake, tmp_path: Path) -> None:
    for folder, line in (("a", "hi,joy,a1"), ("b", "ho,anger,b1")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mine.csv").write_text("text,label,sid\n" + line + "\n")
    summary = json.loads(run(lake, "stimuli", str(tmp_path / "a" / "mine.csv"), str(tmp_path / "b" / "mine.csv"),
                             "--id-col", "sid", "--json").output)
    assert summary["stimuli"] == 2
    reports = list((lake.root / "validation" / "stimuli" / "dataset=mine").glob(f"{summary['load_id']}*.json"))
    assert len(reports) == 2
