"""Export of tables and views: Parquet that pyarrow and polars read back with the view's schema,
typed partition keys, CSV and Arrow IPC; bad names and conditions are refused with exit 2; the
sql/ files and the warehouse open in a plain DuckDB connection (and the DuckDB shell) in the lake."""

from __future__ import annotations

import re
import shutil
import subprocess

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emolake.cli import cli
from emolake.warehouse.database import query, sql_files
from emolake.warehouse.export import export, portable_schema, portable_type
from emolake.warehouse.tables import TABLES, _spec


def _stimuli(dataset: str, n: int) -> pa.Table:
    return pa.table({
        "split": ["train", "test"] * (n // 2), "stimulus_id": [f"{dataset}-{i}" for i in range(n)],
        "text": [f"text {i}" for i in range(n)], "emotion": ["joy", "fear"] * (n // 2),
        "n_labels": [1] * n, "source_row": list(range(n)),
    })


def _judgments(rater: str) -> pa.Table:
    pairs = [("anger", "fear"), ("anger", "joy"), ("fear", "joy")]
    return pa.table({
        "rater": [rater] * 3, "emotion_a": [a for a, _ in pairs], "emotion_b": [b for _, b in pairs],
        "distance": [2.0, 8.0, 7.0] if rater == "r1" else [4.0, 9.0, 6.0], "source": ["test"] * 3,
    })


@pytest.fixture
def filled_lake(lake):
    with lake.transaction("test") as txn:
        txn.write("stimuli", _stimuli("alpha", 6), {"dataset": "alpha"})
        txn.write("stimuli", _stimuli("beta", 4), {"dataset": "beta"})
        for rater in ("r1", "r2"):
            txn.write("similarity_judgments", _judgments(rater), {"study": "s1"}, part_name=f"{rater}.parquet",
                      replace=False)
    return lake


def _view_schema(lake, name: str) -> pa.Schema:
    return portable_schema(query(lake, f"SELECT * FROM {name} LIMIT 0").schema)


@pytest.mark.parametrize("name", ["stimuli", "human_rdm"])  # a partitioned table's view, an aggregate view
def test_parquet_reads_back_with_the_view_schema_in_pyarrow_and_polars(filled_lake, tmp_path, name):
    out = tmp_path / f"{name}.parquet"
    summary = export(filled_lake, name, "parquet", out)
    expected = _view_schema(filled_lake, name)
    table = pq.read_table(out)
    assert table.schema == expected
    assert summary["rows"] == table.num_rows == query(filled_lake, f"SELECT count(*) AS n FROM {name}")["n"][0].as_py()
    frame = pl.read_parquet(out)
    assert frame.schema == pl.from_arrow(expected.empty_table()).schema
    assert frame.height == table.num_rows
    assert not any(pa.types.is_float16(f.type) for f in table.schema)


def test_partition_key_is_an_ordinary_typed_column(filled_lake, tmp_path):
    out = tmp_path / "stimuli.parquet"
    export(filled_lake, "stimuli", "parquet", out)
    table = pq.read_table(out)
    assert table.schema.field("dataset").type == pa.string()
    assert sorted(set(table["dataset"].to_pylist())) == ["alpha", "beta"]  # the seed partition is gone


def test_integer_partitions_keep_their_declared_type(lake, tmp_path, monkeypatch):
    spec = _spec("layered", {"run_id": pa.string(), "layer": pa.int16()},
                 {"neuron": pa.int32(), "value": pa.float32()}, "test table without a view")
    monkeypatch.setitem(TABLES, "layered", spec)
    lake.init()
    with lake.transaction("test") as txn:
        for layer in (0, 1, 11):
            txn.write("layered", pa.table({"neuron": [layer * 10, layer * 10 + 1], "value": [0.5, 1.5]}),
                      {"run_id": "r", "layer": layer})
    out = tmp_path / "layered.parquet"
    summary = export(lake, "layered", "parquet", out, where="layer > 0")
    table = pq.read_table(out)
    assert table.schema.field("layer").type == pa.int16()
    assert table.schema.field("value").type == pa.float32()
    assert sorted(table["layer"].to_pylist()) == [1, 1, 11, 11] and summary["rows"] == 4
    assert pl.read_parquet(out).schema["layer"] == pl.Int16


def test_csv_and_arrow_formats_hold_the_same_rows(filled_lake, tmp_path):
    export(filled_lake, "human_rdm", "parquet", tmp_path / "h.parquet")
    export(filled_lake, "human_rdm", "arrow", tmp_path / "h.arrow")
    export(filled_lake, "human_rdm", "csv", tmp_path / "h.csv")
    reference = pq.read_table(tmp_path / "h.parquet").sort_by([("emotion_a", "ascending"), ("emotion_b", "ascending")])
    arrow_table = ipc.open_file(tmp_path / "h.arrow").read_all().sort_by(
        [("emotion_a", "ascending"), ("emotion_b", "ascending")])
    assert arrow_table.equals(reference)
    csv_table = pacsv.read_csv(tmp_path / "h.csv").sort_by([("emotion_a", "ascending"), ("emotion_b", "ascending")])
    assert csv_table["distance"].to_pylist() == reference["distance"].to_pylist()
    assert csv_table["distance"].to_pylist() == [3.0, 8.5, 6.5]  # mean over the two raters


def test_where_filters_rows(filled_lake, tmp_path):
    out = tmp_path / "test.csv"
    result = CliRunner().invoke(cli, ["--lake", str(filled_lake.root), "export", "stimuli", "--format", "csv",
                                      "--out", str(out), "--where", "split = 'test'", "--json"])
    assert result.exit_code == 0, result.output
    assert set(pacsv.read_csv(out)["split"].to_pylist()) == {"test"}
    assert pacsv.read_csv(out).num_rows == 5


@pytest.mark.parametrize("args, message", [
    (["no_such_view"], "no table or view named 'no_such_view'"),
    (["stimuli", "--where", "no_such_column = 1"], "could not read 'stimuli'"),
    (["stimuli", "--where", "1 = 1; DROP VIEW stimuli"], ""),
])
def test_bad_export_exits_2_and_writes_nothing(filled_lake, tmp_path, args, message):
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, ["--lake", str(filled_lake.root), "export", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(tmp_path.glob("*.parquet")) == [] and list(tmp_path.glob(".*.tmp")) == []


def test_portable_type_removes_float16_and_dictionaries():
    assert portable_type(pa.float16()) == pa.float32()
    assert portable_type(pa.dictionary(pa.int32(), pa.string())) == pa.string()
    assert portable_type(pa.large_string()) == pa.string()
    assert portable_type(pa.list_(pa.float16())) == pa.list_(pa.float32())


def test_sql_files_run_in_a_plain_duckdb_connection_in_the_lake_dir(filled_lake, monkeypatch):
    query(filled_lake, "SELECT 1")  # builds warehouse.duckdb
    monkeypatch.chdir(filled_lake.root)
    con = duckdb.connect()  # no file_search_path: relative paths resolve against the lake dir
    for _, text in sql_files():
        con.execute(text)
    assert con.execute("SELECT count(*) FROM stimuli").fetchone()[0] == 10
    assert con.execute("SELECT count(*) FROM human_rdm").fetchone()[0] == 3
    with duckdb.connect("warehouse.duckdb", read_only=True) as warehouse:
        assert warehouse.execute("SELECT count(*) FROM stimuli").fetchone()[0] == 10


def test_duckdb_shell_opens_the_warehouse(filled_lake):
    shell = shutil.which("duckdb")
    if shell is None:
        pytest.skip("the DuckDB shell is not installed (pip install duckdb-cli)")
    query(filled_lake, "SELECT 1")  # builds the warehouse
    # The README's command, as written there (run in the lake directory).
    result = subprocess.run([shell, "-readonly", "warehouse.duckdb", "-c",
                             "SELECT study, count(*) FROM human_rdm GROUP BY study"],
                            cwd=filled_lake.root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert re.search(r"s1\s*│\s*3\s*│", result.stdout), result.stdout


def test_warehouse_opens_from_the_lakes_parent_with_a_relative_search_path(filled_lake, monkeypatch):
    # What the README's R example does: dbdir = "lake/warehouse.duckdb", SET file_search_path = 'lake'.
    query(filled_lake, "SELECT 1")
    monkeypatch.chdir(filled_lake.root.parent)
    with duckdb.connect(f"{filled_lake.root.name}/warehouse.duckdb", read_only=True) as con:
        con.execute(f"SET file_search_path = '{filled_lake.root.name}'")
        assert con.execute("SELECT count(*) FROM human_rdm").fetchall() == [(3,)]
