"""Lake paths and atomic, all-or-nothing writes of table partitions.

A `Lake` is a directory of hive-partitioned Parquet tables (see `tables.py`). Writes go through a
`LakeTransaction`: files are written under `.staging/`, fsynced, and only renamed into place when
the whole transaction succeeded, with a manifest row per partition in the `loads` table. If
anything raises before commit, the staging folder is removed and the lake is byte-for-byte as it
was. A half-written file is never visible to a query: queries glob `*.parquet` and staged files
live outside every table directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import EmolakeError, NotFoundError
from .tables import TABLES, TableSpec
from .version import code_version

DEFAULT_LAKE = "lake"
LAKE_ENV = "EMOLAKE_LAKE"
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}
MARKER = ".emolake"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: pa.Table, path: Path, **options) -> None:
    """Write `table` to `path` via a temporary name in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def partition_path(spec: TableSpec, values: Mapping[str, object]) -> str:
    """'dataset=goemotions' style relative folder for one partition of `spec`."""
    missing = [k for k in spec.partition_names if k not in values]
    if missing:
        raise EmolakeError(f"table {spec.name}: partition keys {missing} missing")
    return "/".join(f"{k}={values[k]}" for k in spec.partition_names)


class Lake:
    """A lake directory. Cheap to construct; `init()` creates the folders and seed files."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    @property
    def database_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def exists(self) -> bool:
        return (self.root / MARKER).exists()

    def table_dir(self, name: str) -> Path:
        if name not in TABLES:
            raise NotFoundError(f"no table named {name!r}", expected=f"one of {sorted(TABLES)}")
        return self.root / name

    def require(self) -> "Lake":
        if not self.exists:
            raise NotFoundError(
                f"{self.root} is not an emolake lake (run `emolake --lake {self.root} init` first)"
            )
        return self

    def init(self) -> bool:
        """Create the lake (idempotent). Returns True if anything was created."""
        created = not self.exists
        self.root.mkdir(parents=True, exist_ok=True)
        for spec in TABLES.values():
            seed = self.seed_path(spec)
            # a seed of an older schema is rewritten (zero rows): the views read new columns from it
            if not seed.exists() or not pq.read_schema(seed).equals(spec.schema):
                created = True
                empty = spec.schema.empty_table()
                write_parquet_atomic(empty, seed, **spec.write_options)
        if not (self.root / MARKER).exists():
            write_bytes_atomic(json.dumps({"format": 1, "created_by": code_version()}).encode(), self.root / MARKER)
        return created

    def seed_path(self, spec: TableSpec) -> Path:
        folder = self.root / spec.name
        for key, value in zip(spec.partition_names, spec.empty_partition_values()):
            folder = folder / f"{key}={value}"
        return folder / "part-seed.parquet"

    def partitions(self, name: str) -> list[dict[str, str]]:
        """Partition values that hold data files (the seed partition excluded)."""
        spec = TABLES[name]
        base = self.table_dir(name)
        if not spec.partition_by:
            return [{}]
        found = []
        for leaf in sorted(base.glob("/".join(["*"] * len(spec.partition_by)))):
            values = dict(part.split("=", 1) for part in leaf.relative_to(base).parts)
            if list(values.values()) != spec.empty_partition_values():
                found.append(values)
        return found

    @contextlib.contextmanager
    def transaction(self, command: str = "") -> Iterator["LakeTransaction"]:
        """All-or-nothing writes: everything staged is published on success, discarded on error."""
        self.require()
        txn = LakeTransaction(self, command)
        try:
            yield txn
            txn.commit()
        finally:
            txn.discard()


class LakeTransaction:
    """Stages partition files and JSON side files; `commit` renames them into the lake."""

    def __init__(self, lake: Lake, command: str) -> None:
        self.lake = lake
        self.command = command
        self.load_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.staging = lake.root / ".staging" / self.load_id
        self._replace: list[Path] = []  # partition folders whose old files go on commit
        self._files: list[tuple[Path, Path]] = []  # (staged, final)
        self._loads: list[dict] = []

    def write(
        self,
        name: str,
        table: pa.Table,
        partition: Mapping[str, object] | None = None,
        *,
        source_path: str | None = None,
        source_sha256: str | None = None,
        replace: bool = True,
        part_name: str | None = None,
    ) -> Path:
        """Stage `table` as one file of partition `partition` of table `name`.

        `table` must carry the table's file columns (extra or missing columns are an error; the
        columns are cast to the declared types). With `replace`, the partition's existing files
        are removed when the transaction commits (re-loading a source replaces it).
        """
        spec = TABLES[name]
        partition = dict(partition or {})
        table = conform(table, spec)
        rel = partition_path(spec, partition)
        final_dir = self.lake.table_dir(name) / rel if rel else self.lake.table_dir(name)
        final = final_dir / (part_name or f"part-{self.load_id}-{len(self._files):05d}.parquet")
        staged = self.staging / name / rel / final.name
        staged.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, staged, **{**PARQUET_OPTIONS, **spec.write_options})
        if replace and final_dir not in self._replace:
            self._replace.append(final_dir)
        self._files.append((staged, final))
        self._loads.append({
            "load_id": self.load_id, "table_name": name, "partition": rel,
            "source_path": source_path, "source_sha256": source_sha256, "rows": table.num_rows,
            "loaded_at": datetime.now(timezone.utc), "code_version": code_version(), "command": self.command,
        })
        return final

    def write_json(self, relpath: str, obj: object) -> Path:
        """Stage a JSON side file (validation results, run manifests) at `relpath` in the lake."""
        final = self.lake.root / relpath
        staged = self.staging / "_json" / relpath
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(json.dumps(obj, indent=2, default=str, sort_keys=True))
        self._files.append((staged, final))
        return final

    def commit(self) -> None:
        for _, final in self._files:  # check before touching anything
            if final.exists() and final.parent not in self._replace and final.suffix == ".parquet":
                raise EmolakeError(f"refusing to overwrite {final}")
        for staged, _ in self._files:
            with open(staged, "rb+") as handle:
                os.fsync(handle.fileno())
        if self._loads:
            loads = pa.Table.from_pylist(self._loads, schema=TABLES["loads"].schema)
            staged = self.staging / "loads" / f"part-{self.load_id}.parquet"
            staged.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(loads, staged, **PARQUET_OPTIONS)
            self._files.append((staged, self.lake.table_dir("loads") / staged.name))
        new_names = {final for _, final in self._files}
        replaced = [old for folder in self._replace for old in folder.glob("*.parquet") if old not in new_names]
        # New files first, then the old ones go: a crash in between leaves extra rows, never lost ones.
        for staged, final in self._files:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
        for old in replaced:
            old.unlink()
        for folder in {final.parent for _, final in self._files}:
            _fsync_dir(folder)
        self._files.clear()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        staging_root = self.staging.parent
        with contextlib.suppress(OSError):
            staging_root.rmdir()  # only when empty: another transaction may be running


def conform(table: pa.Table, spec: TableSpec) -> pa.Table:
    """Select and cast `table` to `spec.schema`; a missing or extra column is an error."""
    names = set(table.column_names)
    wanted = set(spec.schema.names)
    if names != wanted:
        raise EmolakeError(
            f"table {spec.name}: columns {sorted(names)} do not match the schema "
            f"(missing {sorted(wanted - names)}, extra {sorted(names - wanted)})"
        )
    return table.select(spec.schema.names).cast(spec.schema)


def resolve_lake(path: str | os.PathLike | None) -> Lake:
    return Lake(path or os.environ.get(LAKE_ENV) or DEFAULT_LAKE)
