"""The lake's views on Spark SQL: source tables from the lake's files, marts transpiled from `sql/`.

`register_lake(spark, lake)` registers one Spark temp view `lake_<table>` per lake table, read
from an explicit list of files (`table_files`), with the partition keys typed as in
`warehouse/tables.py`; it then creates every view of `sql/*.sql` as a Spark temp view. The view
SQL is not written twice: `spark_views()` transpiles the DuckDB files with sqlglot (read
"duckdb", write "spark") after the per-construct rewrites below, for what sqlglot would drop or
leave in DuckDB's dialect.

- `read_parquet('<table>/...', ...)` -> the source view `lake_<table>` (its files are the ones
  `table_files` lists, so an uncommitted file is invisible to Spark too);
- `list(x ORDER BY k)` -> `transform(array_sort(collect_list(struct(k, x))), e -> e.x)`
  (sqlglot drops the ORDER BY; ascending keys only; like `collect_list`, NULL values are skipped);
- `list_avg`, `list_cosine_similarity`, `list_distance` -> `aggregate`/`zip_with` expressions;
- several `unnest(...)` in one SELECT list (DuckDB zips them by position) ->
  one `inline(arrays_zip(...)) AS (names)` (Spark allows one generator per SELECT);
- `len(x)` -> `size(x)` (every `len` in `sql/` takes a list);
- `agg(x) FILTER (WHERE c)` -> `agg(CASE WHEN c THEN x END)` for aggregates that skip NULLs
  (Spark before SPARK-55702, e.g. the 3.5 of EMR and Databricks, refuses FILTER on window aggregates);
- DuckDB's `UNPIVOT t ON a, b INTO NAME n VALUE v` statement -> `SELECT * FROM t UNPIVOT (v FOR n IN (a, b))`;
- `CREATE OR REPLACE VIEW` -> `CREATE OR REPLACE TEMPORARY VIEW`.

A DuckDB function that sqlglot does not know and no rule rewrites, and the variants the rules
do not cover (descending list order, FILTER on an aggregate that keeps NULLs), raise
`SparkSQLError` naming the file and view, rather than producing SQL that means something else;
what sqlglot does translate is checked by the parity test (tests/test_warehouse_spark.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa

from . import commit_log
from .database import sql_files
from .errors import BadInputError, EmolakeError, NotFoundError, ReadOnlyQueryError
from .lake import Lake
from .marts import MARTS
from .tables import TABLES, TableSpec

if TYPE_CHECKING:  # pyspark is optional: only the functions that take a session need it
    from pyspark.sql import SparkSession

SOURCE_PREFIX = "lake_"
# DuckDB functions sqlglot does not know (it would pass them through unchanged) that a rewrite translates.
REWRITTEN_FUNCTIONS = {"list_avg", "list_cosine_similarity", "list_distance"}
# Aggregates for which `agg(x) FILTER (WHERE c)` equals `agg(CASE WHEN c THEN x END)`: they skip NULLs.
NULL_SKIPPING_AGGREGATES = ("Count", "Sum", "Avg", "Min", "Max", "Stddev", "StddevSamp", "StddevPop",
                            "Variance", "VariancePop", "AnyValue")
# Spark SQL functions that call any static Java method: refused by `spark-sql` like writes.
JAVA_CALLING_FUNCTIONS = {"reflect", "java_method", "try_reflect"}
LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "1",
    "spark.sql.session.timeZone": "UTC",
}


class SparkSQLError(EmolakeError):
    """A view of `sql/` that cannot be translated to Spark SQL, or a lake Spark cannot read."""


# --- Source tables --------------------------------------------------------------------------

def table_files(lake: Lake, table: str) -> list[str]:
    """The data files of `table` that readers may see, as paths relative to the lake root: the
    files the commit log holds live (docs/RELIABILITY.md). Files of a killed or running commit,
    and the zero-row seed files of `Lake.init`, are never listed, so Spark sees whole commits
    only, as the DuckDB views do through `_live_files`."""
    TABLES[table]  # an unknown table is a KeyError here, not an empty list
    return sorted(f.path for f in commit_log.live_files(lake.root).values() if f.table_name == table)


def spark_type(dtype: pa.DataType) -> str:
    """The Spark SQL type (DDL) of an Arrow type used in `warehouse/tables.py`."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "STRING"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"ARRAY<{spark_type(dtype.value_type)}>"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP" if dtype.tz else "TIMESTAMP_NTZ"
    simple = {pa.bool_(): "BOOLEAN", pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT",
              pa.float32(): "FLOAT", pa.float64(): "DOUBLE"}
    if dtype in simple:
        return simple[dtype]
    raise SparkSQLError(f"no Spark type for the Arrow type {dtype}")


def spark_schema(spec: TableSpec) -> str:
    """The table's schema as Spark DDL: file columns, then the partition keys with their declared types."""
    return ", ".join(f"`{f.name}` {spark_type(f.type)}" for f in spec.full_schema())


def source_view(table: str) -> str:
    """Name of the Spark temp view holding `table`'s rows (what `read_parquet('<table>/...')` becomes)."""
    return SOURCE_PREFIX + table


def register_sources(
    spark: "SparkSession", lake: Lake, root: str | None = None, tables: Iterable[str] | None = None,
) -> dict[str, int]:
    """Register `lake_<table>` for every lake table (or `tables`) from `table_files`; returns files per table.

    `root` is where Spark reads the files (default: the lake folder), e.g. `s3a://bucket/lake` for
    a copy of the lake on object storage; the file list always comes from `lake`."""
    base = (root or f"file://{lake.root}").rstrip("/")  # not as_uri(): Hadoop paths are not %-encoded
    counts = {}
    for name in tables if tables is not None else TABLES:
        spec = TABLES[name]
        files = [_literal_path(f"{base}/{rel}") for rel in table_files(lake, name)]
        schema = spark_schema(spec)
        if files:
            try:
                frame = spark.read.schema(schema).option("basePath", f"{base}/{name}").parquet(*files)
            except Exception as exc:  # pyspark's AnalysisException: a listed file is not under root
                raise NotFoundError(f"table {name}: Spark cannot read its {len(files)} files under {base} "
                                    f"({str(exc).splitlines()[0]})", expected=f"a copy of {lake.root} there") from exc
        else:
            frame = spark.createDataFrame([], schema)
        frame.select(*[f"`{f.name}`" for f in spec.full_schema()]).createOrReplaceTempView(source_view(name))
        counts[name] = len(files)
    register_live_files(spark, lake)
    return counts


LIVE_FILES_SCHEMA = ("table_name STRING, `partition` STRING, path STRING, load_id STRING, source_path STRING, "
                     "source_sha256 STRING, `rows` BIGINT")


def register_live_files(spark: "SparkSession", lake: Lake) -> None:
    """`_live_files` (the lake's committed files, as in sql/00_tables.sql) from the commit log, for
    the views that ask what a partition was loaded from (`stale_results`)."""
    rows = [(f.table_name, f.partition, f.path, f.load_id, f.source_path, f.source_sha256, f.rows)
            for f in commit_log.live_files(lake.root).values()]
    spark.createDataFrame(rows, LIVE_FILES_SCHEMA).createOrReplaceTempView("_live_files")


def _literal_path(path: str) -> str:
    """`path` with Hadoop's glob characters escaped: Spark globs any path holding `*?[]{}\\`."""
    return re.sub(r"([*?\[\]{}\\])", r"\\\1", path)


# --- Views ----------------------------------------------------------------------------------

# The DuckDB views read only committed files through `_live_files` (sql/00_tables.sql). Spark's
# sources are built from `table_files`, which already lists only those, so the per-view filter,
# the commit log's own views and its path macro are left out; `_live_files` is registered from the
# commit log by `register_live_files`.
# The freshness views of the materialised marts (sql/35_marts.sql) read the commit log too; on Spark
# a mart's view reads its computing view instead (`spark_views`), whose rows the mart stores.
COMMIT_LOG_VIEWS = ("_commit_log", "_live_files", "_run_set_inputs", "mart_freshness")
_LIVE_FILTER = r"_lake_path\(filename, \d+\) IN \(SELECT path FROM _live_files WHERE table_name = '[a-z_]+'\)"


def _without_commit_filter(text: str) -> str:
    text = re.sub(r"\s+AND " + _LIVE_FILTER, "", text)
    return re.sub(r"WHERE " + _LIVE_FILTER, "WHERE TRUE", text)


def _commit_log_object(statement) -> bool:
    return statement.kind == "MACRO" or (statement.kind == "VIEW" and statement.this.name in COMMIT_LOG_VIEWS)


def spark_views(files: Iterable[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(view name, Spark SQL `CREATE OR REPLACE TEMPORARY VIEW ...`) of every view in `sql/*.sql`, in order."""
    import sqlglot

    views = []
    for file_name, text in files if files is not None else sql_files():
        for statement in sqlglot.parse(_without_commit_filter(text), read="duckdb"):
            if statement is None or _commit_log_object(statement):
                continue
            if not isinstance(statement, sqlglot.exp.Create) or statement.kind != "VIEW":
                raise SparkSQLError(f"sql/{file_name}: only CREATE VIEW statements translate to Spark; "
                                    f"found {statement.sql('duckdb')[:80]!r}")
            name = statement.this.name
            if name in MARTS:
                views.append((name, f"CREATE OR REPLACE TEMPORARY VIEW {name} AS "
                                    f"SELECT * FROM {MARTS[name].computing_view}"))
                continue
            try:
                views.append((name, _to_spark(statement)))
            except (SparkSQLError, sqlglot.errors.SqlglotError) as exc:
                raise SparkSQLError(f"sql/{file_name}: view {name} does not translate to Spark SQL: {exc}") from exc
    return views


def create_views(spark: "SparkSession", views: list[tuple[str, str]] | None = None) -> list[str]:
    """Run `spark_views()` on `spark` (the sources must be registered); returns the view names."""
    names = []
    for name, statement in views if views is not None else spark_views():
        try:
            spark.sql(statement)
        except Exception as exc:  # pyspark's AnalysisException and friends
            raise SparkSQLError(f"view {name} failed to build on Spark: {exc}") from exc
        names.append(name)
    return names


def register_lake(spark: "SparkSession", lake: Lake, root: str | None = None) -> list[str]:
    """Sources (`register_sources`) and every view of `sql/` on `spark`; returns the view names."""
    lake.require()
    register_sources(spark, lake, root)
    return create_views(spark)


def check_read_only(sql: str) -> list[str]:
    """The statements of `sql` (Spark dialect) if every one is a query; a write is refused.

    Spark SQL can write anywhere it can read (`INSERT OVERWRITE DIRECTORY`, `CREATE TABLE ...
    LOCATION`), so anything but SELECT/UNION/VALUES is refused before a session starts."""
    import sqlglot

    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise BadInputError(f"could not parse the query as Spark SQL: {exc}") from exc
    if not statements:
        raise BadInputError("the query is empty")
    for statement in statements:
        if not isinstance(statement, sqlglot.exp.Query):
            raise ReadOnlyQueryError(f"`spark-sql` is read-only: refusing {statement.key.upper()} "
                                     f"({statement.sql('spark')[:60]!r})")
        called = {f.name.lower() for f in statement.find_all(sqlglot.exp.Anonymous)}
        if called & JAVA_CALLING_FUNCTIONS:
            raise ReadOnlyQueryError(f"`spark-sql` refuses {', '.join(sorted(called & JAVA_CALLING_FUNCTIONS))}: "
                                     "it calls arbitrary Java methods")
    return [s.sql("spark") for s in statements]


def query(lake: Lake, sql: str, master: str = "local[1]", root: str | None = None,
          progress: bool = True) -> pa.Table:
    """Run read-only `sql` over the lake's views on Spark; returns the last statement's rows.

    Uses the active Spark session if there is one, else starts one on `master` and stops it after."""
    from .console import err

    statements = check_read_only(sql)
    lake.require()
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EmolakeError("pyspark is not installed (pip install 'emolake[spark]')") from exc
    spark = SparkSession.getActiveSession()
    started = spark is None
    if started:
        if progress:
            err.print(f"starting Spark ({master}) ...")
        spark = spark_session(master)
    try:
        if progress:
            err.print("registering the lake's tables and views ...")
        register_lake(spark, lake, root)
        try:
            for statement in statements[:-1]:
                spark.sql(statement).collect()
            return spark.sql(statements[-1]).toArrow()
        except Exception as exc:  # pyspark's AnalysisException, ParseException, ...
            raise BadInputError(f"Spark query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        if started:
            spark.stop()


def spark_session(master: str = "local[1]", app_name: str = "emolake", conf: dict[str, str] | None = None) -> "SparkSession":
    """A Spark session; for `local[...]` masters bound to 127.0.0.1, UI off, 2 shuffle partitions."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EmolakeError("pyspark is not installed (pip install 'emolake[spark]')") from exc

    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {**(LOCAL_CONF if master.startswith("local") else {}), **(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # PySparkRuntimeError JAVA_GATEWAY_EXITED, connection refused, ...
        raise EmolakeError(f"Spark did not start on {master} (is Java 17+ installed? "
                           f"apt-get install openjdk-17-jre-headless): {str(exc).splitlines()[0]}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --- Rewrites (the module docstring lists them) ---------------------------------------------

def _to_spark(statement) -> str:
    from sqlglot import ErrorLevel, exp

    statement = statement.copy()
    unknown = sorted({f.name.lower() for f in statement.find_all(exp.Anonymous)} - REWRITTEN_FUNCTIONS)
    if unknown:  # sqlglot passes functions it does not know through unchanged: DuckDB's, not Spark's
        raise SparkSQLError(f"DuckDB function(s) {', '.join(unknown)} have no Spark translation "
                            "(add a rewrite to warehouse/spark.py)")
    for node in statement.walk():
        node.comments = None
    statement.set("kind", "VIEW")
    statement.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))
    statement = statement.transform(_rewrite)
    for select in list(statement.find_all(exp.Select)):
        _zip_unnests(select)
    return statement.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


def _rewrite(node):
    from sqlglot import exp

    if isinstance(node, exp.ReadParquet):
        return _read_parquet_source(node)
    if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Pivot) and node.this.args.get("unpivot"):
        return _unpivot_statement(node)
    if isinstance(node, exp.ArrayAgg):
        return _ordered_list(node)
    if isinstance(node, exp.Filter):
        return _filter_as_case(node)
    if isinstance(node, exp.Length):
        return exp.ArraySize(this=node.this)
    if isinstance(node, (exp.Anonymous, exp.Func)):
        name = node.sql_name().upper() if not isinstance(node, exp.Anonymous) else node.name.upper()
        if name == "LIST_AVG":
            return _list_avg(node.expressions[0] if isinstance(node, exp.Anonymous) else node.this)
        if name == "LIST_COSINE_SIMILARITY":
            return _cosine_similarity(*_two_args(node))
        if name in ("LIST_DISTANCE", "EUCLIDEAN_DISTANCE"):
            return _euclidean(*_two_args(node))
    return node


def _two_args(node):
    from sqlglot import exp

    args = node.expressions if isinstance(node, exp.Anonymous) else [node.this, node.expression]
    if len(args) != 2:
        raise SparkSQLError(f"{node.sql('duckdb')} takes two lists")
    return args


def _spark(sql: str):
    import sqlglot

    return sqlglot.parse_one(sql, read="spark")


def _read_parquet_source(node):
    from sqlglot import exp

    path = node.expressions[0] if node.expressions else None
    if not isinstance(path, exp.Literal) or not path.is_string:
        raise SparkSQLError(f"read_parquet needs a literal path; found {node.sql('duckdb')!r}")
    table = path.this.split("/", 1)[0]
    if table not in TABLES:
        raise SparkSQLError(f"read_parquet of {path.this!r}: not a lake table (expected one of {sorted(TABLES)})")
    return exp.to_identifier(source_view(table))


def _unpivot_statement(node):
    """DuckDB's `(UNPIVOT t ON a, b INTO NAME n VALUE v)` -> `(SELECT * FROM t UNPIVOT (v FOR n IN (a, b)))`."""
    pivot = node.this
    into = pivot.args.get("into")
    if pivot.args.get("using") or into is None or len(into.expressions) != 1:
        raise SparkSQLError(f"only `UNPIVOT t ON columns INTO NAME n VALUE v` translates; found {node.sql('duckdb')!r}")
    columns = ", ".join(c.sql("spark") for c in pivot.expressions)
    sql = (f"SELECT * FROM {pivot.this.sql('spark')} UNPIVOT ({into.expressions[0].sql('spark')} "
           f"FOR {into.this.sql('spark')} IN ({columns}))")
    return _spark(f"({sql})")


def _ordered_list(node):
    """`list(x ORDER BY k)` -> sort structs (k, x) and keep x; without ORDER BY, `collect_list(x)`."""
    from sqlglot import exp

    inner = node.this
    if not isinstance(inner, exp.Order):
        return node
    keys = inner.expressions
    if any(k.args.get("desc") for k in keys):
        raise SparkSQLError(f"list(... ORDER BY ... DESC) does not translate; found {node.sql('duckdb')!r}")
    fields = ", ".join(f"{k.this.sql('spark')} AS k{i}" for i, k in enumerate(keys))
    value = inner.this.sql("spark")
    return _spark(f"SELECT TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT({fields}, {value} AS v))), e__ -> e__.v)").expressions[0]


def _filter_as_case(node):
    from sqlglot import exp

    aggregate, condition = node.this, node.expression.this
    if type(aggregate).__name__ not in NULL_SKIPPING_AGGREGATES:
        raise SparkSQLError(f"FILTER on an aggregate that keeps NULLs does not translate; found {node.sql('duckdb')!r}")
    aggregate = aggregate.copy()
    argument = aggregate.this
    distinct = isinstance(argument, exp.Distinct)
    value = argument.expressions[0] if distinct else argument
    if isinstance(value, exp.Star):
        value = exp.Literal.number(1)
    case = exp.Case(ifs=[exp.If(this=condition.copy(), true=value.copy())])
    aggregate.set("this", exp.Distinct(expressions=[case]) if distinct else case)
    return aggregate


def _sum(array: str) -> str:
    return f"AGGREGATE({array}, CAST(0 AS DOUBLE), (s__, x__) -> s__ + x__)"


def _list_avg(value):
    v = value.sql("spark")
    return _spark(f"SELECT {_sum(v)} / NULLIF(SIZE({v}), 0)").expressions[0]


def _cosine_similarity(a, b):
    a, b = a.sql("spark"), b.sql("spark")
    dot = _sum(f"ZIP_WITH({a}, {b}, (x__, y__) -> x__ * y__)")
    norms = f"SQRT({_sum(f'TRANSFORM({a}, x__ -> x__ * x__)')}) * SQRT({_sum(f'TRANSFORM({b}, x__ -> x__ * x__)')})"
    return _spark(f"SELECT ({dot}) / NULLIF({norms}, 0)").expressions[0]


def _euclidean(a, b):
    a, b = a.sql("spark"), b.sql("spark")
    return _spark(f"SELECT SQRT({_sum(f'ZIP_WITH({a}, {b}, (x__, y__) -> (x__ - y__) * (x__ - y__))')})").expressions[0]


def _zip_unnests(select) -> None:
    """Several `unnest(x) AS name` projections of one SELECT -> one `inline(arrays_zip(...)) AS (names)`."""
    from sqlglot import exp

    unnests = [(i, p) for i, p in enumerate(select.expressions)
               if isinstance(p, exp.Alias) and isinstance(p.this, (exp.Explode, exp.Unnest))]
    if len(unnests) < 2:
        return
    arrays = ", ".join(p.this.this.sql("spark") for _, p in unnests)
    names = ", ".join(p.alias for _, p in unnests)
    zipped = _spark(f"SELECT INLINE(ARRAYS_ZIP({arrays})) AS ({names})").expressions[0]
    first = unnests[0][0]
    dropped = {i for i, _ in unnests}
    projections = [zipped if i == first else p for i, p in enumerate(select.expressions) if i == first or i not in dropped]
    select.set("expressions", projections)
