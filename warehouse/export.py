"""Export any table or view of the lake to one Parquet, CSV or Arrow IPC file, for R and other tools.

Rows stream from DuckDB in record batches, so memory stays flat however large the table. Hive
partition keys become ordinary columns typed as declared in `tables.py` (the same type in every
file, never re-guessed from folder names), and the schema is made portable: no float16, no
dictionary or large-string columns, so pyarrow, polars and R's arrow read back the same types.
The file appears atomically (temporary name, then rename). Rows are read through the same sandbox as
`emolake query` (a `--where` reads nothing but the lake), and `--out` may not point into the lake.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .console import progress_bar
from .database import check_read_only, run_error, sandboxed_connect, view_sql
from .errors import BadInputError, NotFoundError, writing
from .lake import PARQUET_OPTIONS, Lake
from .tables import TABLES

FORMATS = ("parquet", "csv", "arrow")
BATCH_ROWS = 256 * 1024


def portable_type(dtype: pa.DataType) -> pa.DataType:
    """The type every reader agrees on: float16 -> float32, dictionary -> values, large -> plain."""
    if pa.types.is_float16(dtype):
        return pa.float32()
    if pa.types.is_dictionary(dtype):
        return portable_type(dtype.value_type)
    if pa.types.is_large_string(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_large_list(dtype) or pa.types.is_list(dtype):
        return pa.list_(portable_type(dtype.value_type))
    return dtype


def portable_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, portable_type(f.type), f.nullable) for f in schema])


def source_sql(con, name: str) -> str:
    """A FROM clause for `name`: its view, or (for a table without a view) its files read directly."""
    views = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'").fetchall()}
    if name in views:
        return f'"{name}"'
    if name in TABLES:
        spec = TABLES[name]
        depth = len(spec.partition_by) + 2
        live = f"_lake_path(filename, {depth}) IN (SELECT path FROM _live_files WHERE table_name = '{name}')"
        columns = ", ".join(f'"{c}"' for c in spec.full_schema().names)
        if not spec.partition_by:
            return f"(SELECT {columns} FROM read_parquet('{name}/*.parquet') WHERE {live})"
        glob = "/".join([name] + ["*"] * len(spec.partition_by) + ["*.parquet"])
        types = ", ".join(f"'{k}': {_duckdb_type(t)}" for k, t in spec.partition_by)
        seed = " AND ".join(f"{k} <> {v if v == '-1' else repr(v)}"
                            for (k, _), v in zip(spec.partition_by, spec.empty_partition_values()))
        return (f"(SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{{types}}}) "
                f"WHERE {seed} AND {live})")
    raise NotFoundError(f"no table or view named {name!r}", expected=f"one of {sorted(views | set(TABLES))}")


def _duckdb_type(dtype: pa.DataType) -> str:
    names = {pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
             pa.string(): "VARCHAR"}
    return names[dtype]


def export(lake: Lake, name: str, fmt: str, out: str | os.PathLike, where: str | None = None) -> dict:
    """Write table or view `name` (optionally filtered by the SQL condition `where`) to `out`.

    Returns a summary: name, format, path, rows, columns (name -> Arrow type).
    """
    if fmt not in FORMATS:
        raise BadInputError("unknown export format", column="--format", expected=" | ".join(FORMATS), found=fmt)
    out = Path(out)
    if out.is_dir():
        raise BadInputError("--out must be a file path, not a folder", file=str(out))
    real_out, real_root = Path(os.path.realpath(out)), Path(os.path.realpath(lake.root))
    if real_out == real_root or real_root in real_out.parents:
        raise BadInputError("--out points inside the lake, which only emolake commands write", file=str(out),
                            column="--out", expected=f"a path outside {real_root}", found=str(real_out))
    with sandboxed_connect(lake) as con:
        sql = view_sql(lake, f"SELECT * FROM {source_sql(con, name)}")  # absolute paths on object storage
        if where:
            sql += f" WHERE {where}"
        check_read_only(sql)
        try:
            total = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
            reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:  # a bad --where, a broken view, a read outside the lake
            raise run_error(exc, f"could not read {name!r}", column="--where" if where else None) from exc
        schema = portable_schema(reader.schema)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        try:
            with writing(out), progress_bar("rows") as bar:
                task = bar.add_task(f"export {name}", total=total)
                with _writer(fmt, tmp, schema) as write:
                    for batch in reader:
                        write(batch.cast(schema))
                        bar.advance(task, batch.num_rows)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return {"name": name, "format": fmt, "path": str(out), "rows": total,
            "columns": {f.name: str(f.type) for f in schema}}


class _writer:
    """Context manager giving a `write(batch)` function for one output format."""

    def __init__(self, fmt: str, path: Path, schema: pa.Schema) -> None:
        self.fmt, self.path, self.schema = fmt, path, schema

    def __enter__(self):
        if self.fmt == "parquet":
            self.sink = pq.ParquetWriter(self.path, self.schema, **PARQUET_OPTIONS)
            return lambda batch: self.sink.write_batch(batch)
        if self.fmt == "arrow":
            self.sink = ipc.new_file(str(self.path), self.schema)
            return self.sink.write_batch
        self.sink = pacsv.CSVWriter(str(self.path), self.schema)
        return self.sink.write_batch

    def __exit__(self, *exc) -> None:
        self.sink.close()
        if exc[0] is None:
            with open(self.path, "rb+") as handle:
                os.fsync(handle.fileno())
