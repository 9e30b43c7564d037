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
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from .errors import LockedError

LOCK_DIR = "_locks"
POLL_SECONDS = 0.05


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
