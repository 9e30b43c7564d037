"""Named exceptions that the CLI turns into messages and exit codes (2 bad input, 1 internal)."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

QUOTE_LIMIT = 200  # characters of a bad value shown in a message


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)`, cut to about `limit` characters (a 200 MB field must not become a 200 MB message)."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} {'characters' if isinstance(value, str) else 'bytes'} in all)"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + f"... ({len(text):,} characters in all)"


class EmolakeError(Exception):
    """Any failure emolake reports to the user; exit code 1 unless a subclass says otherwise."""

    exit_code = 1


class BadInputError(EmolakeError):
    """Input that does not meet its contract. The message names file, row, column, expected, found."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        expected: str | None = None,
        found: object = None,
    ) -> None:
        self.file, self.row, self.column = file, row, column
        self.expected, self.found = expected, found
        parts = [message if len(message) <= 2 * QUOTE_LIMIT else quote(message, 2 * QUOTE_LIMIT)]
        where = []
        if file is not None:
            where.append(f"file {file if len(str(file)) <= QUOTE_LIMIT else quote(str(file))}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {quote(column)}")
        if where:
            parts.append("at " + ", ".join(where))
        if expected is not None:
            parts.append(f"expected {expected if len(expected) <= 2 * QUOTE_LIMIT else quote(expected)}")
        if found is not None:
            parts.append(f"found {quote(found)}")
        super().__init__("; ".join(parts))


class DiskFullError(EmolakeError):
    """The disk holding a path ran out of space (ENOSPC); exit 1, the lake as it was."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(f"no space left on the device while writing {path}; free some space and run the "
                         "command again (nothing was changed)")


@contextlib.contextmanager
def writing(path: object) -> Iterator[None]:
    """Turn a full disk (OSError ENOSPC, also pyarrow's, which carries no file name) into DiskFullError(path)."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC or "[errno 28]" in str(exc).lower():
            raise DiskFullError(getattr(exc, "filename", None) or path) from exc
        raise


class ReadOnlyQueryError(BadInputError):
    """A statement given to `query` would change the lake or reach outside it."""


class NotFoundError(BadInputError):
    """A table, run, study or path the user named does not exist."""


class LockedError(BadInputError):
    """Another emolake process holds the run or partition this command would write."""


class ReplaceRefusedError(BadInputError):
    """A load would replace a partition that another source loaded, without `--replace`."""
