"""Named exceptions that the CLI turns into messages and exit codes (2 bad input, 1 internal)."""

from __future__ import annotations


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
        parts = [message]
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        if where:
            parts.append("at " + ", ".join(where))
        if expected is not None:
            parts.append(f"expected {expected}")
        if found is not None:
            parts.append(f"found {found!r}")
        super().__init__("; ".join(parts))


class ReadOnlyQueryError(BadInputError):
    """A statement given to `query` would change the lake or reach outside it."""


class NotFoundError(BadInputError):
    """A table, run, study or path the user named does not exist."""


class LockedError(BadInputError):
    """Another emolake process holds the run or partition this command would write."""


class ReplaceRefusedError(BadInputError):
    """A load would replace a partition that another source loaded, without `--replace`."""
