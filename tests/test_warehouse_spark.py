"""The views of `sql/` on Spark SQL (PySpark local mode) give the same rows as in DuckDB.

One small lake fills every table (synthetic stimuli, ratings, attributes, similarity and
activations; the real `rsa`, `searchlight`, `neurons` and ablation statistics over them; a few
rows of the inference and release tables), so every view has rows. Without Java or pyspark the
Spark tests are skipped, except under CI (`CI=true`), where they fail. The tests that start Spark
are marked slow (minutes on 2 busy cores); the file-list, transpile and CLI checks are not.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from emolake.analysis.ablation_stats import refresh_ablation_statistics
from emolake.analysis.neurons import run_neurons
from emolake.analysis.cross_model import compare_run_sets
from emolake.analysis.rsa import run_rsa
from emolake.analysis.searchlight import run_searchlight
from emolake.warehouse.database import connect, sql_files
from emolake.warehouse.lake import Lake
from emolake.warehouse.spark import COMMIT_LOG_VIEWS, SparkSQLError, register_lake, register_sources, source_view, spark_views, table_files
from emolake.warehouse.tables import TABLES

from analysis_lake import ATTRIBUTES, write_profiles_copy, write_synthetic

# every view of sql/ but the commit log's own (Spark's sources hold only committed files already)
VIEWS = [name for _, text in sql_files() for name in re.findall(r"CREATE OR REPLACE VIEW (\w+)", text)
         if name not in COMMIT_LOG_VIEWS]
# A few rows per table: planning and compiling cost more than running, so no adaptive re-planning,
# one shuffle partition and no whole-stage code generation (expressions are still compiled).
TINY_DATA_CONF = {"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "1",
                  "spark.sql.codegen.wholeStage": "false"}
# Tests that start Spark take minutes on 2 busy cores (docs/BENCHMARKS.md): run by CI's full `pytest -q`.
SPARK = pytest.mark.slow
REL_TOL, ABS_TOL = 1e-9, 1e-12  # abs only for values that are 0 up to rounding (1 - cos of equal lists)


def _spark_missing() -> str | None:
    missing = [what for what, ok in (("java", shutil.which("java")), ("pyspark", importlib.util.find_spec("pyspark")),
                                     ("sqlglot", importlib.util.find_spec("sqlglot"))) if not ok]
    return f"{' and '.join(missing)} not installed (apt-get install openjdk-17-jre-headless; pip install -e '.[test]')" \
        if missing else None


def require_spark() -> None:
    reason = _spark_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the Spark parity tests cannot run: {reason}")
    pytest.skip(reason)


# --- The lake -------------------------------------------------------------------------------

def _write_extra_tables(lake: Lake, emotions: list[str], run_set: str, study: str, run_id: str) -> None:
    """Rows for the tables the synthetic fixture and the analyses leave empty."""
    created = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    ratings = [{"rater": f"r{r}", "emotion": e, "attribute": a, "rating": None if (r, e, a) == (1, emotions[0], "valence")
                else float((r + 2 * i + 3 * j) % 9 + 1), "scale_min": 1.0, "scale_max": 9.0, "instrument": "affective"}
               for r in range(3) for i, e in enumerate(emotions[:3]) for j, a in enumerate(ATTRIBUTES)]
    iid = "inf-0"
    with lake.transaction("spark parity fixture") as txn:
        txn.write("ratings", pa.Table.from_pylist(ratings), {"study": study})
        txn.write("rater_exclusions", pa.Table.from_pylist([
            {"instrument": "affective", "rater": "r9", "reason": "failed catch item"}]), {"study": study})
        txn.write("appraisal_components", pa.Table.from_pylist([
            {"emotion": e, "attribute": "pleasantness", "value": 0.25 * i - 1.0, "component": 1, "r_published": 0.875}
            for i, e in enumerate(emotions)]), {"study": study})
        txn.write("release_accuracy", pa.Table.from_pylist([
            {"run_id": run_id, "emotion": e, "seed": 42, "accuracy": 0.5 + 0.0625 * i, "source": "test"}
            for i, e in enumerate(emotions)]), {"run_set": run_set})
        txn.write("inferences", pa.Table.from_pylist([{
            "model": "toy", "dataset": "toy-stimuli", "readout": "probe", "task": "binary", "fit_split": "train",
            "select_split": "dev", "report_split": "test", "template": "{text}", "pooling": "mean", "seed": 0,
            "max_per_emotion": None, "params_json": '{"c": [0.1, 1.0]}', "created_at": created,
            "code_version": "test"}]), {"inference_id": iid})
        txn.write("inference_accuracy", pa.Table.from_pylist([
            {"emotion": e, "split": "test", "n_stimuli": 4, "accuracy": 0.75, "selected": "c=1.0", "seed": 0}
            for e in emotions]),
            {"inference_id": iid})
        txn.write("task_stimuli", pa.Table.from_pylist([
            {"emotion": emotions[0], "split": "test", "stimulus_id": f"{e}-0", "label": int(e == emotions[0]),
             "draw_seed": 7, "seed": 0} for e in emotions]), {"inference_id": iid})
        txn.write("prompts", pa.Table.from_pylist([
            {"emotion": e, "seed": seed, "n_prompt": 2, "hidden": 2, "vectors": [0.5, -1.25, 1e-3, 2.0],
             "words": ["no", "yes"], "settings": '{"epochs": 2}', "best_epoch": 1, "select_accuracy": 0.75,
             "report_accuracy": 0.5, "losses": [0.75, 0.5], "model": "toy", "weights_sha256": "w",
             "tokenizer_sha256": "t", "created_at": created} for e in emotions[:2] for seed in (1, 2)]),
            {"inference_id": iid})
        txn.write("probes", pa.Table.from_pylist([
            {"emotion": e, "class_index": i, "weights": [0.5 * i, -1.25, 1e-3], "bias": 0.125, "c": 1.0}
            for i, e in enumerate(emotions)]), {"inference_id": iid})
        txn.write("predictions", pa.Table.from_pylist([
            {"condition_id": "unablated", "emotion": emotions[0], "split": "test", "stimulus_id": f"{e}-1",
             "label": int(e == emotions[0]), "predicted": 1, "score": 0.1 * i} for i, e in enumerate(emotions)]),
            {"inference_id": iid, "run_set": "inference"})
        _write_ablation(txn, emotions, run_set, study)


def _write_ablation(txn, emotions: list[str], run_set: str, study: str) -> None:
    """An ablation sweep in the layout `emolake ablate` stores: unablated, 3 attributes and 2 shared controls per k."""
    conditions = [("unablated", None, 0)] + [("attribute", a, 0) for a in ATTRIBUTES] + [("random", None, d) for d in range(2)]
    for k in (2, 4):
        ids = ["unablated" if kind == "unablated" else f"{kind}:{a or '-'}:k{k}:d{d}" for kind, a, d in conditions]
        txn.write("ablations", pa.Table.from_pylist([
            {"condition_id": cid, "kind": kind, "attribute": a, "draw": d, "seed": 100 + d if kind == "random" else None,
             "layer_matched": False, "scope": "global", "mode": "zero", "mode_value": 0.0,
             "neurons": [] if kind == "unablated" else [d, d + k, 2 * k + 1], "source": "test"}
            for cid, (kind, a, d) in zip(ids, conditions)]), {"run_set": run_set, "study": study, "k": k})
        rows = []
        for e_index, e in enumerate(emotions):
            for replicate in (1, 2):
                for c_index, (cid, (kind, _, _)) in enumerate(zip(ids, conditions)):
                    accuracy = 0.9 - (0.05 * k if kind == "attribute" else 0.01 * k) * (c_index % 3 + 1) \
                        - 0.01 * e_index + 0.003 * replicate
                    rows.append({"condition_id": cid, "emotion": e, "replicate": replicate, "inference_id": "inf-0",
                                 "model": "toy", "dataset": "toy-stimuli", "split": "test", "n_stimuli": 4,
                                 "accuracy": 0.9 if kind == "unablated" else accuracy})
        txn.write("ablation_accuracy", pa.Table.from_pylist(rows), {"run_set": run_set, "study": study, "k": k})


@pytest.fixture(scope="module")
def full_lake(tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("spark") / "lake")
    lake.init()
    s = write_synthetic(lake, n_emotions=6, units=5)
    _write_extra_tables(lake, s.emotions, s.run_set, s.study, s.run_ids[0])
    run_rsa(lake, s.study, s.run_set, n_perm=20, n_boot=10, seed=0, progress=False)
    run_searchlight(lake, s.run_set, s.study, alpha=0.2, progress=False)
    run_neurons(lake, s.run_set, s.study, [2, 4], scope="global")
    run_neurons(lake, s.run_set, s.study, [1], scope="per_layer")
    refresh_ablation_statistics(lake, s.run_set, s.study)
    # a second run set on the same study (new attribute values: the first run set's results go stale)
    b = write_synthetic(lake, n_emotions=6, units=5, seed=1, run_set="toy-b", study=s.study)
    run_rsa(lake, b.study, b.run_set, n_perm=20, n_boot=10, seed=0, progress=False)
    compare_run_sets(lake, [s.run_set, b.run_set], s.study, n_boot=20, seed=0, progress=False)
    write_profiles_copy(lake, s.run_ids[0], "toy-profiles")  # `extract --store profiles`'s tables
    return lake


@pytest.fixture(scope="module")
def duckdb_rows(full_lake: Lake) -> dict[str, tuple[list[str], list[tuple]]]:
    with connect(full_lake) as con:
        out = {}
        for view in VIEWS:
            result = con.sql(f'SELECT * FROM "{view}"')
            out[view] = (result.columns, result.fetchall())
    return out


@pytest.fixture(scope="module")
def spark():
    """One local Spark session for the module (loopback only, UI off), stopped at the end."""
    require_spark()
    from emolake.warehouse.spark import spark_session

    session = spark_session("local[1]", conf=TINY_DATA_CONF)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_lake(spark, full_lake: Lake):
    register_lake(spark, full_lake)
    return spark


# --- Comparing rows -------------------------------------------------------------------------

def _plain(value):
    """A value as a comparable Python object: tuples for lists and rows (a Spark Row is a tuple),
    UTC-naive datetimes, floats for decimals."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sort_key(row: tuple) -> tuple:
    # floats rounded to 6 digits so that the two engines' last-digit differences do not reorder rows
    return tuple((v is None, f"{v:.6g}" if isinstance(v, float) else repr(v)) for v in row)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- Tests ----------------------------------------------------------------------------------

def test_every_view_of_sql_is_checked_and_has_rows(duckdb_rows) -> None:
    assert len(VIEWS) >= 40
    empty = [view for view, (_, rows) in duckdb_rows.items() if not rows]
    assert not empty, f"the parity lake leaves these views empty: {empty}"


@SPARK
@pytest.mark.parametrize("view", VIEWS)
def test_view_has_the_same_rows_in_spark_and_duckdb(spark_lake, duckdb_rows, view: str) -> None:
    columns, expected = duckdb_rows[view]
    frame = spark_lake.table(view)
    assert frame.columns == columns
    got = sorted((_plain(tuple(r)) for r in frame.collect()), key=_sort_key)
    expected = sorted((_plain(r) for r in expected), key=_sort_key)
    assert len(got) == len(expected), f"{view}: {len(got)} rows in Spark, {len(expected)} in DuckDB"
    bad = [(g, e) for g, e in zip(got, expected) if not _same(g, e)]
    assert not bad, f"{view}: {len(bad)} rows differ, first: spark {bad[0][0]} vs duckdb {bad[0][1]}"


@SPARK
def test_partition_keys_have_their_declared_types(spark_lake) -> None:
    types = dict(spark_lake.table(source_view("activations")).dtypes)
    assert types["run_id"] == "string" and types["layer"] == "int"
    assert dict(spark_lake.table(source_view("ablations")).dtypes)["k"] == "bigint"
    assert dict(spark_lake.table("stimuli").dtypes)["n_labels"] == "smallint"


@SPARK
def test_spark_reads_exactly_the_files_table_files_lists(spark_lake, full_lake: Lake, monkeypatch) -> None:
    """A Parquet file on disk that no commit names is not listed and adds no rows; what is listed is read."""
    import pyarrow.parquet as pq

    import emolake.warehouse.spark as module

    before = spark_lake.table("stimuli").count()
    stray = full_lake.root / "stimuli" / "dataset=stray" / "part-uncommitted.parquet"
    stray.parent.mkdir()
    pq.write_table(pa.table({"split": ["test"], "stimulus_id": ["x"], "text": ["t"], "emotion": ["joy"],
                             "n_labels": pa.array([1], pa.int16()), "source_row": [0]}), stray)
    try:
        listed = module.table_files
        assert not [f for f in listed(full_lake, "stimuli") if "stray" in f]  # no commit names it
        register_sources(spark_lake, full_lake, tables=["stimuli"])
        assert spark_lake.table("stimuli").count() == before
        rel = stray.relative_to(full_lake.root).as_posix()
        monkeypatch.setattr(module, "table_files", lambda lake, table: [*listed(lake, table), rel])
        register_sources(spark_lake, full_lake, tables=["stimuli"])
        assert spark_lake.table("stimuli").where("dataset = 'stray'").count() == 1
        monkeypatch.setattr(module, "table_files", listed)
    finally:
        stray.unlink()
        stray.parent.rmdir()
        register_sources(spark_lake, full_lake, tables=["stimuli"])


# Each DuckDB-only construct the transpile step rewrites, on rows where getting it wrong shows
# (input out of order, lists of different lengths): DuckDB and Spark must agree.
CONSTRUCTS = {
    "list_order_by": "SELECT g, list(x ORDER BY k) AS v FROM (VALUES (1, 3, 'c'), (2, 5, 'e'), (1, 1, 'a'), "
                     "(1, 2, 'b'), (2, 4, 'd')) AS s(g, k, x) GROUP BY g",
    "list_math": "SELECT i, list_avg(a) AS m, list_cosine_similarity(a, b) AS c, list_distance(a, b) AS d, "
                 "list_transform(a, lambda x: x - 1) AS t FROM (VALUES (1, [1.0, 2.0, 4.0]::DOUBLE[], "
                 "[3.0, -1.0, 0.5]::DOUBLE[]), (2, [0.5, 0.25, 8.0]::DOUBLE[], [1.0, 1.0, 1.0]::DOUBLE[])) AS s(i, a, b)",
    "filter_in_window": "SELECT g, x, count(*) FILTER (WHERE x > 1) OVER (PARTITION BY g) AS n FROM "
                        "(VALUES (1, 1), (1, 2), (1, 3), (2, 0)) AS s(g, x)",
    "filter_distinct": "SELECT g, count(DISTINCT x) FILTER (WHERE x > 1) AS n, sum(x) FILTER (WHERE x < 3) AS s "
                       "FROM (VALUES (1, 2), (1, 2), (1, 3), (2, 0)) AS s(g, x) GROUP BY g",
    "two_unnests": "SELECT id, len(a) AS n, unnest(range(len(a))) AS i, unnest(a) AS x FROM "
                   "(VALUES (1, [10, 20, 30]), (2, [40])) AS s(id, a)",
    "unpivot": "SELECT * FROM (UNPIVOT (SELECT 'p' AS k, 1.5::DOUBLE AS a, CAST(NULL AS DOUBLE) AS b, 2.5::DOUBLE AS c) "
               "ON a, b, c INTO NAME metric VALUE distance)",
}


@SPARK
@pytest.mark.parametrize("name", CONSTRUCTS)
def test_rewritten_construct_gives_the_same_rows_in_spark_and_duckdb(spark, name: str) -> None:
    import duckdb

    body = CONSTRUCTS[name]
    result = duckdb.connect().sql(body)
    expected = sorted((_plain(r) for r in result.fetchall()), key=_sort_key)
    [(view, statement)] = spark_views([("constructs.sql", f"CREATE OR REPLACE VIEW c_{name} AS {body}")])
    spark.sql(statement)
    frame = spark.table(view)
    assert frame.columns == result.columns
    got = sorted((_plain(tuple(r)) for r in frame.collect()), key=_sort_key)
    assert len(got) == len(expected) and all(_same(g, e) for g, e in zip(got, expected)), (got, expected)


@SPARK
def test_files_are_read_under_root_and_listed_from_the_lake(spark_lake, full_lake: Lake, duckdb_rows, tmp_path) -> None:
    """`root` (an S3 prefix on a cluster) is where the files are read; the list still comes from the lake.

    The copy's folder name holds a space and glob characters, which Spark must read literally."""
    from urllib.parse import unquote

    copy = tmp_path / "lake copy [1]"
    shutil.copytree(full_lake.root / "stimuli", copy / "stimuli")
    try:
        register_sources(spark_lake, full_lake, root=f"file://{copy}", tables=["stimuli"])
        paths = {unquote(r[0]) for r in spark_lake.sql("SELECT DISTINCT input_file_name() FROM lake_stimuli").collect()}
        assert paths and all(p.startswith(f"file://{copy}/stimuli/dataset=") for p in paths)
        assert spark_lake.table("stimuli").count() == len(duckdb_rows["stimuli"][1])
    finally:
        register_sources(spark_lake, full_lake, tables=["stimuli"])


@SPARK
def test_a_root_without_the_files_is_refused_by_table(spark_lake, full_lake: Lake, tmp_path) -> None:
    from emolake.warehouse.errors import NotFoundError

    with pytest.raises(NotFoundError, match=r"table stimuli: Spark cannot read its \d+ files under file://"):
        register_sources(spark_lake, full_lake, root=f"file://{tmp_path}", tables=["stimuli"])
    assert spark_lake.table("stimuli").count() > 0  # the registered source is left as it was


# --- Without a Spark session: the file list and the transpile step ---------------------------

def test_table_files_lists_data_files_but_not_seeds_or_staged_files(full_lake: Lake) -> None:
    files = table_files(full_lake, "activations")
    assert files and all(re.fullmatch(r"activations/run_id=[^/]+/layer=\d+/[^/]+\.parquet", f) for f in files)
    assert not any("_empty" in f or "layer=-1" in f for f in files)
    assert table_files(full_lake, "loads") and "loads/part-seed.parquet" not in table_files(full_lake, "loads")
    (full_lake.root / ".staging" / "x" / "stimuli").mkdir(parents=True)
    try:
        assert all(f.startswith("stimuli/dataset=") for f in table_files(full_lake, "stimuli"))
    finally:
        shutil.rmtree(full_lake.root / ".staging")
    empty = Lake(full_lake.root.parent / "empty")
    empty.init()
    assert all(table_files(empty, name) == [] for name in TABLES)


def test_transpile_rewrites_duckdb_only_constructs() -> None:
    pytest.importorskip("sqlglot")
    sql = dict(spark_views([("99_t.sql", """
        CREATE OR REPLACE VIEW t AS
        SELECT list(value ORDER BY neuron) AS v, list_avg(v) AS m, count(*) FILTER (WHERE x > 1) AS n,
               list_cosine_similarity(a, b) AS c, list_distance(a, b) AS d
        FROM read_parquet('stimuli/*/*.parquet', hive_partitioning = true) GROUP BY 1;
        CREATE OR REPLACE VIEW u AS SELECT len(a) AS n, unnest(range(len(a))) AS i, unnest(a) AS x FROM t;""")]))
    assert sql["t"].startswith("CREATE OR REPLACE TEMPORARY VIEW t AS")
    assert "ARRAY_SORT(COLLECT_LIST(STRUCT(neuron AS k0, value AS v)))" in sql["t"]
    assert "FROM lake_stimuli" in sql["t"] and "FILTER" not in sql["t"] and "COUNT(CASE WHEN x > 1 THEN 1 END)" in sql["t"]
    assert "LIST_" not in sql["t"].upper() and "EUCLIDEAN" not in sql["t"].upper()
    assert "INLINE(ARRAYS_ZIP(" in sql["u"] and ") AS (i, x)" in sql["u"] and sql["u"].count("SIZE(a)") >= 2


@pytest.mark.parametrize("statement, message", [
    ("CREATE OR REPLACE VIEW t AS SELECT * FROM read_parquet('../etc/*.parquet')", "not a lake table"),
    ("CREATE OR REPLACE VIEW t AS SELECT list(x ORDER BY k DESC) AS v FROM s", "DESC"),
    ("CREATE OR REPLACE VIEW t AS SELECT list(x) FILTER (WHERE x > 0) AS v FROM s", "keeps NULLs"),
    ("CREATE TABLE t AS SELECT 1", "only CREATE VIEW"),
    ("CREATE OR REPLACE VIEW t AS SELECT list_sum(x) AS s FROM s", "list_sum have no Spark translation"),
])
def test_constructs_that_do_not_translate_are_refused_by_name(statement: str, message: str) -> None:
    pytest.importorskip("sqlglot")
    with pytest.raises(SparkSQLError, match=message) as info:
        spark_views([("99_bad.sql", statement)])
    assert "99_bad.sql" in str(info.value)


# --- The CLI --------------------------------------------------------------------------------

def test_spark_sql_print_gives_every_view_as_spark_sql(full_lake: Lake) -> None:
    pytest.importorskip("sqlglot")
    from click.testing import CliRunner

    from emolake.cli import cli

    result = CliRunner().invoke(cli, ["--lake", str(full_lake.root), "spark-sql", "--print"])
    assert result.exit_code == 0, result.output
    assert re.findall(r"(?m)^CREATE OR REPLACE TEMPORARY VIEW (\w+) AS ", result.output) == VIEWS
    assert "read_parquet" not in result.output.lower()


@pytest.mark.parametrize("sql", ["INSERT OVERWRITE DIRECTORY '/tmp/out' SELECT * FROM stimuli",
                                 "CREATE TABLE t USING parquet LOCATION '/tmp/t' AS SELECT 1", "DROP VIEW stimuli",
                                 "SELECT 1; DROP VIEW stimuli",
                                 "SELECT reflect('java.lang.System', 'exit', '0') AS x"])
def test_spark_sql_refuses_writes_and_leaves_the_lake_as_it_was(full_lake: Lake, sql: str) -> None:
    pytest.importorskip("sqlglot")
    from click.testing import CliRunner

    from emolake.cli import cli
    from conftest import tree_hashes

    before = tree_hashes(full_lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(full_lake.root), "spark-sql", sql])
    assert result.exit_code == 2 and ("read-only" in result.output or "arbitrary Java" in result.output)
    assert tree_hashes(full_lake.root) == before


@SPARK
def test_spark_sql_runs_a_query_over_the_views(spark_lake, full_lake: Lake, duckdb_rows) -> None:
    from click.testing import CliRunner

    from emolake.cli import cli

    result = CliRunner().invoke(cli, ["--lake", str(full_lake.root), "spark-sql", "--format", "csv",
                                      "SELECT metric, count(*) AS n FROM model_rdm GROUP BY metric ORDER BY metric"])
    assert result.exit_code == 0, result.output
    columns, rows = duckdb_rows["model_rdm"]
    metric = columns.index("metric")
    expected = {m: sum(r[metric] == m for r in rows) for m in ("correlation", "cosine", "euclidean")}
    assert result.output.strip().splitlines()[-3:] == [f'"{m}",{n}' for m, n in expected.items()]
    assert spark_lake.table("stimuli").count() > 0  # the command used the active session and left it running
