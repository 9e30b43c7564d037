"""A validated piece of a load, and writing it into a lake transaction with its validation JSON beside it.

Readers return `Piece`s only after their checks and great-expectations suite passed; commands then
open one `lake.transaction()` and write every piece, so a failure anywhere leaves the lake unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from emolake.warehouse.lake import Lake, LakeTransaction, partition_path, sha256_file
from emolake.warehouse.tables import TABLES

from .validation import validation_path


@dataclass
class Piece:
    """Rows for one partition of one table, from one source file, with its validation result."""

    table: str
    rows: pa.Table
    partition: dict[str, str]
    source: Path | None
    validation: dict | None = None
    checks: list[str] = field(default_factory=list)  # our own checks that passed, by name
    part: str = ""  # distinguishes several pieces of one partition in one load (e.g. 'train')

    @property
    def partition_rel(self) -> str:
        return partition_path(TABLES[self.table], self.partition)


def write_piece(txn: LakeTransaction, piece: Piece) -> Path:
    """Stage `piece` in `txn` (replacing its partition on commit) and its validation JSON beside it."""
    sha = sha256_file(piece.source) if piece.source is not None and piece.source.is_file() else None
    path = txn.write(piece.table, piece.rows, piece.partition,
                     source_path=str(piece.source) if piece.source else None, source_sha256=sha)
    relpath = validation_path(piece.table, piece.partition_rel, txn.load_id, piece.part)
    n = 1
    while (txn.staging / "_json" / relpath).exists():  # two pieces with the same part name in one load
        n += 1
        relpath = validation_path(piece.table, piece.partition_rel, txn.load_id, f"{piece.part}-{n}")
    txn.write_json(relpath, {
        "table": piece.table, "partition": piece.partition, "load_id": txn.load_id,
        "source_path": str(piece.source) if piece.source else None, "source_sha256": sha,
        "rows": piece.rows.num_rows, "checks_passed": piece.checks,
        "great_expectations": piece.validation,
    })
    return path


def write_pieces(lake: Lake, pieces: Sequence[Piece], command: str, replace: bool = False) -> str:
    """Write all `pieces` in one transaction; returns its load id. `replace` allows replacing
    partitions that another source loaded (else refused, see `LakeTransaction.commit`)."""
    with lake.transaction(command, replace=replace) as txn:
        for piece in pieces:
            write_piece(txn, piece)
        return txn.load_id


def arrow_rows(columns: Mapping[str, Sequence], table: str) -> pa.Table:
    """Columns (lists or arrays) as an Arrow table in `table`'s declared schema and column order."""
    schema = TABLES[table].schema
    return pa.table({name: pa.array(columns[name], type=schema.field(name).type) for name in schema.names})
