"""The views on Spark SQL vs DuckDB: Spark's start-up, registering the lake, and reading every view.

Builds the parity test's lake (tests/test_warehouse_spark.py: every view has rows) unless
`--lake` names one, starts a local Spark session (`local[1]`, loopback, the test's tiny-data
settings), registers the lake's sources and views, then reads every view of `sql/` to the end
in DuckDB and in Spark; prints the times and the Spark/DuckDB ratio, measured in one run.

    PYTHONPATH=. python benchmarks/spark_views.py [--lake DIR] [--master local[1]]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from emolake.warehouse.database import connect  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402
from emolake.warehouse.spark import create_views, register_sources, spark_session  # noqa: E402


def parity_lake(root: Path) -> Lake:
    """The lake of tests/test_warehouse_spark.py (synthetic data, real analyses over it)."""
    import test_warehouse_spark as parity

    lake = Lake(root)
    lake.init()
    s = parity.write_synthetic(lake, n_emotions=6, units=5)
    parity._write_extra_tables(lake, s.emotions, s.run_set, s.study, s.run_ids[0])
    parity.run_rsa(lake, s.study, s.run_set, n_perm=20, n_boot=10, seed=0, progress=False)
    parity.run_searchlight(lake, s.run_set, s.study, alpha=0.2, progress=False)
    parity.run_neurons(lake, s.run_set, s.study, [2, 4], scope="global")
    parity.run_neurons(lake, s.run_set, s.study, [1], scope="per_layer")
    parity.refresh_ablation_statistics(lake, s.run_set, s.study)
    return lake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=None, help="an existing lake (default: build the parity test's lake)")
    parser.add_argument("--master", default="local[1]")
    args = parser.parse_args()
    from test_warehouse_spark import TINY_DATA_CONF, VIEWS

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(args.lake) if args.lake else parity_lake(Path(tmp) / "lake")
        with connect(lake) as con:
            started = time.perf_counter()
            duckdb_rows = {view: len(con.sql(f'SELECT * FROM "{view}"').fetchall()) for view in VIEWS}
            duckdb_s = time.perf_counter() - started

        started = time.perf_counter()
        spark = spark_session(args.master, conf=TINY_DATA_CONF)
        startup_s = time.perf_counter() - started
        started = time.perf_counter()
        files = register_sources(spark, lake)
        sources_s = time.perf_counter() - started
        started = time.perf_counter()
        create_views(spark)
        views_s = time.perf_counter() - started
        per_view = {}
        for view in VIEWS:
            started = time.perf_counter()
            n = len(spark.table(view).collect())
            per_view[view] = time.perf_counter() - started
            assert n == duckdb_rows[view], (view, n, duckdb_rows[view])
        spark.stop()

    spark_s = sum(per_view.values())
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; command: "
          f"PYTHONPATH=. python benchmarks/spark_views.py{' --lake ' + args.lake if args.lake else ''}")
    print(f"views: {len(VIEWS)}, rows: {sum(duckdb_rows.values())}, data files: {sum(files.values())}")
    print(f"Spark session start ({args.master}): {startup_s:.1f} s")
    print(f"register sources: {sources_s:.1f} s, create views: {views_s:.1f} s")
    print(f"read every view: DuckDB {duckdb_s:.2f} s, Spark {spark_s:.1f} s, ratio {spark_s / duckdb_s:.0f}x")
    slowest = sorted(per_view.items(), key=lambda kv: -kv[1])[:5]
    print("slowest on Spark: " + ", ".join(f"{v} {t:.1f} s" for v, t in slowest))


if __name__ == "__main__":
    main()
