"""Reading user files (CSV, TSV, Parquet, optionally gzipped) into string tables that remember their rows.

Every reader in `ingest/` starts here, so that every error about the file's shape reads the same:
the file, the 1-based *data row* (the header is not counted: data row 1 is the first row under the
header, as a spreadsheet's row 2) and, where it helps, the line of the text file. A UTF-8 byte-order
mark is accepted and dropped. A table's pandas index is its data row number, so that great-expectations
reports rows the user can find.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emolake.warehouse.errors import BadInputError

DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class RawTable:
    """A file read as strings: `frame` is indexed by data row (1-based); `lines[row]` is its line."""

    path: Path
    frame: pd.DataFrame
    lines: dict[int, int]

    @property
    def name(self) -> str:
        return str(self.path)

    def line_of(self, row: int | None) -> int | None:
        return None if row is None else self.lines.get(row)

    def error(self, message: str, *, row: int | None = None, column: str | None = None,
              expected: str | None = None, found: object = None) -> BadInputError:
        """A BadInputError located in this file; the text line is added where it differs from the row."""
        line = self.line_of(row)
        if line is not None and line != row:
            message = f"{message} (line {line} of the file)"
        return BadInputError(message, file=self.name, row=row, column=column, expected=expected, found=found)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped for `.gz`; every way of not being a readable file is a BadInputError.

    Missing, a directory, a symlink loop or dangling symlink, unreadable, a truncated gzip stream or
    bytes after its end: each says so (never a bare traceback or click's 'Aborted!').
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            raise BadInputError("the file is a symlink to nothing", file=str(path), expected="an existing file",
                                found=f"a link to {os.readlink(path)}") from None
        raise BadInputError("file not found", file=str(path), expected="an existing file") from None
    except IsADirectoryError:
        raise BadInputError("expected a file, found a directory", file=str(path), expected="a file",
                            found="a directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInputError("the file is a symlink loop", file=str(path), expected="a file",
                                found="symbolic links that lead back to themselves") from None
        raise BadInputError(f"could not read the file ({exc.strerror})", file=str(path), expected="a readable file") from None
    return _gunzip(raw, path) if path.suffix.lower() == ".gz" else raw


def _gunzip(raw: bytes, path: Path) -> bytes:
    """All members of a gzip file; a truncated stream or trailing garbage is refused with where it happened."""
    out: list[bytes] = []
    rest = raw
    while rest:
        stream = zlib.decompressobj(wbits=31)
        try:
            out.append(stream.decompress(rest))
        except zlib.error as exc:
            what = "bytes after the end of the gzip stream" if out else "a corrupt gzip stream"
            raise BadInputError(f"not a valid gzip file: {what} ({exc})", file=str(path),
                                expected="one or more complete gzip members",
                                found=f"{len(rest):,} bytes that are not gzip after {len(raw) - len(rest):,} good bytes"
                                if out else f"{len(raw):,} bytes") from None
        if not stream.eof:
            line = b"".join(out).count(b"\n") + 1
            raise BadInputError(f"truncated gzip file: the stream ends early, inside line {line} of the text",
                                file=str(path), row=line, expected="a complete gzip stream",
                                found=f"{len(raw):,} compressed bytes") from None
        rest = stream.unused_data
        if rest and not rest.strip(b"\0"):
            break  # zero padding after the last member, as gzip itself accepts
    return b"".join(out)


def read_text(path: Path) -> str:
    """The file's text (gunzipped for `.gz`), BOM dropped; unreadable or non-UTF-8 files are BadInputError."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInputError(
            f"the file is not UTF-8 text (line {line})", file=str(path),
            expected="UTF-8 text", found=data[exc.start: exc.start + 4],
        ) from exc


def read_table(
    path: str | Path,
    *,
    delimiter: str = ",",
    header: bool = True,
    skip_after_header: int = 0,
    columns: Sequence[str] | None = None,
) -> RawTable:
    """Read a delimited text file (or Parquet) into strings; rows with the wrong field count are errors.

    `header=False` names the columns `columns`. `skip_after_header` drops that many rows under the
    header (Qualtrics exports carry two extra header rows); data row 1 is the first row after them.
    """
    path = Path(path)
    if is_parquet(path):
        return _read_parquet(path)
    text = read_text(path)
    if not text.strip():
        raise BadInputError("the file is empty", file=str(path), expected="a header row and data rows"
                            if header else "data rows")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    records: list[list[str]] = []
    lines: list[int] = []
    line = 1
    try:
        for record in reader:
            records.append(record)
            lines.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise BadInputError(f"malformed {DELIMITERS.get(delimiter, delimiter)}-separated text: {exc}",
                            file=str(path), row=len(records) + (0 if header else 1)) from exc
    # Blank lines (a trailing newline, a blank line at the end) are not rows.
    kept = [(r, ln) for r, ln in zip(records, lines) if "".join(r).strip()]
    if header:
        head, _ = kept[0]
        names = [cell.strip() for cell in head]
        body = kept[1 + skip_after_header:]
        _check_header(path, names, delimiter)
    else:
        names = list(columns or [])
        body = kept
    rows, row_lines = [], {}
    ends_with_newline = text.endswith(("\n", "\r"))
    for i, (record, ln) in enumerate(body, start=1):
        if len(record) != len(names):
            last = i == len(body)
            if last and not ends_with_newline and len(record) < len(names):
                raise BadInputError(
                    f"the file ends in the middle of data row {i} (line {ln}): is it truncated?",
                    file=str(path), row=i, expected=f"{len(names)} fields", found=f"{len(record)} fields",
                )
            raise BadInputError(
                f"data row {i} (line {ln}) has {len(record)} fields, "
                + (f"the header has {len(names)}" if header else f"expected {len(names)}"),
                file=str(path), row=i, expected=f"{len(names)} {DELIMITERS.get(delimiter, delimiter)}-separated fields",
                found=f"{len(record)} fields: {delimiter.join(record)[:80]!r}",
            )
        rows.append(record)
        row_lines[i] = ln
    frame = pd.DataFrame(rows, columns=names, dtype=object, index=pd.RangeIndex(1, len(rows) + 1))
    if header and frame.empty:
        raise BadInputError("the file has a header but no data rows", file=str(path), expected="at least one data row")
    if not header and frame.empty:
        raise BadInputError("the file is empty", file=str(path), expected="data rows")
    return RawTable(path, frame, row_lines)


def _check_header(path: Path, names: list[str], delimiter: str) -> None:
    if len(names) == 1:
        for other, word in DELIMITERS.items():
            if other != delimiter and other in names[0]:
                raise BadInputError(
                    f"the header is one column: the file looks {word}-separated",
                    file=str(path), row=None, expected=f"{DELIMITERS.get(delimiter, delimiter)}-separated columns",
                    found=f"{word}-separated header {names[0][:60]!r}",
                )
    seen: set[str] = set()
    for name in names:
        if name == "":
            raise BadInputError("the header has an empty column name", file=str(path), expected="named columns",
                                found=names)
        if name in seen:
            raise BadInputError("the header repeats a column name", file=str(path), column=name,
                                expected="unique column names", found=names)
        seen.add(name)


def _read_parquet(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    import pyarrow as pa

    raw = read_bytes(path)
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise BadInputError(f"not a readable Parquet file ({exc})", file=str(path)) from exc
    frame = table.to_pandas(types_mapper=None)
    frame = frame.astype(object).where(frame.notna(), None)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    if frame.empty:
        raise BadInputError("the file has no data rows", file=str(path), expected="at least one data row")
    return RawTable(path, frame, {i: None for i in frame.index})


def require_columns(table: RawTable, wanted: Iterable[str]) -> None:
    """Every `wanted` column present, else an error naming the first missing one and what was found."""
    have = list(table.frame.columns)
    for name in wanted:
        if name not in have:
            raise table.error("missing column", column=name, expected=f"a column named {name!r}", found=have)


def numbers(table: RawTable, column: str, *, allow_missing: bool = False) -> pd.Series:
    """`column` as floats; the first value that is not a number is an error at its row."""
    raw = table.frame[column]
    text = raw.fillna("").astype(str).str.strip()
    values = pd.to_numeric(text.where(text != "", None), errors="coerce")
    bad = values.isna() & ((text != "") | (not allow_missing))
    if bad.any():
        row = int(bad.idxmax())
        found = raw.loc[row]
        what = "an empty cell" if text.loc[row] == "" else found
        raise table.error("not a number", row=row, column=column, expected="a number", found=what)
    values = values.astype(float)
    check_finite(table, values, column, allow_missing=allow_missing)
    return values


def check_finite(table: RawTable, values: pd.Series, column: str, *, allow_missing: bool = False,
                 found: pd.Series | None = None) -> None:
    """Every value a finite number (NaN, inf, -inf refused; NaN allowed as missing with `allow_missing`).

    `values` is indexed by data row; `found` (default: the file's column, if it has one) is what the
    message quotes, so a derived value (10 - rating) is reported as the cell the user wrote.
    """
    array = values.to_numpy(dtype=float)
    bad = np.isinf(array) | (np.isnan(array) & (not allow_missing))
    if bad.any():
        row = values.index[int(np.argmax(bad))]
        if found is None and column in table.frame.columns:
            found = table.frame[column]
        shown = found.loc[row] if found is not None and not isinstance(found.loc[row], pd.Series) else array[np.argmax(bad)]
        raise table.error("not a finite number", row=int(row), column=column,
                          expected="a finite number (not NaN, inf or -inf)", found=shown)


def texts(table: RawTable, column: str, *, what: str = "text") -> pd.Series:
    """`column` as text; an empty cell or one holding a NUL byte is an error at its row."""
    raw = table.frame[column].fillna("").astype(str)
    empty = raw.str.strip() == ""
    if empty.any():
        row = int(empty.idxmax())
        raise table.error(f"empty {what}", row=row, column=column, expected=f"non-empty {what}", found=raw.loc[row])
    nul = raw.str.contains("\0", regex=False)
    if nul.any():
        row = int(nul.idxmax())
        raise table.error(f"a NUL byte in the {what}", row=row, column=column, expected=f"{what} without NUL bytes",
                          found=raw.loc[row])
    return raw
