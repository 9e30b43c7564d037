"""What a lake holds, for `emolake status`: rows per view, datasets, studies, runs, stale results."""

from __future__ import annotations

from .database import connect, table_counts
from .lake import Lake


def lake_status(lake: Lake) -> dict:
    counts = table_counts(lake)
    with connect(lake) as con:
        def distinct(view: str, column: str) -> list[str]:
            if view not in counts:
                return []
            return [r[0] for r in con.execute(f'SELECT DISTINCT "{column}" FROM "{view}" ORDER BY 1').fetchall()]

        stale = con.execute("""
            SELECT analysis, run_set, study, string_agg(input_table || '/' || input_partition, ', '
                                                        ORDER BY input_table, input_partition)
            FROM stale_results GROUP BY ALL ORDER BY ALL""").fetchall() if "stale_results" in counts else []
        info = {
            "lake": str(lake.root),
            "datasets": distinct("stimuli", "dataset"),
            "studies": sorted(set(distinct("ratings", "study")) | set(distinct("emotion_attributes", "study"))
                              | set(distinct("similarity_judgments", "study"))),
            "runs": distinct("runs", "run_id") if "runs" in counts else [],
            "loads": counts.get("loads", 0),
            # results computed from inputs that changed since (see the stale_results view)
            "stale_results": [f"{a} run_set={r} study={s}: input changed since: {inputs}" for a, r, s, inputs in stale],
        }
    info["views"] = counts
    return info
