"""`query` and `export --where` are read-only and confined to the lake.

User SQL runs in a sandboxed DuckDB connection (warehouse.database.sandboxed_connect) behind a
statement-type check that also looks inside EXPLAIN. Each attack below must exit 2, leave the lake
and the folder around it byte for byte as they were, and create no file; ordinary queries over
the views keep working.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolake.cli import cli
from conftest import REPO, tree_hashes
from emolake.warehouse.database import connect, query
from emolake.warehouse.errors import BadInputError, ReadOnlyQueryError
from emolake.warehouse.lake import Lake

RATINGS = "rater,emotion,attribute,rating\nr1,joy,valence,7\nr1,joy,arousal,3\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Lake]:
    """A lake with ratings, and beside it a file that must stay out of reach."""
    folder = tmp_path_factory.mktemp("sandbox")
    (folder / "r.csv").write_text(RATINGS)
    (folder / "outside.txt").write_text("secret beside the lake\n")
    lake = Lake(folder / "lake")
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", "ratings", str(folder / "r.csv"),
                                      "--study", "s"])
    assert result.exit_code == 0, result.output
    query(lake, "SELECT 1")  # builds warehouse.duckdb (derived views), so later runs change nothing
    return folder, lake


def attacks(folder: Path, lake: Lake) -> dict[str, str]:
    out = folder / "written.csv"
    inside = lake.root / "written.csv"
    return {
        "read_text /etc/passwd": "SELECT * FROM read_text('/etc/passwd')",
        "read_csv /etc/hosts": "SELECT * FROM read_csv('/etc/hosts')",
        "read_blob /etc/hostname": "SELECT * FROM read_blob('/etc/hostname')",
        "read_json /proc": "SELECT * FROM read_json('/proc/self/status')",
        "read_parquet outside": f"SELECT * FROM read_parquet('{folder}/*.parquet')",
        "glob /etc": "SELECT * FROM glob('/etc/*')",
        "relative ..": "SELECT * FROM read_text('../outside.txt')",
        "absolute beside the lake": f"SELECT * FROM read_text('{folder / 'outside.txt'}')",
        "table folder then ..": "SELECT * FROM read_text('ratings/../../outside.txt')",
        "absolute table folder then ..": f"SELECT * FROM read_text('{lake.root}/ratings/../../outside.txt')",
        "lake marker": "SELECT * FROM read_text('.emolake')",
        "staging": "SELECT * FROM read_text('.staging/*')",
        "http": "SELECT * FROM read_csv('https://example.com/x.csv')",
        "union in a subquery": "SELECT study FROM ratings UNION ALL SELECT content FROM read_text('/etc/hostname')",
        "COPY to a file": f"COPY (SELECT 1) TO '{out}'",
        "COPY into the lake": f"COPY (SELECT 1) TO '{inside}'",
        "EXPLAIN ANALYZE COPY outside": f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
        "EXPLAIN ANALYZE COPY into the lake": f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{inside}'",
        "explain analyze lower case": f"explain   analyze copy (select 1) to '{inside}'",
        "EXPLAIN (FORMAT json) COPY": f"EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{inside}'",
        "EXPLAIN ANALYZE INSTALL": "EXPLAIN ANALYZE INSTALL httpfs",
        "comment before EXPLAIN": f"/* hi */ EXPLAIN ANALYZE COPY (SELECT 1) TO '{inside}'",
        "INSTALL": "INSTALL httpfs",
        "LOAD": "LOAD httpfs",
        "SET external access": "SET enable_external_access = true",
        "SET search path": "SET file_search_path = '/'",
        "RESET": "RESET allowed_directories",
        "PRAGMA": "PRAGMA enable_profiling",
        "ATTACH": f"ATTACH '{folder / 'other.duckdb'}'",
        "DETACH": "DETACH warehouse",
        "USE": "USE memory",
        "CREATE TABLE": "CREATE TABLE t AS SELECT 1",
        "CREATE TEMP TABLE": "CREATE TEMP TABLE t AS SELECT 1",
        "CREATE VIEW": "CREATE VIEW v AS SELECT 1",
        "CREATE SECRET": "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')",
        "DROP VIEW": "DROP VIEW ratings",
        "INSERT": "INSERT INTO ratings VALUES (1)",
        "CALL": "CALL pragma_version()",
        "EXPORT DATABASE": f"EXPORT DATABASE '{folder / 'dump'}'",
        "CHECKPOINT": "CHECKPOINT",
        "SELECT then COPY": f"SELECT 1; COPY (SELECT 1) TO '{inside}'",
        "COPY in query()": f"SELECT * FROM query('COPY (SELECT 1) TO ''{inside}''')",
    }


ATTACKS = list(attacks(Path("/x"), Lake("/x/lake")))


@pytest.mark.parametrize("name", ATTACKS)
def test_query_refuses_what_would_leave_or_change_the_lake(name: str, world) -> None:
    folder, lake = world
    sql = attacks(folder, lake)[name]
    before = tree_hashes(folder)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "query", sql])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "read-only" in message or "refused" in message or "query failed" in message, message
    assert "secret beside the lake" not in result.output and "root:" not in result.output
    assert tree_hashes(folder) == before


@pytest.mark.parametrize("name", ["read_text /etc/passwd", "union in a subquery", "COPY into the lake",
                                  "EXPLAIN ANALYZE COPY into the lake", "lake marker"])
def test_confinement_errors_say_why(name: str, world) -> None:
    folder, lake = world
    with pytest.raises(ReadOnlyQueryError, match="read-only|may only read the lake's tables"):
        query(lake, attacks(folder, lake)[name])


WHERE_ATTACKS = {
    "union from read_text": "1=0 UNION ALL SELECT content, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM read_text('/etc/passwd')",
    "subquery on a host file": "rater IN (SELECT content FROM read_text('/etc/hostname'))",
    "second statement": "1=1; COPY (SELECT 1) TO 'x.csv'",
    "read beside the lake": "rater IN (SELECT content FROM read_text('../outside.txt'))",
}


@pytest.mark.parametrize("name", list(WHERE_ATTACKS))
def test_export_where_is_sandboxed_too(name: str, world) -> None:
    folder, lake = world
    before = tree_hashes(folder)
    out = folder / "export.csv"
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "export", "ratings", "--format", "csv",
                                      "--out", str(out), "--where", WHERE_ATTACKS[name]])
    assert result.exit_code == 2, result.output
    assert not out.exists()
    assert tree_hashes(folder) == before


@pytest.mark.parametrize("target", ["lake/ratings/x.parquet", "lake/x.csv", "link-into-lake/x.csv"])
def test_export_out_into_the_lake_is_refused(target: str, world) -> None:
    folder, lake = world
    link = folder / "link-into-lake"
    if not link.exists():
        os.symlink(lake.root, link)
    before = tree_hashes(lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "export", "ratings", "--format", "csv",
                                      "--out", str(folder / target)])
    assert result.exit_code == 2, result.output
    assert "inside the lake" in result.output
    assert tree_hashes(lake.root) == before


@pytest.mark.parametrize("sql,rows", [
    ("SELECT count(*) AS n FROM ratings", [{"n": 2}]),
    ("SELECT count(*) AS n FROM read_parquet('ratings/*/*.parquet')", [{"n": 2}]),
    ("EXPLAIN ANALYZE SELECT count(*) FROM ratings", None),
    ("EXPLAIN (FORMAT json) SELECT 1", None),
    ("DESCRIBE ratings", None),
    ("SHOW TABLES", None),
    ("SUMMARIZE ratings", None),
    ("WITH r AS (SELECT * FROM ratings) SELECT count(*) AS n FROM r", [{"n": 2}]),
])
def test_ordinary_queries_over_the_views_keep_working(sql: str, rows, world) -> None:
    folder, lake = world
    table = query(lake, sql)
    assert table.num_rows > 0
    if rows is not None:
        assert table.to_pylist() == rows


def test_a_decoy_table_folder_in_the_working_directory_is_not_read(world, tmp_path: Path, monkeypatch) -> None:
    folder, lake = world
    (tmp_path / "ratings").mkdir()
    (tmp_path / "ratings" / "decoy.txt").write_text("decoy in the working directory\n")
    monkeypatch.chdir(tmp_path)
    assert query(lake, "SELECT * FROM read_text('ratings/decoy.txt')").num_rows == 0
    assert Path.cwd() == tmp_path  # the sandbox gives the working directory back


def test_a_symlink_in_a_table_folder_leading_out_refuses_the_query(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.init()
    os.symlink("/etc", lake.table_dir("stimuli") / "dataset=etc")
    with pytest.raises(ReadOnlyQueryError, match="leads outside"):
        query(lake, "SELECT * FROM read_text('stimuli/dataset=etc/hostname')")


def test_a_table_folder_that_is_a_symlink_leading_out_refuses_the_query(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.init()
    outside = tmp_path / "outside-ratings"
    lake.table_dir("ratings").rename(outside)
    (outside / "secret.txt").write_text("not the lake's")
    os.symlink(outside, lake.table_dir("ratings"))
    with pytest.raises(ReadOnlyQueryError, match="leads outside"):
        query(lake, "SELECT * FROM read_text('ratings/secret.txt')")


def test_the_sandbox_does_not_leak_into_other_connections(world) -> None:
    folder, lake = world
    query(lake, "SELECT 1")
    with connect(lake) as con:  # the library's own connection still reads what it needs
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is True


def test_an_empty_or_unparsable_query_is_bad_input(world) -> None:
    _, lake = world
    for sql in ("", "SELEC 1", ";"):
        with pytest.raises(BadInputError):
            query(lake, sql)


def test_the_command_line_refuses_in_a_real_process(world) -> None:
    folder, lake = world
    before = tree_hashes(folder)
    for sql in ("SELECT * FROM read_text('/etc/passwd')", f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{lake.root}/x.csv'"):
        done = subprocess.run([sys.executable, str(REPO / "cli.py"), "--lake", str(lake.root), "query", sql],
                              capture_output=True, text=True, cwd=folder, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("Error:") and "Traceback" not in done.stderr
    assert tree_hashes(folder) == before


def test_there_are_at_least_forty_refused_query_attacks() -> None:
    assert len(ATTACKS) + len(WHERE_ATTACKS) >= 40
