"""`emolake query`: SQL from the argument, stdin (`-`) or `--file`; `-p name=value` bound by DuckDB
as `$name` (never pasted into the SQL); `--format ndjson`; bad input exits 2 and names the problem."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from analysis_lake import write_synthetic
from emolake.cli import cli


@pytest.fixture
def toy(lake):
    write_synthetic(lake)
    return lake


def run(lake, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), "query", *args], input=input)


def test_parameters_are_bound_not_pasted(toy):
    result = run(toy, "SELECT count(*) AS n FROM stimuli WHERE dataset = $d", "-p", "d=toy-stimuli", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["n"] > 0
    # a value that would rewrite the query if it were pasted in matches nothing, as a literal
    injected = run(toy, "SELECT count(*) AS n FROM stimuli WHERE dataset = $d", "-p", "d=x' OR '1'='1",
                   "--format", "json")
    assert injected.exit_code == 0, injected.output
    assert json.loads(injected.output) == [{"n": 0}]


def test_parameter_values_arrive_unchanged_and_are_cast_where_compared(lake):
    value = "it's; DROP VIEW stimuli; --"
    result = run(lake, "SELECT $v AS v, i FROM range(50) t(i) WHERE i = $k", "-p", f"v={value}", "-p", "k=41",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"v": value, "i": 41}]


def test_sql_from_stdin(lake):
    result = run(lake, "-", "--format", "json", input="SELECT 7 AS seven\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"seven": 7}]


def test_sql_from_a_file_with_parameters(lake, tmp_path):
    path = tmp_path / "q.sql"
    path.write_text("-- a saved query\nSELECT $a || '-' || $b AS ab\n")
    result = run(lake, "--file", str(path), "-p", "a=x", "-p", "b=y", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ['"ab"', '"x-y"']


def test_ndjson_is_one_json_object_per_line(lake):
    result = run(lake, "SELECT * FROM (VALUES (1, 'a', 0.5), (2, 'b', 'NaN'::DOUBLE), (3, NULL, 1e300 * 1e300)) "
                 "t(i, s, x) ORDER BY i", "--format", "ndjson")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"i": 1, "s": "a", "x": 0.5}, {"i": 2, "s": "b", "x": None}, {"i": 3, "s": None, "x": None}]


def test_ndjson_prints_every_row_not_the_table_limit(lake):
    result = run(lake, "SELECT * FROM range(120) t(i)", "--format", "ndjson")
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 120


@pytest.mark.parametrize("args", [[], ["SELECT 1", "--file", "{file}"]], ids=["none", "both"])
def test_exactly_one_sql_source(lake, tmp_path, args):
    path = tmp_path / "q.sql"
    path.write_text("SELECT 1")
    result = run(lake, *[a.replace("{file}", str(path)) for a in args])
    assert result.exit_code == 2
    assert "exactly one" in result.output


@pytest.mark.parametrize("pair, says", [
    ("novalue", "expected name=value"), ("bad name=1", "expected name=value"), ("=1", "expected name=value"),
])
def test_malformed_parameters_exit_2(lake, pair, says):
    result = run(lake, "SELECT 1", "-p", pair)
    assert result.exit_code == 2
    assert says in result.output and "--param" in result.output


def test_a_parameter_given_twice_exits_2(lake):
    result = run(lake, "SELECT $a", "-p", "a=1", "-p", "a=2")
    assert result.exit_code == 2
    assert "given twice" in result.output


@pytest.mark.parametrize("sql, params, says", [
    ("SELECT $a", [], "a"), ("SELECT 1", ["-p", "unused=1"], "unused"),
])
def test_missing_or_unused_parameters_exit_2_naming_them(lake, sql, params, says):
    result = run(lake, sql, *params)
    assert result.exit_code == 2
    assert "parameters" in result.output and says in result.output


def test_a_file_that_is_not_utf8_exits_2_naming_it(lake, tmp_path):
    path = tmp_path / "latin1.sql"
    path.write_bytes("SELECT 'café'".encode("latin-1"))
    result = run(lake, "--file", str(path))
    assert result.exit_code == 2
    assert "latin1.sql" in result.output and "UTF-8" in result.output


def test_a_write_from_stdin_is_refused(lake):
    result = run(lake, "-", input="CREATE TABLE x AS SELECT 1")
    assert result.exit_code == 2
    assert "read-only" in result.output
