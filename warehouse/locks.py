"""Advisory locks between emolake processes writing one lake: lock files under `_locks/`.

Three kinds, all `fcntl.flock` on a file that is never deleted (deleting a lock file lets two
processes lock two different files of the same name):

- `lake.lock`: every writer holds it shared for as long as it may leave uncommitted files in the
  lake; the clean-up of killed writers' leftovers (and the commit-log checkpoint) takes it
  exclusively, without waiting, so it never deletes a file another writer is still using.
- `partition-*.lock`: held exclusively while a transaction commits a partition (from computing
  which files it replaces to publishing its commit record), so two writers of one partition
  serialize. Taken in sorted order, so two transactions never deadlock.
- `run-*.lock`: held exclusively for a whole extraction run; a second `extract` of the same run
  id fails at once.

While held, a lock file holds one JSON line saying who holds it (pid, command, since), for the
message the loser gets; it is emptied again on release, so a lake's bytes do not change with use.
flock locks are released by the kernel when the holder dies, even by SIGKILL.

A lake on object storage has no flock: `ObjectLock` is the same interface over an object created
only if absent (a conditional PUT, `If-None-Match: *`), holding who holds it and for how long.
It has no shared mode, so an object-store lake has one writer at a time (others wait, then fail
naming the holder).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from .errors import LockedError

LOCK_DIR = "_locks"
POLL_SECONDS = 0.05
OBJECT_POLL_SECONDS = 0.25  # each try of an object lock is a request to the store
LEASE_ENV = "EMOLAKE_LOCK_LEASE"
LEASE_SECONDS = 45.0  # an object lock not renewed for this long is stale (its holder died or hangs)


def lock_file_name(kind: str, key: str) -> str:
    """`<kind>-<readable key>-<hash>.lock`: a safe file name for any key (partition, run id)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:60]
    return f"{kind}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.lock"


def holder(path: Path) -> dict:
    """Who holds the lock at `path`, as its holder wrote it (empty if unknown)."""
    try:
        text = path.read_text().strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def describe_holder(info: dict) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} (`{info.get('command') or '?'}`, since {info.get('since', '?')})"


class FileLock:
    """One flock on `path`; `acquire` returns False (non-blocking) or raises `LockedError` on timeout."""

    def __init__(self, path: Path, what: str, command: str = "") -> None:
        self.path, self.what, self.command = path, what, command
        self._fd: int | None = None

    def acquire(self, *, shared: bool = False, timeout: float | None = None, record: bool = True) -> bool:
        """Take the lock; `timeout` None waits forever, 0 tries once. True when taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(POLL_SECONDS)
        self._fd = fd
        if record and not shared:
            info = {"pid": os.getpid(), "command": self.command,
                    "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return True

    def require(self, *, timeout: float | None = 0) -> "FileLock":
        """Take the lock or raise `LockedError` naming what is locked and by whom."""
        if not self.acquire(timeout=timeout):
            waited = f" (waited {timeout:g} s)" if timeout else ""
            raise LockedError(f"{self.what} is locked by {describe_holder(holder(self.path))}{waited}; "
                              "wait for that command to finish, or stop it and rerun")
        return self

    def prepare(self) -> None:
        """Create the lock file (at `init`), so a new lake holds every file it will use."""
        self.path.parent.mkdir(exist_ok=True)
        self.path.touch(exist_ok=True)

    def check(self) -> None:
        """Still held (a flock is held until released or the holder dies)."""

    def downgrade(self) -> None:
        """Exclusive -> shared (not atomic in Linux, which is fine for the lake lock's use)."""
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_size:
                os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @contextlib.contextmanager
    def held(self, *, timeout: float | None = 0) -> Iterator["FileLock"]:
        self.require(timeout=timeout)
        try:
            yield self
        finally:
            self.release()


class ObjectLock:
    """A lock on an object store: the object at `path`, created with a conditional PUT (If-None-Match: *).

    Its body says who holds it (pid, host, command, since) and for how long (`lease_s`). The holder
    renews it every quarter lease from a background thread (a PUT with If-Match on its own ETag,
    which fails once someone else broke it: the lock is then `lost` and `check` raises before a
    commit is published). A lock whose lease ran out by the store's clock, or whose holder ran on
    this machine and is gone (a SIGKILL), is stale and broken by a conditional DELETE (If-Match on
    the stale ETag), so of two waiters that both saw it stale only one deletes it and only one
    creates the next. Same interface as `FileLock`; `shared` is taken exclusively.
    """

    def __init__(self, fs, path, what: str, command: str = "") -> None:
        self.fs, self.path, self.what, self.command = fs, path, what, command
        self.lease = float(os.environ.get(LEASE_ENV) or LEASE_SECONDS)
        self.lost = False
        self._etag: str | None = None
        self._since = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _s3(self, method: str, **kwargs) -> dict:
        return self.fs.call_s3(method, Bucket=self.path.bucket, Key=self.path.key.split("/", 1)[1], **kwargs)

    def _body(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                           "since": self._since, "lease_s": self.lease, "token": uuid.uuid4().hex}).encode()

    def _try_create(self) -> bool:
        try:
            self._etag = self._s3("put_object", Body=self._body(), IfNoneMatch="*")["ETag"]
            return True
        except FileExistsError:  # 412: someone holds it
            return False

    def _current(self) -> tuple[dict, str, float] | None:
        """(holder info, ETag, seconds since last renewed) of the lock object, None if there is none."""
        try:
            # the ETag and age first: if the holder renews before the body is read, the ETag is the
            # older one, and a DELETE conditional on it fails: a lock renewed meanwhile is never broken
            head = self._s3("head_object")
            body = self.fs.cat_file(self.path.key)
        except FileNotFoundError:
            return None
        try:
            info = json.loads(body or b"{}")
        except ValueError:
            info = {}
        age = (datetime.now(timezone.utc) - head["LastModified"]).total_seconds()
        return info, head["ETag"], age

    def _stale(self, info: dict, age: float) -> bool:
        if age > float(info.get("lease_s", self.lease)):
            return True
        if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
            try:
                os.kill(info["pid"], 0)
            except ProcessLookupError:
                return True  # its holder on this machine is gone
            except PermissionError:
                return False
        return False

    def acquire(self, *, shared: bool = False, timeout: float | None = None, record: bool = True) -> bool:
        """Take the lock; `timeout` None waits forever, 0 tries once. True when taken."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        while True:
            if self._try_create():
                break
            current = self._current()
            if current is not None and self._stale(current[0], current[2]):
                try:
                    self._s3("delete_object", IfMatch=current[1])
                except (FileNotFoundError, OSError):
                    pass  # another waiter broke (or its holder released) it first
                continue
            if current is None:
                continue  # released between our PUT and our GET
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(OBJECT_POLL_SECONDS)
        self.lost = False
        self._stop.clear()
        self._renewer = threading.Thread(target=self._keep_renewing, name=f"emolake-lock-{self.path.name}",
                                         daemon=True)
        self._renewer.start()
        return True

    def renew(self) -> bool:
        """Extend the lease (a PUT conditional on our ETag); False, and `lost`, if another writer broke it."""
        try:
            self._etag = self._s3("put_object", Body=self._body(), IfMatch=self._etag)["ETag"]
            return True
        except (FileNotFoundError, OSError):
            self.lost = True  # `check` now refuses to publish
            return False

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self.lease / 4):
            if not self.renew():
                return

    def require(self, *, timeout: float | None = 0) -> "ObjectLock":
        if not self.acquire(timeout=timeout):
            waited = f" (waited {timeout:g} s)" if timeout else ""
            current = self._current()
            raise LockedError(f"{self.what} is locked by {describe_holder(current[0] if current else {})}{waited}; "
                              "wait for that command to finish, or stop it and rerun (a lake on object storage "
                              "takes one writer at a time)")
        return self

    def prepare(self) -> None:
        """Nothing to create: the lock object exists only while held."""

    def check(self) -> None:
        """Raise `LockedError` if another writer broke this lock (its renewals failed)."""
        if self.lost:
            raise LockedError(f"{self.what}: this command's lock was broken by another writer (not renewed for "
                              f"{self.lease:g} s); nothing was committed, rerun")

    def downgrade(self) -> None:
        """No shared mode on object storage: the lock stays exclusive."""

    def release(self) -> None:
        if self._renewer is None:
            return
        self._stop.set()
        self._renewer.join()
        self._renewer = None
        try:
            self._s3("delete_object", IfMatch=self._etag)
        except (FileNotFoundError, OSError):
            pass  # broken meanwhile: it is someone else's now
        self._etag = None

    @contextlib.contextmanager
    def held(self, *, timeout: float | None = 0) -> Iterator["ObjectLock"]:
        self.require(timeout=timeout)
        try:
            yield self
        finally:
            self.release()
