"""Benchmark `emolake export` on an activations-sized table: time and peak memory.

Builds a throwaway lake holding a long-form activations-like table (run_id and layer partitions;
stimulus_id, unit, neuron, value float32), then exports it to Parquet three ways, each in a fresh
process so peak RSS is its own:
- ours: `warehouse.export.export` (DuckDB record batches streamed into a ParquetWriter);
- naive: the whole result as one table, to pandas, `DataFrame.to_parquet`;
- limit: DuckDB's own `COPY (...) TO 'x.parquet'` (the engine writing natively, no Python).
Prints seconds, rows/s, peak RSS and the ratios.

    python benchmarks/export.py --stimuli 2000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.warehouse.lake import Lake  # noqa: E402
from emolake.warehouse.tables import TABLES, _spec  # noqa: E402

N_LAYERS, D_FF = 6, 1536  # the bundled MiniLM
TABLE = "bench_activations"


def register_table() -> None:
    TABLES[TABLE] = _spec(TABLE, {"run_id": pa.string(), "layer": pa.int16()}, {
        "stimulus_id": pa.string(), "unit": pa.int16(), "neuron": pa.int32(), "value": pa.float32(),
    }, "benchmark only")


def build_lake(root: Path, n_stimuli: int) -> int:
    lake = Lake(root)
    lake.init()
    rng = np.random.default_rng(0)
    stimuli = np.repeat(np.array([f"s{i:06d}" for i in range(n_stimuli)]), D_FF)
    units = np.tile(np.arange(D_FF, dtype=np.int16), n_stimuli)
    with lake.transaction("benchmark") as txn:
        for layer in range(N_LAYERS):
            txn.write(TABLE, pa.table({
                "stimulus_id": stimuli, "unit": units, "neuron": (layer * D_FF + units).astype(np.int32),
                "value": rng.standard_normal(n_stimuli * D_FF, dtype=np.float32),
            }), {"run_id": "bench", "layer": layer})
    return N_LAYERS * n_stimuli * D_FF


def run_one(method: str, root: Path, out: Path) -> dict:
    register_table()
    lake = Lake(root)
    start = time.perf_counter()
    if method == "ours":
        from emolake.warehouse.export import export
        export(lake, TABLE, "parquet", out)
    elif method == "naive":
        from emolake.warehouse.database import connect
        from emolake.warehouse.export import source_sql
        with connect(lake) as con:
            table = con.sql(f"SELECT * FROM {source_sql(con, TABLE)}").to_arrow_table()
        table.to_pandas().to_parquet(out, compression="zstd")
    else:
        from emolake.warehouse.database import connect
        from emolake.warehouse.export import source_sql
        with connect(lake) as con:
            con.execute(f"COPY (SELECT * FROM {source_sql(con, TABLE)}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    seconds = time.perf_counter() - start
    return {"method": method, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM starts afresh at exec; ru_maxrss can keep the forking parent's."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stimuli", type=int, default=2000)
    parser.add_argument("--run", nargs=3, metavar=("METHOD", "LAKE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        method, root, out = args.run
        print(json.dumps(run_one(method, Path(root), Path(out))))
        return
    register_table()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lake"
        rows = build_lake(root, args.stimuli)
        print(f"{rows:,} rows ({args.stimuli} stimuli x {N_LAYERS} layers x {D_FF} units)")
        results = {}
        for method in ("ours", "naive", "limit"):
            done = subprocess.run([sys.executable, __file__, "--run", method, str(root), f"{tmp}/{method}.parquet"],
                                  capture_output=True, text=True, check=True)
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[method]
            print(f"{method:>6}: {r['seconds']:6.2f} s  {rows / r['seconds'] / 1e6:6.2f} M rows/s  "
                  f"peak RSS {r['peak_rss_mb']:7.0f} MB")
        ours, naive, limit = results["ours"], results["naive"], results["limit"]
        print(f"ours vs naive: {naive['seconds'] / ours['seconds']:.2f}x faster, "
              f"{naive['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x less peak memory")
        print(f"ours vs DuckDB's native COPY: {limit['seconds'] / ours['seconds']:.2f}x its speed, "
              f"{ours['peak_rss_mb'] / limit['peak_rss_mb']:.2f}x its peak memory")


if __name__ == "__main__":
    main()
