"""The DuckDB warehouse: `warehouse.duckdb` holds views only, rebuilt from `sql/*.sql` in order.

The SQL files use paths relative to the lake (`read_parquet('stimuli/*/*.parquet', ...)`), so they
run unchanged in a plain `duckdb` shell started in the lake directory; from Python we set
DuckDB's `file_search_path` to the lake instead of changing the working directory. A lake on
object storage (`storage.py`) keeps `warehouse.duckdb` in this machine's cache; its views name
the lake's absolute 's3://bucket/prefix/...' paths (DuckDB's search path is for local files), and
every connection reads them through the lake's s3fs filesystem, registered on it.

User SQL (`emolake query`, `export --where`) runs in a sandbox (`sandboxed_connect`): its own
in-memory DuckDB instance with the warehouse attached read-only, file access confined by DuckDB's
`allowed_directories` to the lake's table folders, external access, extension autoloading and
autoinstalling off, and the configuration locked; plus a statement-type check that also looks
inside EXPLAIN / EXPLAIN ANALYZE (`check_read_only`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from .commit_log import COMMIT_DIR
from .errors import BadInputError, ReadOnlyQueryError, quote
from .lake import Lake, write_bytes_atomic
from .locks import LOCK_DIR, FileLock
from .tables import TABLES

SQL_PACKAGE = "emolake.sql"
READ_ONLY_STATEMENTS = {"SELECT"}  # DESCRIBE, SHOW, SUMMARIZE parse as SELECT; EXPLAIN is looked into
# `EXPLAIN [ANALYZE] [(options)]` in front of the statement it wraps.
EXPLAIN_PREFIX = re.compile(r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\((?:[^()]|\([^()]*\))*\)\s*)?", re.IGNORECASE)
NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# Written in the oldest storage format that holds views, so the DuckDB shell from PyPI
# (`pip install duckdb-cli`, 1.x) and R's duckdb package can open the warehouse too.
STORAGE_COMPATIBILITY = {"storage_compatibility_version": "v1.0.0"}
OPEN_TIMEOUT = 60.0  # seconds to wait for another process rebuilding the views


def sql_files() -> list[tuple[str, str]]:
    """(name, text) of every `sql/*.sql` file, in file-name order."""
    root = resources.files(SQL_PACKAGE)
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text()) for p in files]


def _configure(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    lake.storage.register(con)
    con.execute("SET file_search_path = ?", [str(lake.database_path.parent)])


READ_PARQUET_RELATIVE = re.compile(r"read_parquet\('(?![a-z0-9]+://)")


def view_sql(lake: Lake, text: str) -> str:
    """A `sql/` file as it is built for `lake`: its relative lake paths made absolute on object storage."""
    if lake.storage.local:
        return text
    return READ_PARQUET_RELATIVE.sub(lambda m: f"read_parquet('{lake.root}/", text)


def views_fingerprint() -> str:
    """sha256 over the SQL files: the views are rebuilt whenever it changes."""
    digest = hashlib.sha256()
    for name, text in sql_files():
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def _fingerprint_path(lake: Lake) -> Path:
    return lake.database_path.with_name(".views-sha256")


def rebuild_views(lake: Lake, only_if_stale: bool = False) -> list[str]:
    """Drop and recreate every view from `sql/*.sql`; returns the files applied.

    One process at a time (the warehouse lock; with `only_if_stale`, nothing is done if another
    process rebuilt them meanwhile). DuckDB refuses a read-write open while another process has
    the file open, so that is retried for a while. Tables added to `warehouse.tables` since the
    lake was created get their zero-row seed file first, so that an older lake builds every view."""
    lake.require().init()
    applied: list[str] = []
    with _warehouse_lock(lake).held(timeout=OPEN_TIMEOUT):
        if only_if_stale and not _views_stale(lake):
            return applied
        with _open(lake, read_only=False) as con:
            _configure(con, lake)
            for name, text in sql_files():
                try:
                    con.execute(view_sql(lake, text))
                except duckdb.Error as exc:
                    raise BadInputError(f"sql/{name} failed to build: {exc}") from exc
                applied.append(name)
            # the definitions a materialised mart is fresh with (sql/35_marts.sql defines a placeholder)
            con.execute(f"CREATE OR REPLACE MACRO _views_sha256() AS '{views_fingerprint()}'")
            con.execute("CHECKPOINT")
        write_bytes_atomic(views_fingerprint().encode(), _fingerprint_path(lake))
    return applied


def _views_stale(lake: Lake) -> bool:
    stamp = _fingerprint_path(lake)
    return not lake.database_path.exists() or not stamp.exists() or stamp.read_text() != views_fingerprint()


def _warehouse_lock(lake: Lake) -> FileLock:
    return FileLock(lake.database_path.parent / LOCK_DIR / "warehouse.lock", f"the warehouse of {lake.root}",
                    "rebuild views")


def _open(lake: Lake, read_only: bool) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried while another process holds a conflicting lock on the file."""
    deadline = time.monotonic() + OPEN_TIMEOUT
    while True:
        try:
            if read_only:
                return duckdb.connect(str(lake.database_path), read_only=True)
            return duckdb.connect(str(lake.database_path), config=STORAGE_COMPATIBILITY)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def connect(lake: Lake, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse with relative paths resolved in the lake."""
    _ensure_views(lake)
    con = _open(lake, read_only)
    try:
        _configure(con, lake)
        yield con
    finally:
        con.close()


def _ensure_views(lake: Lake) -> None:
    lake.require()
    if _views_stale(lake):
        rebuild_views(lake, only_if_stale=True)


def readable_folders() -> list[str]:
    """The lake's top-level folders that user SQL may read (and that the symlink scan walks): the tables
    and the commit log the views filter on."""
    return [*TABLES, COMMIT_DIR]


def readable_directories(lake: Lake) -> list[str]:
    """`allowed_directories`: the readable folders, relative (as the views name them) and absolute
    (on object storage: 's3://bucket/prefix/<folder>/' only)."""
    folders = readable_folders()
    relative = [f"{name}/" for name in folders] if lake.storage.local else []
    return relative + [f"{lake.root / name}/" for name in folders]


def symlinks_leading_out(lake: Lake) -> list[Path]:
    """Links in or as the readable folders that resolve outside the lake (DuckDB does not follow them for us).

    One `scandir` walk; an entry's link flag comes with the directory listing, so only links are stat'ed.
    Object stores have no links.
    """
    if not lake.storage.local:
        return []
    root = Path(os.path.realpath(lake.root))
    found = [lake.root / name for name in readable_folders()
             if (lake.root / name).is_symlink() and root not in Path(os.path.realpath(lake.root / name)).parents]
    folders = [str(lake.root / name) for name in readable_folders()]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:  # a table folder missing or unreadable: nothing in it can be read either
            continue
        for entry in entries:
            if entry.is_symlink():
                real = Path(os.path.realpath(entry.path))
                if root not in real.parents:
                    found.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return sorted(found)


@contextlib.contextmanager
def sandboxed_connect(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for user SQL: reads the lake's tables through the views, nothing else, writes nothing.

    A fresh in-memory DuckDB instance (so its locked settings never leak into other connections)
    with the warehouse attached read-only and set as the default catalog; `allowed_directories`
    holds only the table folders, `enable_external_access` is off, extensions are neither
    installed nor loaded automatically, and `lock_configuration` stops SQL from changing any of it.
    The working directory is the lake while the connection is open (see below).
    """
    _ensure_views(lake)
    outside = symlinks_leading_out(lake)
    if outside:
        raise ReadOnlyQueryError("refusing to query: a link in the lake leads outside it", file=str(outside[0]),
                                 expected="links (if any) that resolve inside the lake",
                                 found=os.path.realpath(outside[0]))
    # DuckDB looks for a relative path in the working directory before `file_search_path`, and
    # checks `allowed_directories` against the path as written: only with the lake as the working
    # directory do the relative table folders allowed below mean the lake's own.
    cwd = os.getcwd()
    spill = tempfile.mkdtemp(prefix="emolake-query-")  # DuckDB's default '.tmp' would land in the lake
    try:
        os.chdir(lake.database_path.parent)  # the lake (local), or its cache folder (object storage)
        con = duckdb.connect(":memory:", config={**NO_EXTENSIONS, "temp_directory": spill})
        try:
            con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(lake.database_path)])
            con.execute("USE warehouse")
            _configure(con, lake)
            con.execute("SET allowed_directories = ?", [readable_directories(lake)])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            yield con
        finally:
            con.close()
    finally:
        os.chdir(cwd)
        shutil.rmtree(spill, ignore_errors=True)


def check_read_only(sql: str) -> None:
    """Refuse anything but SELECT-like statements (DESCRIBE, SHOW, SUMMARIZE); EXPLAIN only of those.

    EXPLAIN ANALYZE runs the statement it wraps, so `EXPLAIN ANALYZE COPY ... TO` is a COPY.
    """
    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise BadInputError(f"could not parse the query: {exc}") from exc
    if not statements:
        raise BadInputError("the query is empty")
    for statement in statements:
        kind = statement.type.name
        if kind == "EXPLAIN":
            prefix = EXPLAIN_PREFIX.match(statement.query)
            if prefix is None:
                raise ReadOnlyQueryError("`query` is read-only: cannot see what this EXPLAIN wraps",
                                         expected="EXPLAIN [ANALYZE] SELECT ...", found=statement.query.strip())
            check_read_only(statement.query[prefix.end():])
        elif kind not in READ_ONLY_STATEMENTS:
            raise ReadOnlyQueryError(
                f"`query` is read-only: refusing a {kind} statement "
                f"({quote(statement.query.strip(), 60)}); write to the lake with emolake commands"
            )


@functools.lru_cache(maxsize=1)
def _parser() -> duckdb.DuckDBPyConnection:
    """An empty in-memory connection that only ever parses (a new DuckDB instance costs tens of ms)."""
    return duckdb.connect(":memory:", config=NO_EXTENSIONS)


def run_error(exc: duckdb.Error, what: str, column: str | None = None) -> BadInputError:
    """A DuckDB error from user SQL as a BadInputError; reaching outside the lake says so."""
    if isinstance(exc, duckdb.PermissionException):
        return ReadOnlyQueryError(f"{what}: refused, user SQL may only read the lake's tables ({exc})",
                                  column=column)
    return BadInputError(f"{what}: {exc}", column=column)


def query(lake: Lake, sql: str, params: dict[str, object] | None = None) -> pa.Table:
    """Run read-only `sql` against the warehouse and return the last statement's result.

    `params` are bound by DuckDB to the `$name` placeholders of the last statement (prepared
    parameters: values never become SQL text)."""
    check_read_only(sql)
    with sandboxed_connect(lake) as con:
        try:
            statements = con.extract_statements(sql)
            for statement in statements[:-1]:
                con.execute(statement)
            return con.sql(statements[-1].query, params=params or None).to_arrow_table()
        except duckdb.Error as exc:
            raise run_error(exc, "query failed") from exc


def table_counts(lake: Lake, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Row count of every view in the warehouse but those in `skip`, each view scanned (`status` counts from
    the commit log instead)."""
    with connect(lake) as con:
        views = [r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' ORDER BY view_name"
        ).fetchall() if r[0] not in skip]
        return {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0] for v in views}


def sql_dir() -> Path:
    return Path(str(resources.files(SQL_PACKAGE)))
