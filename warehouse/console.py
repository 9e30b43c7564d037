"""Terminal output shared by every command: tables, JSON, and progress bars with counts and rates.

Progress and messages go to stderr so that stdout stays clean for `--format csv|json` and pipes.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

T = TypeVar("T")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


class RateColumn(TextColumn):
    """Items per second, with the unit the caller names ('prompts/s', 'tests/s')."""

    def __init__(self, unit: str) -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task):  # noqa: D401 - rich API
        speed = task.finished_speed or task.speed
        text = f"{speed:,.1f} {self.unit}/s" if speed else f"- {self.unit}/s"
        return super().render(task).__class__(text, style="progress.data.speed")


def progress_bar(unit: str = "items") -> Progress:
    """A rich progress bar: description, bar, n/total, %, rate, elapsed, ETA (on stderr)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        RateColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err, transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "items") -> Iterator[T]:
    """Iterate with a progress bar."""
    with progress_bar(unit) as bar:
        task = bar.add_task(description, total=total if total is not None else len(items))  # type: ignore[arg-type]
        for item in items:
            yield item
            bar.advance(task)


def print_table(table: pa.Table, fmt: str = "table", title: str | None = None, limit: int | None = None) -> None:
    """Print an Arrow table as a rich table, CSV, JSON (one array of records) or NDJSON (one
    record a line) on stdout."""
    if fmt == "json":
        sys.stdout.write(json.dumps([_json_row(r) for r in table.to_pylist()], default=str, allow_nan=False) + "\n")
        return
    if fmt == "ndjson":
        for batch in table.to_batches():
            for row in batch.to_pylist():
                sys.stdout.write(json.dumps(_json_row(row), default=str, allow_nan=False) + "\n")
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv
        buffer = pa.BufferOutputStream()
        pacsv.write_csv(table, buffer)
        sys.stdout.write(buffer.getvalue().to_pybytes().decode())
        return
    shown = table if limit is None else table.slice(0, limit)
    rich_table = Table(title=title, show_lines=False)
    for name in table.column_names:
        rich_table.add_column(name, overflow="fold")
    for row in shown.to_pylist():
        rich_table.add_row(*(_cell(v) for v in row.values()))
    out.print(rich_table)
    if limit is not None and table.num_rows > limit:
        out.print(f"... {table.num_rows - limit:,} more rows")


def _json_row(row: dict) -> dict:
    """NaN and infinities as null: JSON has no literal for them (`json.dumps` would write `NaN`)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, default=str, indent=2) + "\n")


def print_summary(title: str, items: Mapping[str, object], as_json: bool = False) -> None:
    """A few key numbers: `key: value` lines, or one JSON object with --json."""
    if as_json:
        print_json(dict(items))
        return
    out.print(f"[bold]{title}[/bold]")
    for key, value in items.items():
        out.print(f"  {key}: {_cell(value)}")
