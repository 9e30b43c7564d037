"""The lake: atomic transactions, seeded views, read-only queries."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conftest import tree_hashes
from emolake.warehouse.database import check_read_only, query, rebuild_views
from emolake.warehouse.errors import BadInputError, EmolakeError, ReadOnlyQueryError


def _stimuli(n: int = 3) -> pa.Table:
    return pa.table({
        "split": ["test"] * n, "stimulus_id": [f"s{i}" for i in range(n)], "text": ["t"] * n,
        "emotion": ["joy"] * n, "n_labels": [1] * n, "source_row": list(range(n)),
    })


def test_views_resolve_on_an_empty_lake(lake):
    rebuild_views(lake)
    assert query(lake, "SELECT count(*) AS n FROM stimuli").to_pylist() == [{"n": 0}]


def test_transaction_publishes_rows_and_a_manifest_row(lake):
    with lake.transaction("test") as txn:
        txn.write("stimuli", _stimuli(), {"dataset": "d"}, source_path="/x", source_sha256="abc")
    assert query(lake, "SELECT count(*) AS n FROM stimuli WHERE dataset = 'd'").column("n")[0].as_py() == 3
    loads = query(lake, "SELECT table_name, rows, source_sha256 FROM loads").to_pylist()
    assert loads == [{"table_name": "stimuli", "rows": 3, "source_sha256": "abc"}]


def test_failed_transaction_leaves_the_lake_byte_for_byte(lake):
    before = tree_hashes(lake.root)
    with pytest.raises(RuntimeError):
        with lake.transaction() as txn:
            txn.write("stimuli", _stimuli(), {"dataset": "d"})
            raise RuntimeError("boom")
    assert tree_hashes(lake.root) == before


def test_reloading_a_partition_replaces_it(lake):
    for n in (3, 2):
        with lake.transaction() as txn:
            txn.write("stimuli", _stimuli(n), {"dataset": "d"})
    assert query(lake, "SELECT count(*) AS n FROM stimuli").column("n")[0].as_py() == 2


def test_schema_mismatch_is_refused(lake):
    with pytest.raises(EmolakeError, match="missing"):
        with lake.transaction() as txn:
            txn.write("stimuli", _stimuli().drop(["text"]), {"dataset": "d"})


@pytest.mark.parametrize("sql", [
    "DROP VIEW stimuli", "INSERT INTO t VALUES (1)", "COPY (SELECT 1) TO 'x.csv'",
    "ATTACH 'other.duckdb'", "CREATE TABLE t AS SELECT 1", "SELECT 1; DELETE FROM t",
])
def test_query_refuses_writes(sql):
    with pytest.raises(ReadOnlyQueryError, match="read-only"):
        check_read_only(sql)


def test_query_allows_describe_and_cte():
    check_read_only("DESCRIBE SELECT 1")
    check_read_only("WITH a AS (SELECT 1) SELECT * FROM a")


def test_bad_sql_is_bad_input(lake):
    with pytest.raises(BadInputError):
        query(lake, "SELECT * FROM no_such_view")
