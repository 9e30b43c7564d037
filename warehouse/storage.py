"""Where a lake's bytes live: a local folder or a prefix of an S3 bucket, behind one interface.

`storage_for(root)` gives the backend of a lake root, and the lake code (`lake.py`,
`commit_log.py`) calls only its methods, so both kinds of lake follow one commit protocol:

- `LocalStorage`: a POSIX folder. A file is published by writing a temporary name, fsync,
  rename, fsync of the folder; staged files are renamed into place.
- `ObjectStorage`: any S3-compatible store, through one `s3fs.S3FileSystem` (credentials and
  endpoint from the standard AWS environment variables and config files: AWS_ENDPOINT_URL,
  AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/config, ...). One PUT is atomic (an object appears whole
  or not at all), so a file is published by one PUT; there is no rename and nothing to fsync.
  Staged files are written to a local folder and uploaded to their final, never-reused names;
  they stay invisible until the commit record naming them is PUT (conditionally: If-None-Match).
  What is local to a machine (the DuckDB file holding the views, staging) lives in a cache
  folder (`EMOLAKE_CACHE`, default ~/.cache/emolake), keyed by endpoint and lake URL.

Readers find commits by listing `_commits/`, so an object store must list what it has written
(read-after-write and list-after-write consistency: AWS S3 since 2020, MinIO, Ceph, GCS and R2
all do). Locks on object storage: `locks.ObjectLock`.

Paths are `pathlib.Path` in a local lake and `ObjectPath` ('s3://bucket/prefix/...') in an object-store lake.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import BadInputError, NotFoundError

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}
S3_SCHEME = "s3://"
CACHE_ENV = "EMOLAKE_CACHE"
STAGING_DIR = ".staging"


class ObjectPath(PurePosixPath):
    """An object key 'bucket/prefix/name' with pure-path joins (`/`, `.parent`, `.name`), shown as 's3://bucket/...'."""

    @classmethod
    def from_url(cls, url: str) -> "ObjectPath":
        key = url[len(S3_SCHEME):].strip("/")
        if not key or any(part in ("", ".", "..") for part in key.split("/")):
            raise BadInputError("not a usable S3 lake address", column="--lake",
                                expected="s3://bucket/prefix (no empty, '.' or '..' parts)", found=url)
        return cls(key)

    @property
    def key(self) -> str:
        """'bucket/prefix/name', as s3fs takes it."""
        return PurePosixPath.__str__(self)

    @property
    def bucket(self) -> str:
        return self.parts[0]

    def __str__(self) -> str:
        return S3_SCHEME + self.key

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def as_posix(self) -> str:
        return str(self)

    def relative_to(self, other: "ObjectPath") -> PurePosixPath:  # type: ignore[override]
        return PurePosixPath(self.key).relative_to(other.key)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(data: bytes, path: Path, before_publish: Callable[[], None] | None = None) -> None:
    """Write `data` to local `path` via a temporary name in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if before_publish is not None:
            before_publish()
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, path: Path, **options) -> None:
    """Write `table` to local `path` via a temporary name in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def parquet_bytes(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **{**PARQUET_OPTIONS, **options})
    return sink.getvalue()


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "emolake")


class LocalStorage:
    """A lake in a local folder (POSIX rename and fsync)."""

    local = True

    def root(self, location: str | os.PathLike) -> Path:
        return Path(location).resolve()

    def exists(self, path: Path) -> bool:
        return path.exists()

    def read_bytes(self, path: Path) -> bytes:
        return path.read_bytes()

    def publish(self, path: Path, data: bytes, before_publish: Callable[[], None] | None = None) -> None:
        """`data` appears at `path` whole or not at all (`before_publish` runs once the bytes are durable)."""
        write_bytes_atomic(data, path, before_publish)

    def write_parquet(self, table: pa.Table, path: Path, **options) -> None:
        write_parquet_atomic(table, path, **options)

    def read_schema(self, path: Path) -> pa.Schema:
        return pq.read_schema(path)

    def read_table(self, path: Path, **options) -> pa.Table:
        return pq.read_table(path, **options)

    def files(self, folder: Path) -> list[Path]:
        """Every file under `folder` (recursively), sorted; none if it does not exist."""
        return [p for p in sorted(folder.rglob("*")) if p.is_file()] if folder.is_dir() else []

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        return sorted(folder.glob(pattern))

    def unlink(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def make_root(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)

    def place(self, staged: Path, final: Path) -> None:
        """Move a staged file to its final name (durably; the folder is synced by `sync`)."""
        with open(staged, "rb+") as handle:
            os.fsync(handle.fileno())
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)

    def sync(self, folders: Iterable[Path]) -> None:
        for folder in folders:
            fsync_dir(folder)

    def remove_empty_dirs(self, folders: Iterable[Path]) -> None:
        """Folders under `folders` left empty by the clean-up, deepest first (seed folders keep their seed)."""
        for base in folders:
            for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    folder.rmdir()

    def cache_dir(self, root: Path) -> Path:
        """Where this machine keeps the lake's DuckDB file of views: the lake itself."""
        return root

    def staging_root(self, root: Path) -> Path:
        return root / STAGING_DIR

    def confine(self, root: Path, path: Path) -> Path:
        from .names import inside_lake

        return inside_lake(root, path)

    def lock(self, path: Path, what: str, command: str = ""):
        from .locks import FileLock

        return FileLock(path, what, command)

    def register(self, con) -> None:
        """Nothing to register: DuckDB reads local files itself."""

    def remove_new(self, root: Path, before: set[Path] | None) -> None:
        """Remove what was added under `root` since `entries(root)` returned `before` (None: it did not exist)."""
        if before is None:
            shutil.rmtree(root, ignore_errors=True)
            return
        for path in set(root.iterdir()) - before if root.is_dir() else ():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def entries(self, root: Path) -> set[Path] | None:
        """What `root` holds now, for `remove_new` (None if it does not exist)."""
        if not root.exists():
            return None
        return set(root.iterdir()) if root.is_dir() else set()


class ObjectStorage:
    """A lake under a prefix of an S3-compatible bucket (one PUT is atomic; no rename, no fsync)."""

    local = False

    @property
    def fs(self):
        """The s3fs filesystem (one per process and settings: s3fs caches instances)."""
        import s3fs

        return s3fs.S3FileSystem(use_listings_cache=False)  # other processes write the lake too

    def root(self, location: str | os.PathLike) -> ObjectPath:
        return ObjectPath.from_url(str(location))

    def exists(self, path: ObjectPath) -> bool:
        return self.fs.exists(path.key)

    def read_bytes(self, path: ObjectPath) -> bytes:
        return self.fs.cat_file(path.key)

    def publish(self, path: ObjectPath, data: bytes, before_publish: Callable[[], None] | None = None) -> None:
        """One PUT: the object appears whole or not at all."""
        if before_publish is not None:
            before_publish()
        self.fs.pipe_file(path.key, data)

    def write_parquet(self, table: pa.Table, path: ObjectPath, **options) -> None:
        self.publish(path, parquet_bytes(table, **options))

    def read_schema(self, path: ObjectPath) -> pa.Schema:
        with self.fs.open(path.key, "rb") as handle:
            return pq.read_schema(handle)

    def read_table(self, path: ObjectPath, **options) -> pa.Table:
        return pq.read_table(path.key, filesystem=self.fs, **options)

    def files(self, folder: ObjectPath) -> list[ObjectPath]:
        return sorted(ObjectPath(key) for key in self.fs.find(folder.key, refresh=True))

    def glob(self, folder: ObjectPath, pattern: str) -> list[ObjectPath]:
        self.fs.invalidate_cache(folder.key)  # another process may have written or deleted records
        return sorted(ObjectPath(key) for key in self.fs.glob(f"{folder.key}/{pattern}"))

    def unlink(self, path: ObjectPath) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path.key)

    def make_root(self, root: ObjectPath) -> None:
        """Check the bucket exists and can be listed (a prefix exists once an object is under it)."""
        try:
            self.fs.ls(root.bucket, refresh=True)
        except FileNotFoundError:
            raise NotFoundError(f"bucket {root.bucket!r} does not exist (create it first, e.g. "
                                f"`aws s3 mb s3://{root.bucket}`)", file=str(root)) from None
        except PermissionError as exc:
            raise BadInputError(f"cannot list bucket {root.bucket!r}: {exc}", file=str(root),
                                expected="credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) that may read it") from None

    def place(self, staged: Path, final: ObjectPath) -> None:
        """Upload a staged local file to its final (unique, never reused) name, then drop the local copy."""
        self.fs.put_file(str(staged), final.key)
        staged.unlink(missing_ok=True)

    def sync(self, folders: Iterable[ObjectPath]) -> None:
        """Nothing to sync: a completed PUT is durable."""

    def remove_empty_dirs(self, folders: Iterable[ObjectPath]) -> None:
        """Nothing to remove: object stores have no folders."""

    def cache_dir(self, root: ObjectPath) -> Path:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "aws"
        digest = hashlib.sha256(f"{endpoint}\0{root}".encode()).hexdigest()[:16]
        folder = cache_root() / "s3" / f"{root.bucket}-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def staging_root(self, root: ObjectPath) -> Path:
        return self.cache_dir(root) / STAGING_DIR

    def confine(self, root: ObjectPath, path: ObjectPath) -> ObjectPath:
        """No links on object stores: a key is inside the lake when it is under the prefix without '..'."""
        if not isinstance(path, ObjectPath) or ".." in path.parts or (path != root and root not in path.parents):
            raise BadInputError("refusing to write or delete outside the lake", file=str(path),
                                expected=f"a key under {root}", found=str(path))
        return path

    def lock(self, path: ObjectPath, what: str, command: str = ""):
        from .locks import ObjectLock

        return ObjectLock(self.fs, path, what, command)

    def register(self, con) -> None:
        """Let DuckDB read s3:// paths through s3fs (httpfs cannot be installed offline)."""
        con.register_filesystem(self.fs)

    def entries(self, root: ObjectPath) -> set[ObjectPath] | None:
        keys = self.files(root)
        return set(keys) if keys else None

    def remove_new(self, root: ObjectPath, before: set[ObjectPath] | None) -> None:
        for path in set(self.files(root)) - (before or set()):
            self.unlink(path)


LOCAL = LocalStorage()
OBJECT_STORE = ObjectStorage()


def is_object_url(location: str | os.PathLike) -> bool:
    return isinstance(location, ObjectPath) or str(location).startswith(S3_SCHEME)


def storage_for(location: str | os.PathLike) -> LocalStorage | ObjectStorage:
    """The backend of a lake root or location: 's3://...' (or an `ObjectPath`) is an object store."""
    return OBJECT_STORE if is_object_url(location) else LOCAL

