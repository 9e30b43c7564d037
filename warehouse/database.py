"""The DuckDB warehouse: `warehouse.duckdb` holds views only, rebuilt from `sql/*.sql` in order.

The SQL files use paths relative to the lake (`read_parquet('stimuli/*/*.parquet', ...)`), so they
run unchanged in a plain `duckdb` shell started in the lake directory; from Python we set
DuckDB's `file_search_path` to the lake instead of changing the working directory.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from .errors import BadInputError, ReadOnlyQueryError
from .lake import Lake, write_bytes_atomic

SQL_PACKAGE = "sql"
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
# Written in the oldest storage format that holds views, so the DuckDB shell from PyPI
# (`pip install duckdb-cli`, 1.x) and R's duckdb package can open the warehouse too.
STORAGE_COMPATIBILITY = {"storage_compatibility_version": "v1.0.0"}


def sql_files() -> list[tuple[str, str]]:
    """(name, text) of every `sql/*.sql` file, in file-name order."""
    root = resources.files(SQL_PACKAGE)
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text()) for p in files]


def _configure(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    con.execute("SET file_search_path = ?", [str(lake.root)])


def views_fingerprint() -> str:
    """sha256 over the SQL files: the views are rebuilt whenever it changes."""
    digest = hashlib.sha256()
    for name, text in sql_files():
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def _fingerprint_path(lake: Lake) -> Path:
    return lake.root / ".views-sha256"


def rebuild_views(lake: Lake) -> list[str]:
    """Drop and recreate every view from `sql/*.sql`; returns the files applied."""
    lake.require()
    applied = []
    with duckdb.connect(str(lake.database_path), config=STORAGE_COMPATIBILITY) as con:
        _configure(con, lake)
        for name, text in sql_files():
            try:
                con.execute(text)
            except duckdb.Error as exc:
                raise BadInputError(f"sql/{name} failed to build: {exc}") from exc
            applied.append(name)
        con.execute("CHECKPOINT")
    write_bytes_atomic(views_fingerprint().encode(), _fingerprint_path(lake))
    return applied


@contextlib.contextmanager
def connect(lake: Lake, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse with relative paths resolved in the lake."""
    lake.require()
    stamp = _fingerprint_path(lake)
    if not lake.database_path.exists() or not stamp.exists() or stamp.read_text() != views_fingerprint():
        rebuild_views(lake)
    con = duckdb.connect(str(lake.database_path), read_only=read_only)
    try:
        _configure(con, lake)
        yield con
    finally:
        con.close()


def check_read_only(sql: str) -> None:
    """Refuse anything but SELECT-like statements (DESCRIBE, SHOW, SUMMARIZE, EXPLAIN are fine)."""
    try:
        statements = duckdb.connect().extract_statements(sql)
    except duckdb.Error as exc:
        raise BadInputError(f"could not parse the query: {exc}") from exc
    if not statements:
        raise BadInputError("the query is empty")
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise ReadOnlyQueryError(
                f"`query` is read-only: refusing a {kind} statement "
                f"({statement.query.strip()[:60]!r}); write to the lake with emolake commands"
            )


def query(lake: Lake, sql: str, params: dict[str, object] | None = None) -> pa.Table:
    """Run read-only `sql` against the warehouse and return the last statement's result.

    `params` are bound by DuckDB to the `$name` placeholders of the last statement (prepared
    parameters: values never become SQL text)."""
    check_read_only(sql)
    with connect(lake, read_only=True) as con:
        try:
            statements = con.extract_statements(sql)
            for statement in statements[:-1]:
                con.execute(statement)
            return con.sql(statements[-1].query, params=params or None).to_arrow_table()
        except duckdb.Error as exc:
            raise BadInputError(f"query failed: {exc}") from exc


def table_counts(lake: Lake) -> dict[str, int]:
    """Row count of every view in the warehouse (what `status` shows)."""
    with connect(lake) as con:
        views = [r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' ORDER BY view_name"
        ).fetchall()]
        return {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0] for v in views}


def sql_dir() -> Path:
    return Path(str(resources.files(SQL_PACKAGE)))
