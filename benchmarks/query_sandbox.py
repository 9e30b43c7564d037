"""Benchmark the cost of running user SQL in the sandbox (`emolake query`) against a plain connection.

Builds a throwaway lake whose `activations` table holds `--files` small Parquet files (the symlink
scan walks every table folder, so its cost grows with the number of files), then times the same
queries through `warehouse.database.query` (sandboxed: fresh in-memory instance, warehouse attached
read-only, settings locked, symlink scan) and the way `query` ran them before the sandbox (the
statement check, then the library's plain `connect`), each `--repeat` times, in one process.
Prints medians and the ratio.

    python benchmarks/query_sandbox.py --files 2000 --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.extract.store import activation_table, chunk_path, write_activation_file  # noqa: E402
from emolake.warehouse.database import (  # noqa: E402
    check_read_only, connect, query, rebuild_views, symlinks_leading_out,
)
from emolake.warehouse.lake import Lake  # noqa: E402

QUERIES = {
    "tiny (SELECT 1)": "SELECT 1",
    "count a view (ratings)": "SELECT count(*) FROM ratings",
    "scan activations": "SELECT count(*) FROM activation_vectors",
}


def build(root: Path, n_files: int) -> Lake:
    lake = Lake(root / "lake")
    lake.init()
    rng = np.random.default_rng(0)
    for i in range(n_files):  # 10 runs x 10 layers x chunks of 4 stimuli, 64 units
        run, layer, chunk = i % 10, (i // 10) % 10, i // 100
        table = activation_table([f"s{chunk}-{k}" for k in range(4)], rng.random((4, 64), dtype=np.float32))
        write_activation_file(table, chunk_path(lake, f"bench-run{run}", layer, chunk))
    rebuild_views(lake)
    return lake


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain(lake: Lake, sql: str) -> None:
    """`query` before the sandbox: the statement check, then a plain read-only connection."""
    check_read_only(sql)
    with connect(lake) as con:
        con.sql(sql).to_arrow_table()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = build(Path(tmp), args.files)
        print(f"lake with {args.files:,} activation files; median of {args.repeat} runs each")
        scan = median_seconds(lambda: symlinks_leading_out(lake), args.repeat)
        print(f"  symlink scan alone: {scan * 1000:.1f} ms")
        print("| query | before (check + plain connect) | sandboxed | ratio |")
        print("| --- | ---: | ---: | ---: |")
        for name, sql in QUERIES.items():
            base = median_seconds(lambda: plain(lake, sql), args.repeat)
            box = median_seconds(lambda: query(lake, sql), args.repeat)
            print(f"| {name} | {base * 1000:.1f} ms | {box * 1000:.1f} ms | {box / base:.2f} |")


if __name__ == "__main__":
    main()
