"""What the commit log costs readers: the same scans with and without the `_live_files` filter.

Loads the study's release (`ingest model-emotion`) into a fresh lake, then times, best of
`--repeat`, scans through the views (which keep only files named by a commit record) against the
same `read_parquet` without the filter; then again after `--extra-commits` more small commits
(the log grows until the clean-up folds it into a checkpoint at `CHECKPOINT_AFTER` records).

    python benchmarks/commit_log.py ../shared/data/model_emotion --repeat 5
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from emolake.ingest.release import ingest_release
from emolake.warehouse import commit_log
from emolake.warehouse.database import connect
from emolake.warehouse.lake import Lake

SCANS = {
    "activation_vectors (one row per stimulus and layer)": (
        "SELECT count(*), sum(len(activation)) FROM activation_vectors",
        "SELECT count(*), sum(len(activation)) FROM read_parquet('activations/*/*/*.parquet', hive_partitioning = true,"
        " hive_types = {'run_id': VARCHAR, 'layer': INTEGER}) WHERE run_id <> '_empty'"),
    "activations (long: one row per neuron)": (
        "SELECT count(*), sum(value) FROM activations",
        "SELECT count(*), sum(v) FROM (SELECT unnest(activation) AS v FROM read_parquet('activations/*/*/*.parquet', "
        "hive_partitioning = true, hive_types = {'run_id': VARCHAR, 'layer': INTEGER}) WHERE run_id <> '_empty')"),
    "ratings": (
        "SELECT count(*), sum(rating) FROM ratings",
        "SELECT count(*), sum(rating) FROM read_parquet('ratings/*/*.parquet', hive_partitioning = true, "
        "hive_types = {'study': VARCHAR}) WHERE study <> '_empty'"),
}


def timed(con, sql: str) -> float:
    start = time.perf_counter()
    con.execute(sql).fetchall()
    return time.perf_counter() - start


def measure(lake: Lake, repeat: int) -> dict[str, tuple[float, float]]:
    """(view, raw) best-of-`repeat` seconds per scan, the two alternated so both see the same load."""
    out = {}
    with connect(lake) as con:
        for name, (view, raw) in SCANS.items():
            (n_view, sum_view), = con.execute(view).fetchall()
            (n_raw, sum_raw), = con.execute(raw).fetchall()
            assert n_view == n_raw and math.isclose(sum_view, sum_raw, rel_tol=1e-9), name  # same rows
            pairs = [(timed(con, view), timed(con, raw)) for _ in range(repeat)]
            out[name] = (min(v for v, _ in pairs), min(r for _, r in pairs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--extra-commits", type=int, default=commit_log.CHECKPOINT_AFTER - 2,
                        help="default: the most the log holds before the clean-up checkpoints it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        lake.init()
        start = time.perf_counter()
        ingest_release(lake, args.release)
        print(f"ingest model-emotion: {time.perf_counter() - start:.1f} s, "
              f"{len(commit_log.record_files(lake.root))} records, {len(lake.live_files())} live files")
        results = {"log of 1 commit": measure(lake, args.repeat)}
        table = pa.table({"emotion": ["joy"], "attribute": ["a"], "value": [1.0], "source": ["bench"]})
        for k in range(args.extra_commits):  # each with its own study: nothing replaced, the log only grows
            with lake.transaction("benchmark") as txn:
                txn.write("emotion_attributes", table, {"study": f"bench{k}"})
        n = len(commit_log.record_files(lake.root))
        results[f"log of {n} records"] = measure(lake, args.repeat)
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"best of {args.repeat}")
    print("| log | scan | views (filtered) | raw read_parquet | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for log, rows in results.items():
        for name, (view, raw) in rows.items():
            print(f"| {log} | {name} | {view * 1000:.1f} ms | {raw * 1000:.1f} ms | {view / raw:.2f} |")


if __name__ == "__main__":
    main()
