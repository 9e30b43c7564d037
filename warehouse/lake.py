"""Lake paths and atomic, all-or-nothing writes of table partitions.

A `Lake` is a directory (a local folder, or a prefix of an S3 bucket: `storage.py`) of
hive-partitioned Parquet tables (see `tables.py`) plus a commit log (`_commits/`, see
`commit_log.py`) saying which of its files are part of it. Writes go through a
`LakeTransaction`: files are staged under `.staging/`, moved (locally: fsynced and renamed; on
object storage: uploaded) to their final (new, unique) names, and then ONE commit record is
published atomically (a rename, or one PUT); the files it replaces are deleted after that. Every reader (the views in `sql/`, `Lake.live_files`) sees only files named
by a published record, so a query sees whole commits only, even after a SIGKILL at any point.
If anything raises before the record is published, the lake is byte-for-byte as it was; what a
killed writer leaves is invisible and deleted by the next writer (`Lake.clean_up`, under the
lake lock). Concurrent writers: see `locks.py`. docs/RELIABILITY.md has the protocol and tests.
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

from . import commit_log
from .errors import EmolakeError, LockedError, NotFoundError, ReplaceRefusedError, writing
from .locks import LOCK_DIR, FileLock, ObjectLock, lock_file_name
from .names import check_name, check_partition_value, inside_lake
from .storage import PARQUET_OPTIONS, storage_for, write_bytes_atomic, write_parquet_atomic  # noqa: F401 (re-exported)
from .tables import TABLES, TableSpec
from .version import code_version

DEFAULT_LAKE = "lake"
LAKE_ENV = "EMOLAKE_LAKE"
MARKER = ".emolake"
FORMAT = 2  # 2: the commit log (`_commits/`) says which files are part of the lake
LOCK_TIMEOUT = 60.0  # seconds a writer waits for a partition another writer is committing
VALIDATION_DIR = "validation"  # JSON side files of loads (ingest/validation.py)
JSON_TABLE = "_json"  # commit-record table name of JSON side files


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def partition_path(spec: TableSpec, values: Mapping[str, object]) -> str:
    """'dataset=goemotions' style relative folder for one partition of `spec`.

    Every value must be a valid name (`warehouse.names`): no '/', '..', '=', NUL, seed value, ...
    """
    missing = [k for k in spec.partition_names if k not in values]
    if missing:
        raise EmolakeError(f"table {spec.name}: partition keys {missing} missing")
    return "/".join(f"{k}={check_partition_value(k, values[k], pa.types.is_integer(t))}" for k, t in spec.partition_by)


class Lake:
    """A lake directory or object-store prefix. Cheap to construct; `init()` creates the folders and seed files.

    `root` is a local path or 's3://bucket/prefix'; `storage` is its backend (`storage.py`).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.storage = storage_for(root)
        self.root = self.storage.root(root)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    @property
    def database_path(self) -> Path:
        """The DuckDB file holding the views (in the lake; for a lake on object storage, in this machine's cache)."""
        return self.storage.cache_dir(self.root) / "warehouse.duckdb"

    @property
    def exists(self) -> bool:
        return self.storage.exists(self.root / MARKER)

    def read_table(self, path: Path, **options) -> pa.Table:
        """One file of the lake (a path from `live_paths`) as an Arrow table; `options` as for `pq.read_table`."""
        return self.storage.read_table(path, **options)

    def table_dir(self, name: str) -> Path:
        if name not in TABLES:
            raise NotFoundError(f"no table named {name!r}", expected=f"one of {sorted(TABLES)}")
        return self.root / name

    def require(self) -> "Lake":
        if not self.exists:
            raise NotFoundError(
                f"{self.root} is not an emolake lake (run `emolake --lake {self.root} init` first)"
            )
        if self._format() < FORMAT:
            self._upgrade()
        if any(not self.storage.exists(self.seed_path(spec)) for spec in TABLES.values()):
            self.init()  # a table added since the lake was created: its seed file lets its view resolve
        return self

    def init(self) -> bool:
        """Create the lake (idempotent). Returns True if anything was created."""
        created = not self.exists
        upgrade = self.exists and self._format() < FORMAT
        self.storage.make_root(self.root)
        for spec in TABLES.values():
            seed = self.seed_path(spec)
            # a seed of an older schema is rewritten (zero rows): the views read new columns from it
            if not self.storage.exists(seed) or not self.storage.read_schema(seed).equals(spec.schema):
                created = True
                empty = spec.schema.empty_table()
                self.storage.write_parquet(empty, seed, **spec.write_options)
        commit_log.seed(self.root)
        self._lake_lock().prepare()
        if upgrade:
            self._upgrade()
        if not self.storage.exists(self.root / MARKER):
            self._write_marker()
        return created

    def _format(self) -> int:
        try:
            return int(json.loads(self.storage.read_bytes(self.root / MARKER)).get("format", 1))
        except (OSError, ValueError, AttributeError):
            return 1

    def _write_marker(self) -> None:
        self.storage.publish(self.root / MARKER, json.dumps({"format": FORMAT, "created_by": code_version()}).encode())

    def _upgrade(self) -> None:
        """A lake written before the commit log: one first record adopting every data file in it."""
        lock = self._lake_lock()
        lock.require(timeout=LOCK_TIMEOUT)
        try:
            if self._format() >= FORMAT:
                return
            commit_log.seed(self.root)
            load_id = new_load_id()
            rows = [commit_log.entry(load_id, "adopt files written before the commit log", "add", table, part,
                                     commit_log.relpath(self.root, path))
                    for path, table, part in self._data_files() if not path.name.startswith(".")]
            commit_log.publish(self.root, load_id, rows)
            self._write_marker()
        finally:
            lock.release()

    def _data_files(self) -> Iterator[tuple[Path, str, str]]:
        """(path, table, partition) of every file under the table folders and `validation/` (seeds excluded)."""
        for name, spec in TABLES.items():
            base = self.root / name
            seed = self.seed_path(spec)
            for path in self.storage.files(base):
                if path != seed and (path.suffix == ".parquet" or path.name.endswith(".tmp")):
                    rel = path.parent.relative_to(base).as_posix()
                    yield path, name, "" if rel == "." else rel
        for path in self.storage.files(self.root / VALIDATION_DIR):
            yield path, JSON_TABLE, ""

    def seed_path(self, spec: TableSpec) -> Path:
        folder = self.root / spec.name
        for key, value in zip(spec.partition_names, spec.empty_partition_values()):
            folder = folder / f"{key}={value}"
        return folder / "part-seed.parquet"

    def live_files(self, name: str | None = None, partition: str | None = None) -> list[commit_log.LiveFile]:
        """The committed files of table `name` (all tables if None), of one partition (a prefix
        such as 'run_id=r1' matches its sub-partitions), sorted by path."""
        files = commit_log.live_files(self.root).values()
        if name is not None:
            files = [f for f in files if f.table_name == name]
        if partition is not None:
            files = [f for f in files if f.partition == partition or f.partition.startswith(partition + "/")]
        return sorted(files, key=lambda f: f.path)

    def live_paths(self, name: str, partition: str | None = None) -> list[Path]:
        return [self.root / f.path for f in self.live_files(name, partition)]

    def partitions(self, name: str) -> list[dict[str, str]]:
        """Partition values that hold committed data files (the seed partition excluded)."""
        spec = TABLES[name]
        self.table_dir(name)
        if not spec.partition_by:
            return [{}]
        leaves = sorted({f.partition for f in self.live_files(name)})
        return [dict(part.split("=", 1) for part in leaf.split("/")) for leaf in leaves]

    # --- writers: the lake lock, clean-up of killed writers, run locks

    def _lake_lock(self, command: str = "") -> FileLock | ObjectLock:
        return self.storage.lock(self.root / LOCK_DIR / "lake.lock", f"the lake {self.root}", command)

    @contextlib.contextmanager
    def writing(self, command: str = "") -> Iterator[None]:
        """Hold the lake lock shared while this process may leave uncommitted files in the lake.

        The first writer of a process cleans up after killed writers when it can have the lock
        exclusively (no other writer running); re-entrant within a process. On object storage the
        lock has no shared mode: writers take turns, each cleaning up first.
        """
        held = _WRITERS.get(self.root)
        if held is not None:
            held[1] += 1
        else:
            lock = self._lake_lock(command)
            if lock.acquire(timeout=0, record=False):
                try:
                    self.clean_up()
                except BaseException:
                    lock.release()
                    raise
                lock.downgrade()
            elif not lock.acquire(shared=True, timeout=LOCK_TIMEOUT, record=False):
                if isinstance(lock, ObjectLock):
                    lock.require(timeout=0)  # raises naming the writer holding it
                raise LockedError(f"the lake {self.root} is being cleaned up by another command for over "
                                  f"{LOCK_TIMEOUT:g} s; rerun when it has finished")
            held = _WRITERS[self.root] = [lock, 1]
        try:
            yield
        finally:
            held[1] -= 1
            if held[1] == 0:
                del _WRITERS[self.root]
                held[0].release()
                if len(commit_log.record_files(self.root)) > commit_log.CHECKPOINT_AFTER:
                    self._clean_up_if_alone()  # e.g. after an extraction's commit per chunk

    def _clean_up_if_alone(self) -> None:
        lock = self._lake_lock()
        if lock.acquire(timeout=0, record=False):
            try:
                self.clean_up()
            finally:
                lock.release()

    def clean_up(self) -> dict[str, int]:
        """Delete what killed writers left: staging folders, temporary files, data files no commit
        names (or that a commit removed). Call only with the lake lock held exclusively."""
        removed = {"staging": 0, "files": 0, "records": 0}
        staging = self.storage.staging_root(self.root)
        if staging.exists():
            removed["staging"] = sum(1 for _ in staging.iterdir())
            shutil.rmtree(staging, ignore_errors=True)
        st = commit_log.state(self.root)
        for path, _, _ in self._data_files():
            if commit_log.relpath(self.root, path) not in st.live:
                self.storage.unlink(path)
                removed["files"] += 1
        for tmp in self.storage.glob(commit_log.commit_dir(self.root), ".*.tmp"):
            self.storage.unlink(tmp)
            removed["files"] += 1
        if removed["files"]:
            self.storage.remove_empty_dirs(self.root / name for name in TABLES)
        if st.n_records > commit_log.CHECKPOINT_AFTER:
            removed["records"] = commit_log.checkpoint(self.root, new_load_id())
        return removed

    def run_lock(self, run_id: str, command: str = "") -> FileLock | ObjectLock:
        """The lock an extraction holds for its whole run (`held()` fails at once if taken)."""
        return self.storage.lock(self.root / LOCK_DIR / lock_file_name("run", run_id), f"run {run_id!r}", command)

    @contextlib.contextmanager
    def transaction(self, command: str = "", *, replace: bool = False) -> Iterator["LakeTransaction"]:
        """All-or-nothing writes: everything staged is published on success, discarded on error.

        `replace` allows replacing partitions that another source loaded (`--replace`).
        """
        self.require()
        with self.writing(command):
            txn = LakeTransaction(self, command, allow_replace=replace)
            try:
                yield txn
                txn.commit()
            finally:
                txn.discard()
            if txn.committed_tables:
                from .marts import after_commit

                after_commit(self, txn.committed_tables)  # materialised marts whose inputs this commit changed


_WRITERS: dict[Path, list] = {}  # lake root -> [lake lock held shared, nesting depth] in this process


def new_load_id() -> str:
    """'20260101T120000-1a2b3c4d': sorts by start time, unique by its random part."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class LakeTransaction:
    """Stages partition files and JSON side files; `commit` publishes them with one commit record.

    The commit (see `commit_log`): lock the partitions written, refuse to replace another
    source's partition unless allowed, move the staged files to their final names, publish the
    record, then delete the files it replaced. Fault points (`EMOLAKE_FAULT_AT`): 'commit:moved:<i>'
    after the i-th file is in place, 'commit:record-written' (record under its temporary name),
    'commit:published', 'commit:deleted:<i>' after the i-th replaced file is gone.
    """

    def __init__(self, lake: Lake, command: str, allow_replace: bool = False) -> None:
        self.lake = lake
        self.command = command
        self.allow_replace = allow_replace
        self.load_id = new_load_id()
        self.staging = lake.storage.staging_root(lake.root) / self.load_id
        self._replace: set[tuple[str, str]] = set()  # (table, partition) whose old files go on commit
        self._files: list[tuple[Path, Path, dict]] = []  # (staged, final, commit-record entry)
        self._loads: list[dict] = []
        self.committed_tables: set[str] = set()  # the tables the commit wrote (set by `commit`)

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
        are removed when the transaction commits (re-loading a source replaces it). `part_name`
        fixes the file name (extraction chunks); a path the lake ever held cannot be written again.
        """
        spec = TABLES[name]
        partition = dict(partition or {})
        table = conform(table, spec)
        rel = partition_path(spec, partition)
        final_dir = self.lake.table_dir(name) / rel if rel else self.lake.table_dir(name)
        final = final_dir / (part_name or f"part-{self.load_id}-{len(self._files):05d}.parquet")
        staged = self.staging / name / rel / final.name
        self._confine(final, staged)
        staged.parent.mkdir(parents=True, exist_ok=True)
        with writing(final):
            pq.write_table(table, staged, **{**PARQUET_OPTIONS, **spec.write_options})
        if replace:
            self._replace.add((name, rel))
        self._files.append((staged, final, commit_log.entry(
            self.load_id, self.command, "add", name, rel, commit_log.relpath(self.lake.root, final),
            source_path, source_sha256, table.num_rows)))
        self._loads.append({
            "load_id": self.load_id, "table_name": name, "partition": rel,
            "source_path": source_path, "source_sha256": source_sha256, "rows": table.num_rows,
            "loaded_at": datetime.now(timezone.utc), "code_version": code_version(), "command": self.command,
        })
        return final

    def write_json(self, relpath: str, obj: object) -> Path:
        """Stage a JSON side file (validation results, run manifests) at `relpath` in the lake."""
        for part in Path(relpath).parts:  # 'validation', 'study=s', '<load_id>-part.json': names only
            for piece in part.removesuffix(".json").split("=", 1):
                check_name(piece, "file name")
        final = self.lake.root / relpath
        staged = self.staging / "_json" / relpath
        self._confine(final, staged)
        staged.parent.mkdir(parents=True, exist_ok=True)
        with writing(final):
            staged.write_text(json.dumps(obj, indent=2, default=str, sort_keys=True))
        self._files.append((staged, final, commit_log.entry(
            self.load_id, self.command, "add", JSON_TABLE, "", commit_log.relpath(self.lake.root, final))))
        return final

    def _confine(self, final: Path, staged: Path) -> None:
        """A file this transaction writes has a valid name, and it and its folder resolve inside the lake."""
        check_name(final.name, "file name")
        for path in (final, final.parent):
            self.lake.storage.confine(self.lake.root, path)
        for path in (staged, staged.parent):  # staging is in the lake (local) or in this machine's cache for it
            inside_lake(self.lake.storage.cache_dir(self.lake.root), path)

    def commit(self) -> None:
        if not self._files:
            return
        loads = pa.Table.from_pylist(self._loads, schema=TABLES["loads"].schema)
        staged = self.staging / "loads" / f"part-{self.load_id}.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(loads, staged, **PARQUET_OPTIONS)
        final = self.lake.table_dir("loads") / staged.name
        self._files.append((staged, final, commit_log.entry(
            self.load_id, self.command, "add", "loads", "", commit_log.relpath(self.lake.root, final),
            rows=loads.num_rows)))
        written = sorted({(e["table_name"], e["partition"]) for _, _, e in self._files
                          if e["table_name"] not in (JSON_TABLE, "loads")})  # those two only get new, unique files
        storage = self.lake.storage
        locks = [storage.lock(self.lake.root / LOCK_DIR / lock_file_name("partition", f"{t}/{p}"),
                              f"partition {t}/{p}", self.command) for t, p in written]
        taken: list[FileLock | ObjectLock] = []
        moved: list[Path] = []
        try:
            for lock in locks:  # sorted: two transactions never wait for each other in a circle
                taken.append(lock.require(timeout=LOCK_TIMEOUT))
            log = commit_log.state(self.lake.root)
            self._check_sources(log)
            for _, final, e in self._files:
                if e["path"] in log.named:  # a removal is final only if no path comes back
                    raise EmolakeError(f"refusing to overwrite {final}: the lake already holds this path")
            gone = [f for f in log.live.values() if (f.table_name, f.partition) in self._replace]
            for i, (staged, final, _) in enumerate(self._files):
                moved.append(final)
                storage.place(staged, final)
                commit_log.fault_point(f"commit:moved:{i}")
            storage.sync({final.parent for _, final, _ in self._files})
            for lock in [*taken, *self._writer_locks()]:
                lock.check()  # on object storage: a lock broken meanwhile means another writer may be cleaning up
            now = datetime.now(timezone.utc)
            rows = [{**e, "committed_at": now} for _, _, e in self._files]
            rows += [commit_log.entry(self.load_id, self.command, "remove", f.table_name, f.partition, f.path,
                                      committed_at=now) for f in gone]
            commit_log.publish(self.lake.root, self.load_id, rows)
            moved.clear()  # published: the files belong to the lake now
            self.committed_tables = {e["table_name"] for _, _, e in self._files} - {JSON_TABLE}
            for i, f in enumerate(gone):  # already logically removed: a failure here loses nothing
                with contextlib.suppress(OSError):
                    storage.unlink(storage.confine(self.lake.root, self.lake.root / f.path))
                commit_log.fault_point(f"commit:deleted:{i}")
        finally:
            for path in moved:  # not published (an error above): the files go again
                with contextlib.suppress(OSError):
                    storage.unlink(path)
            for lock in taken:
                lock.release()
        self._files.clear()

    def _writer_locks(self) -> list[FileLock | ObjectLock]:
        held = _WRITERS.get(self.lake.root)
        return [held[0]] if held else []

    def _check_sources(self, log: commit_log.LogState) -> None:
        """Refuse to replace a partition that another source loaded, unless `allow_replace`.

        The same source: the same source paths (the same command again, also after the files were
        edited), or the same sha256s (the same bytes from another path). Derived data (no source)
        replace their own partitions freely.
        """
        if self.allow_replace:
            return
        new: dict[tuple[str, str], list[dict]] = {}
        for _, _, e in self._files:
            if (e["table_name"], e["partition"]) in self._replace:
                new.setdefault((e["table_name"], e["partition"]), []).append(e)
        old: dict[tuple[str, str], list[commit_log.LiveFile]] = {}
        for f in log.live.values():
            if (f.table_name, f.partition) in new:
                old.setdefault((f.table_name, f.partition), []).append(f)
        for key, files in sorted(old.items()):
            before = ({f.source_path for f in files}, {f.source_sha256 for f in files})
            after = ({e["source_path"] for e in new[key]}, {e["source_sha256"] for e in new[key]})
            if before == ({None}, {None}) or after == ({None}, {None}):
                continue  # derived data
            if (None not in before[0] and before[0] == after[0]) or (None not in before[1] and before[1] == after[1]):
                continue  # the same source again: an idempotent reload
            earlier = sorted(files, key=lambda f: f.path)[0]
            table, part = key
            raise ReplaceRefusedError(
                f"partition {table}/{part} was loaded from another source ({earlier.source_path or earlier.source}, "
                f"load {earlier.load_id}); give --replace to replace it (results computed from it will show as "
                "stale in `emolake status`)")

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
