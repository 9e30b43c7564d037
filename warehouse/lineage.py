"""Lineage of derived results: which versions of which lake partitions a result was computed from.

An analysis snapshots its inputs (`snapshot`) BEFORE it reads them and writes the rows into
`result_inputs` in the same transaction as its results. An input's version is the sorted,
comma-joined set of what its live files were loaded from (`LiveFile.version`): a reload of the
same source keeps it, a `--replace` from another source or a recomputation changes it. The
`stale_results` view (sql/34_result_inputs.sql) computes the current versions the same way and
lists every stored result whose inputs changed since; `emolake status` shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import pyarrow as pa

from .lake import Lake
from .tables import TABLES


def version(lake: Lake, table: str, partition: str) -> str:
    """The current version of partition `partition` of `table` (a prefix matches its sub-partitions)."""
    return ",".join(sorted({f.source_sha256 or f.source_path or f.load_id for f in lake.live_files(table, partition)}))


def snapshot(lake: Lake, inputs: Iterable[tuple[str, str]]) -> pa.Table:
    """`result_inputs` rows for (table, partition) inputs, with their versions now."""
    now = datetime.now(timezone.utc)
    rows = [{"input_table": table, "input_partition": partition, "input_version": version(lake, table, partition),
             "recorded_at": now} for table, partition in sorted(set(inputs))]
    return pa.Table.from_pylist(rows, schema=TABLES["result_inputs"].schema)


def run_set_inputs(lake: Lake, run_set: str) -> list[tuple[str, str]]:
    """What a run set's emotion profiles read: each run's manifest, activations (or, for a profiles run,
    its profile sums) and stimuli."""
    from .database import connect

    with connect(lake) as con:
        runs = con.execute("SELECT run_id, dataset, store FROM runs WHERE run_set = ? ORDER BY run_id",
                           [run_set]).fetchall()
    inputs = []
    for run_id, dataset, store in runs:
        data = ["profile_parts", "profile_stimuli"] if store == "profiles" else ["activations"]
        inputs += [("runs", f"run_id={run_id}"), *((t, f"run_id={run_id}") for t in data),
                   ("stimuli", f"dataset={dataset}")]
    return inputs


def stale_results(lake: Lake) -> list[dict]:
    """Stored results whose inputs changed since they were computed (one row per changed input)."""
    from .database import connect

    with connect(lake) as con:
        return con.sql("SELECT * FROM stale_results ORDER BY analysis, run_set, study, input_table, input_partition"
                       ).to_arrow_table().to_pylist()
