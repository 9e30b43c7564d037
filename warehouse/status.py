"""What a lake holds, for `emolake status`: rows per table, datasets, studies, runs, stale results and marts.

Everything comes from the commit log and file metadata, never from scanning a view: rows per
table are the row counts each commit record lists for its files (a file adopted from a lake
written before the commit log has none: its Parquet footer is read), datasets, studies and runs
are partition values of the live files. Only two small views are queried: `stale_results`
(result lineage) and `mart_freshness` (the materialised marts), both computed from the commit
log and a few small tables.
"""

from __future__ import annotations


from .commit_log import LiveFile
from .database import connect
from .lake import Lake
from .tables import TABLES

STUDY_TABLES = ("ratings", "emotion_attributes", "similarity_judgments")


def table_rows(lake: Lake, files: list[LiveFile] | None = None) -> dict[str, int]:
    """Rows per lake table (zero-row tables included), from the commit log's per-file counts."""
    rows = dict.fromkeys(sorted(TABLES), 0)
    for f in lake.live_files() if files is None else files:
        if f.table_name in rows:
            rows[f.table_name] += f.rows if f.rows is not None else lake.read_table(lake.root / f.path, columns=[]).num_rows
    return rows


def _values(files: list[LiveFile], tables: tuple[str, ...], key: str) -> list[str]:
    """The values of partition key `key` that hold live files in any of `tables`."""
    found = set()
    for f in files:
        if f.table_name in tables:
            for part in f.partition.split("/"):
                name, _, value = part.partition("=")
                if name == key:
                    found.add(value)
    return sorted(found)


def lake_status(lake: Lake) -> dict:
    """A summary of the lake, in about the time it takes to read the commit log (see the module doc)."""
    with connect(lake) as con:
        stale = con.execute("""
            SELECT analysis, run_set, study, string_agg(input_table || '/' || input_partition, ', '
                                                        ORDER BY input_table, input_partition)
            FROM stale_results GROUP BY ALL ORDER BY ALL""").fetchall()
        marts = con.execute("SELECT mart, run_set, status, reason, built_at FROM mart_freshness "
                            "ORDER BY mart, run_set").fetchall()
    files = lake.live_files()  # one read of the commit log
    rows = table_rows(lake, files)
    return {
        "lake": str(lake.root),
        "datasets": _values(files, ("stimuli",), "dataset"),
        "studies": _values(files, STUDY_TABLES, "study"),
        "runs": _values(files, ("runs",), "run_id"),
        "loads": rows["loads"],
        # results computed from inputs that changed since (see the stale_results view)
        "stale_results": [f"{a} run_set={r} study={s}: input changed since: {inputs}" for a, r, s, inputs in stale],
        # materialised marts (sql/35_marts.sql): fresh ones are served, others refused until `emolake refresh`
        "marts": [f"{m} run_set={r}: {status}" + (f" ({reason})" if reason else f" (built {built:%Y-%m-%d %H:%M:%S} UTC)")
                  for m, r, status, reason, built in marts],
        "stale_marts": [f"{m} run_set={r}: {reason}" for m, r, status, reason, _ in marts
                        if status in ("stale", "missing")],
        "rows": rows,
    }
