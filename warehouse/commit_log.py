"""The lake's commit log: which data files are part of the lake. One new file per commit.

Every commit publishes exactly one small Parquet file, `_commits/<load_id>.parquet`, listing the
files it adds and the ones it removes (`action` 'add' or 'remove', path relative to the lake). It
is written under a temporary name and renamed into place, so it appears whole or not at all (on
object storage: one PUT, conditional on the name being new; see `storage.py`). A data file is part of the lake ("live") when some record adds it and
none removes it; that is a set difference, so the order records are listed in does not matter.
Data files are written to their final names before the record and replaced ones deleted only
after it, so a kill at any point leaves either the old or the new commit visible, plus files no
record names, which every reader ignores and the next writer deletes (`Lake.clean_up`).

A path is never added twice (names are unique per load, or fixed per extraction chunk and written
once), so a removal is final. Readers: `live_files()` here, and the `_live_files` view that every
staging view in `sql/` filters on, so the DuckDB shell, R and Python see the same whole commits.

A checkpoint (`<load_id>.checkpoint.parquet`, written by the clean-up under the exclusive lake
lock once there are `CHECKPOINT_AFTER` records) lists every live file, plus a removal for every
dead file an older record still adds; the older records are then deleted, in any order: any
subset of them together with the checkpoint names the same live files.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from .storage import fsync_dir, parquet_bytes, storage_for  # noqa: F401 (fsync_dir: re-exported)

COMMIT_DIR = "_commits"
SEED_RECORD = "00000000T000000-seed.parquet"
CHECKPOINT_SUFFIX = ".checkpoint.parquet"
CHECKPOINT_AFTER = 16  # records before the clean-up folds them into one (each costs readers ~1.5 ms)
FAULT_ENV = "EMOLAKE_FAULT_AT"  # test hook: SIGKILL this process at the named point of a commit

COMMIT_SCHEMA = pa.schema([
    ("load_id", pa.string()), ("committed_at", pa.timestamp("us", tz="UTC")), ("command", pa.string()),
    ("action", pa.string()),  # 'add' | 'remove'
    ("table_name", pa.string()),  # a table of `TABLES`, or '_json' for side files (validation results)
    ("partition", pa.string()),  # 'study=li2024' ('' for an unpartitioned table or a side file)
    ("path", pa.string()),  # relative to the lake, '/'-separated
    ("source_path", pa.string()), ("source_sha256", pa.string()), ("rows", pa.int64()),
])


@dataclass(frozen=True)
class LiveFile:
    """One file of the lake as its commit record lists it."""

    path: str
    table_name: str
    partition: str
    load_id: str
    source_path: str | None
    source_sha256: str | None
    rows: int | None

    @property
    def source(self) -> str | None:
        """What the file was loaded from: its sha256, else its path; None for derived data."""
        return self.source_sha256 or self.source_path


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL when `EMOLAKE_FAULT_AT` names this point (fault-injection tests)."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def commit_dir(root: Path) -> Path:
    return root / COMMIT_DIR


def record_files(root: Path) -> list[Path]:
    return [p for p in storage_for(root).glob(commit_dir(root), "*.parquet") if not p.name.startswith(".")]


def read_log(root: Path) -> pa.Table:
    """Every record's rows (seed, checkpoints and commits), in file-name order."""
    for _ in range(5):  # a concurrent checkpoint may delete a record between listing and reading
        try:
            storage = storage_for(root)
            tables = [storage.read_table(p, schema=COMMIT_SCHEMA) for p in record_files(root)]
            return pa.concat_tables(tables) if tables else COMMIT_SCHEMA.empty_table()
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"the commit log in {commit_dir(root)} kept changing while read")


@dataclass(frozen=True)
class LogState:
    live: dict[str, LiveFile]  # path -> file
    named: set[str]  # every path any record names (added or removed)
    removed: set[str]
    n_records: int


def state(root: Path) -> LogState:
    log = read_log(root).to_pylist()
    removed = {r["path"] for r in log if r["action"] == "remove"}
    live: dict[str, LiveFile] = {}
    for r in log:
        if r["action"] == "add" and r["path"] not in removed and r["path"] not in live:
            live[r["path"]] = LiveFile(r["path"], r["table_name"], r["partition"], r["load_id"],
                                       r["source_path"], r["source_sha256"], r["rows"])
    return LogState(live, {r["path"] for r in log}, removed, len(record_files(root)))


def live_files(root: Path) -> dict[str, LiveFile]:
    """path -> `LiveFile` for every file the committed records add and none removes."""
    return state(root).live


def _write_record(root: Path, name: str, rows: Sequence[dict], fault_prefix: str = "") -> Path:
    final = commit_dir(root) / name
    data = parquet_bytes(pa.Table.from_pylist(list(rows), schema=COMMIT_SCHEMA), compression="zstd",
                         compression_level=None)
    written = (lambda: fault_point(f"{fault_prefix}record-written")) if fault_prefix else None
    storage_for(root).publish(final, data, before_publish=written)
    return final


def publish(root: Path, load_id: str, rows: Sequence[dict]) -> Path:
    """Publish one commit: its record appears atomically, so the commit is all or nothing."""
    path = _write_record(root, f"{load_id}.parquet", rows, fault_prefix="commit:")
    fault_point("commit:published")
    return path


def seed(root: Path) -> None:
    """The zero-row record that lets `_live_files` resolve in a lake with no commit yet."""
    if not storage_for(root).exists(commit_dir(root) / SEED_RECORD):
        _write_record(root, SEED_RECORD, [])


def entry(load_id: str, command: str, action: str, table_name: str, partition: str, path: str,
          source_path: str | None = None, source_sha256: str | None = None, rows: int | None = None,
          committed_at: datetime | None = None) -> dict:
    return {"load_id": load_id, "committed_at": committed_at or datetime.now(timezone.utc), "command": command,
            "action": action, "table_name": table_name, "partition": partition, "path": path,
            "source_path": source_path, "source_sha256": source_sha256, "rows": rows}


def checkpoint(root: Path, load_id: str) -> int:
    """Fold every record into one checkpoint, then delete them; returns how many went.

    Call only with the lake lock held exclusively (no commit may run meanwhile).
    """
    old = [p for p in record_files(root) if p.name != SEED_RECORD]
    log = read_log(root).to_pylist()
    st = state(root)
    now = datetime.now(timezone.utc)
    rows = [entry(f.load_id, "checkpoint", "add", f.table_name, f.partition, f.path, f.source_path,
                  f.source_sha256, f.rows, now) for f in st.live.values()]
    added = {r["path"] for r in log if r["action"] == "add"}
    rows += [entry(load_id, "checkpoint", "remove", "", "", path, committed_at=now)
             for path in sorted(added - set(st.live))]
    _write_record(root, f"{load_id}{CHECKPOINT_SUFFIX}", rows)
    fault_point("checkpoint:written")
    storage = storage_for(root)
    for path in old:
        storage.unlink(path)
    storage.sync([commit_dir(root)])
    return len(old)


def relpath(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()

